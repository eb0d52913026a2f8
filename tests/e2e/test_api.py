"""Cross-cutting API behaviour: /v2/, the API-version header, repository names,
wrong methods (405 UNSUPPORTED), unknown paths (404) and a sweep of garbage
inputs that must all be answered with a 4xx and a spec JSON error body.
"""

import os
import secrets
from urllib.parse import parse_qsl, urlsplit

import pytest

from helpers import (
    OCI_MANIFEST, Client, assert_api_version, assert_error, describe, error_codes,
    expect_status, push_blob, push_image, random_repo, sha256_digest, start_upload, with_query,
)

ZERO = "sha256:" + "0" * 64


def test_base_endpoint(client):
    resp = expect_status(client.get("/v2/"), 200)
    assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    expect_status(client.head("/v2/"), 200)


INVALID_NAMES = [
    "Bad", "a//b", "-a", "a-", "a_", "_a", "a..b", "a.", ".a", "a___b", "a/", "a/-b",
    "a/B", "a.-b", "a_-b", "a" * 256, "e2e/" + "b" * 252,
]


@pytest.mark.parametrize("name", INVALID_NAMES, ids=lambda n: n if len(n) < 20 else f"len{len(n)}")
def test_invalid_name_tags(client, name):
    assert_error(client.get(f"/v2/{name}/tags/list"), 400, "NAME_INVALID")


@pytest.mark.parametrize("name", ["Bad", "a//b", "a___b", "x" * 256],
                         ids=["upper", "empty-component", "triple-underscore", "too-long"])
@pytest.mark.parametrize("method,suffix", [
    ("GET", "manifests/latest"), ("HEAD", "manifests/latest"), ("PUT", "manifests/latest"),
    ("DELETE", "manifests/latest"), ("GET", f"blobs/{ZERO}"), ("DELETE", f"blobs/{ZERO}"),
    ("POST", "blobs/uploads/"), ("GET", f"referrers/{ZERO}"),
])
def test_invalid_name_every_endpoint(client, name, method, suffix):
    headers = {"Content-Type": OCI_MANIFEST} if method == "PUT" else {}
    resp = client.request(method, f"/v2/{name}/{suffix}", data=b"{}" if method == "PUT" else None,
                          headers=headers)
    if method == "HEAD":
        expect_status(resp, 400)
    else:
        assert_error(resp, 400, "NAME_INVALID")


@pytest.mark.parametrize("shape", ["a__b", "a--b", "a---b", "a.b", "a_b", "0", "x/y/z-9"])
def test_valid_name_shapes(client, shape):
    name = f"{random_repo('names')}/{shape}"
    assert_error(client.get(f"/v2/{name}/tags/list"), 404, "NAME_UNKNOWN")
    push_blob(client, name, b"name ok")


def test_name_of_255_chars_is_valid(client):
    name = random_repo("len")
    name += "/" + "n" * (255 - len(name) - 1)
    assert len(name) == 255
    push_image(client, name, "t")
    assert expect_status(client.get(f"/v2/{name}/tags/list"), 200).json()["tags"] == ["t"]
    assert_error(client.post(f"/v2/{name}x/blobs/uploads/"), 400, "NAME_INVALID")


WRONG_METHODS = [
    ("PATCH", "/v2/{repo}/manifests/x"), ("POST", "/v2/{repo}/manifests/latest"),
    ("PUT", "/v2/"), ("POST", "/v2/"), ("DELETE", "/v2/"), ("PATCH", "/v2/"),
    ("POST", "/v2/{repo}/tags/list"), ("DELETE", "/v2/{repo}/tags/list"),
    ("PUT", "/v2/{repo}/tags/list"), ("PUT", "/v2/{repo}/blobs/" + ZERO),
    ("PATCH", "/v2/{repo}/blobs/" + ZERO), ("POST", "/v2/{repo}/blobs/" + ZERO),
    ("PUT", "/v2/_catalog"), ("DELETE", "/v2/_catalog"),
    ("POST", "/v2/{repo}/referrers/" + ZERO), ("DELETE", "/v2/{repo}/referrers/" + ZERO),
]


@pytest.mark.parametrize("method,path", WRONG_METHODS, ids=[f"{m}-{p}" for m, p in WRONG_METHODS])
def test_wrong_method_is_405(client, repo, method, path):
    push_image(client, repo, "latest")
    resp = client.request(method, path.format(repo=repo), data=b"{}",
                          headers={"Content-Type": "application/octet-stream"})
    assert_error(resp, 405, "UNSUPPORTED")


@pytest.mark.parametrize("path", ["/", "/v3/", "/v1/_ping", "/favicon.ico", "/v2/{repo}",
                                  "/v2/{repo}/nothing/here", "/v2/{repo}/tags",
                                  "/v2/{repo}/blobs/uploads/x/y"])
def test_unknown_path_is_404(client, repo, path):
    push_image(client, repo, "latest")
    resp = client.get(path.format(repo=repo))
    expect_status(resp, 404)
    if resp.headers.get("Content-Type", "").startswith("application/json"):
        error_codes(resp)


# ----------------------------------------------------------------- garbage sweep

DEEP = b"[" * 100_000 + b"]" * 100_000
BIG = "x" * 8000
OCT = {"Content-Type": "application/octet-stream"}
MAN = {"Content-Type": OCI_MANIFEST}

GARBAGE = {
    # id: (method, path, headers, body)
    "long-header-unknown-blob": ("GET", "/v2/{repo}/blobs/" + ZERO, {"X-Junk": BIG}, None),
    "long-auth-bad-name": ("GET", "/v2/Bad/tags/list", {"Authorization": "Bearer " + BIG}, None),
    "long-accept-unknown-tag": ("GET", "/v2/{repo}/manifests/nope", {"Accept": BIG}, None),
    "latin1-header": ("GET", "/v2/{repo}/blobs/" + ZERO, {"X-Odd": "caf\xe9\xff"}, None),
    "long-content-range": ("PATCH", "{upload}", {**OCT, "Content-Range": "0-" + "9" * 8000}, b"abc"),
    "overflow-content-range": ("PATCH", "{upload}", {**OCT, "Content-Range": "9" * 30 + "-" + "9" * 30}, b"a"),
    "long-content-type": ("PUT", "/v2/{repo}/manifests/x", {"Content-Type": "application/" + BIG}, b"{}"),
    "binary-manifest": ("PUT", "/v2/{repo}/manifests/bin", MAN, os.urandom(4096)),
    "deep-json": ("PUT", "/v2/{repo}/manifests/deep", MAN, DEEP),
    "huge-number": ("PUT", "/v2/{repo}/manifests/num", MAN, b'{"schemaVersion": 1e999999}'),
    "nul-in-json": ("PUT", "/v2/{repo}/manifests/nul", MAN, b'{"schemaVersion":2,"mediaType":"\\u0000"}'),
    "mediatype-object": ("PUT", "/v2/{repo}/manifests/mt", MAN, b'{"schemaVersion":2,"mediaType":{"a":1}}'),
    "layers-of-strings": ("PUT", "/v2/{repo}/manifests/ls", MAN,
                          b'{"schemaVersion":2,"config":{},"layers":["a","b"]}'),
    "index-under-manifest-type": ("PUT", "/v2/{repo}/manifests/ix", MAN,
                                  b'{"schemaVersion":2,"manifests":[]}'),
    "list-of-empty-objects": ("PUT", "/v2/{repo}/manifests/le",
                              {"Content-Type": "application/vnd.oci.image.index.v1+json"},
                              b'{"schemaVersion":2,"manifests":[{}]}'),
    "pct-slash-name": ("GET", "/v2/e2e%2Fx/tags/list", {}, None),
    "pct-upper-name": ("GET", "/v2/%41bc/tags/list", {}, None),
    "pct-nul-name": ("GET", "/v2/a%00b/tags/list", {}, None),
    "pct-space-name": ("GET", "/v2/a%20b/tags/list", {}, None),
    "pct-unreserved-tag": ("GET", "/v2/{repo}/manifests/%6Catest%00", {}, None),
    "pct-unicode-tag": ("GET", "/v2/{repo}/manifests/%E2%9C%93", {}, None),
    "pct-unicode-digest": ("GET", "/v2/{repo}/blobs/sha256:%E2%9C%93", {}, None),
    "pct-invalid-escape": ("GET", "/v2/{repo}/manifests/%zz", {}, None),
    "long-path": ("GET", "/v2/" + "a/" * 4000 + "tags/list", {}, None),
    "long-tag": ("GET", "/v2/{repo}/manifests/" + "t" * 8000, {}, None),
    "bad-tag-delete": ("DELETE", "/v2/{repo}/manifests/-bad", {}, None),
    "bad-digest-post": ("POST", "/v2/{repo}/blobs/uploads/?digest=sha256:zz", OCT, b"abc"),
    "empty-digest-post": ("POST", "/v2/{repo}/blobs/uploads/?digest=", OCT, b"abc"),
    "long-digest-algorithm": ("POST", "/v2/{repo}/blobs/uploads/?digest-algorithm=" + BIG, {}, None),
    "mismatch-binary-put": ("PUT", "{upload}?digest=" + ZERO, OCT, os.urandom(2048)),
    "binary-upload-id": ("PATCH", "/v2/{repo}/blobs/uploads/%00%ff%fe", OCT, b"abc"),
    "referrers-long-filter": ("GET", "/v2/{repo}/referrers/sha256:zz?artifactType=" + BIG, {}, None),
    "tags-n-not-number": ("GET", "/v2/{repo}/tags/list?n=abc", {}, None),
    "tags-n-negative": ("GET", "/v2/{repo}/tags/list?n=-1", {}, None),
    "catalog-n-not-number": ("GET", "/v2/_catalog?n=abc", {}, None),
}


@pytest.fixture(scope="module")
def garbage_repo(registry):
    c = Client(registry.url)
    name = f"e2e/garbage-{secrets.token_hex(4)}"
    push_image(c, name, "latest")
    c.close()
    return name


@pytest.mark.parametrize("case", list(GARBAGE))
def test_garbage_is_4xx_with_json_error(client, garbage_repo, case):
    method, path, headers, body = GARBAGE[case]
    path = path.replace("{repo}", garbage_repo)
    if path.startswith("{upload}"):
        _, loc = start_upload(client, garbage_repo)
        rest = path[len("{upload}"):]
        loc = with_query(loc, parse_qsl(rest[1:])) if rest.startswith("?") else loc
        path = urlsplit(loc)._replace(scheme="", netloc="").geturl()
    resp = client.raw(method, path, headers=headers, data=body)
    assert 400 <= resp.status_code < 500, describe(resp)
    assert_error(resp, resp.status_code, None)


def test_odd_digest_spellings_in_blob_route(client, garbage_repo):
    digest = sha256_digest(b"x")
    for bad in (digest.upper(), digest.replace(":", "%3A"), digest.replace(":", "%3a")):
        resp = client.raw("GET", f"/v2/{garbage_repo}/blobs/{bad}")
        assert resp.status_code in (400, 404), describe(resp)
        assert_error(resp, resp.status_code, ("DIGEST_INVALID", "BLOB_UNKNOWN"))
