"""Small HTTP client helpers for the end-to-end suite.

Everything here speaks plain OCI distribution HTTP through `requests` with a
timeout on every call: blob pushes (single POST, POST+PUT, chunked PATCHes),
manifest pushes and builders, digest helpers, per-test repository names and
`assert_error` for the spec's JSON error body. The OCI image-layout writer used
by the skopeo tests lives in `layout.py` and is re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from layout import (  # noqa: F401  (re-exported for the tests)
    LayoutImage,
    layout_manifest_digest,
    read_layout_blobs,
    write_oci_layout_image,
    write_oci_layout_index,
)

TIMEOUT = float(os.environ.get("E2E_HTTP_TIMEOUT", "120"))
API_VERSION = "registry/2.0"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_DESCRIPTOR = {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2, "data": "e30="}

ERROR_CODE_RE = re.compile(r"^[A-Z_]+$")
SPEC_ERROR_CODES = frozenset({
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
    "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED",
    "TOOMANYREQUESTS", "TAG_INVALID", "MANIFEST_UNVERIFIED"})
MiB = 1024 * 1024


# --------------------------------------------------------------------- digests

def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512_digest(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def random_repo(test_name: str, prefix: str = "e2e") -> str:
    """`e2e/<test>-<random>`: a valid, unique repository name for one test."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:48].strip("-")
    return f"{prefix}/{slug or 'test'}-{secrets.token_hex(4)}"


# ---------------------------------------------------------------------- client

def with_query(url: str, params) -> str:
    """Append query params (dict or list of pairs) to url, keeping its own query."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    pairs += list(params.items()) if isinstance(params, dict) else list(params)
    return urlunsplit(parts._replace(query=urlencode(pairs)))


class Client:
    """A requests.Session bound to one registry URL with a default timeout.

    Paths are resolved against the registry URL (so a relative Location works
    as is); `Accept-Encoding: identity` keeps byte counts honest.
    """

    def __init__(self, base_url: str, timeout: float = TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # never route loopback traffic through a proxy
        self.session.headers["Accept-Encoding"] = "identity"

    def url(self, path_or_url: str) -> str:
        return urljoin(self.base_url + "/", path_or_url)

    def request(self, method: str, path_or_url: str, **kw) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        kw.setdefault("allow_redirects", False)
        return self.session.request(method, self.url(path_or_url), **kw)

    def raw(self, method: str, path: str, headers=None, data=None, **kw) -> requests.Response:
        """Send path byte for byte: no re-quoting of %XX escapes, no dot-segment cleanup."""
        prep = self.session.prepare_request(
            requests.Request(method, self.base_url + "/", headers=headers, data=data))
        prep.url = self.base_url + path
        kw.setdefault("timeout", self.timeout)
        kw.setdefault("allow_redirects", False)
        return self.session.send(prep, **kw)

    def get(self, p, **kw):
        return self.request("GET", p, **kw)

    def head(self, p, **kw):
        return self.request("HEAD", p, **kw)

    def post(self, p, **kw):
        return self.request("POST", p, **kw)

    def put(self, p, **kw):
        return self.request("PUT", p, **kw)

    def patch(self, p, **kw):
        return self.request("PATCH", p, **kw)

    def delete(self, p, **kw):
        return self.request("DELETE", p, **kw)

    def close(self):
        self.session.close()


# ------------------------------------------------------------------ assertions

def describe(resp: requests.Response) -> str:
    body = resp.content[:600] if resp.request.method != "HEAD" else b""
    return f"{resp.request.method} {resp.url} -> {resp.status_code} {dict(resp.headers)} {body!r}"


def expect_status(resp: requests.Response, *statuses: int) -> requests.Response:
    assert resp.status_code in statuses, f"expected {statuses}: {describe(resp)}"
    assert_api_version(resp)
    return resp


def assert_api_version(resp: requests.Response) -> None:
    got = resp.headers.get("Docker-Distribution-API-Version")
    assert got == API_VERSION, f"Docker-Distribution-API-Version={got!r}: {describe(resp)}"


def error_codes(resp: requests.Response) -> list[str]:
    """Parse the spec error body and return its codes (asserting its shape)."""
    try:
        body = resp.json()
    except ValueError as exc:  # pragma: no cover - assertion message path
        raise AssertionError(f"error body is not JSON: {describe(resp)}") from exc
    assert isinstance(body, dict) and isinstance(body.get("errors"), list), describe(resp)
    assert body["errors"], f"empty errors list: {describe(resp)}"
    codes = []
    for err in body["errors"]:
        assert isinstance(err, dict), describe(resp)
        code = err.get("code")
        assert isinstance(code, str) and ERROR_CODE_RE.match(code), describe(resp)
        assert isinstance(err.get("message", ""), str), describe(resp)
        codes.append(code)
    return codes


def assert_error(resp: requests.Response, status, code) -> None:
    """Assert status (int or tuple) and that a JSON error carries code.

    code is a str, a tuple of acceptable codes, or None for "any spec code".
    """
    statuses = status if isinstance(status, (tuple, list, set)) else (status,)
    if code is None:
        accepted = SPEC_ERROR_CODES
    else:
        accepted = code if isinstance(code, (tuple, list, set, frozenset)) else (code,)
    assert resp.status_code in statuses, f"expected {statuses}/{accepted}: {describe(resp)}"
    assert_api_version(resp)
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", f"error Content-Type: {describe(resp)}"
    codes = error_codes(resp)
    assert any(c in accepted for c in codes), f"expected one of {accepted}, got {codes}: {describe(resp)}"


def parse_range(value: str | None) -> tuple[int, int]:
    """Parse an upload `Range: 0-<end>` header (no `bytes=` prefix)."""
    m = re.fullmatch(r"(\d+)-(\d+)", (value or "").strip())
    assert m, f"bad upload Range header {value!r}"
    return int(m.group(1)), int(m.group(2))


def location_path(resp: requests.Response) -> str:
    loc = resp.headers.get("Location")
    assert loc, f"no Location: {describe(resp)}"
    return urlsplit(loc).path


# ------------------------------------------------------------------ blob pushes

def start_upload(client: Client, repo: str, params=None) -> tuple[requests.Response, str]:
    """POST /v2/<repo>/blobs/uploads/ -> (202 response, absolute Location)."""
    url = f"/v2/{repo}/blobs/uploads/"
    if params:
        url = with_query(url, params)
    resp = client.post(url, headers={"Content-Length": "0"})
    expect_status(resp, 202)
    assert location_path(resp).startswith(f"/v2/{repo}/blobs/uploads/"), describe(resp)
    return resp, client.url(resp.headers["Location"])


def push_blob(client: Client, repo: str, data: bytes, mode: str = "post") -> str:
    """Push data as one blob; mode "post" (single POST ?digest=) or "post-put"."""
    digest = sha256_digest(data)
    octet = {"Content-Type": "application/octet-stream"}
    if mode == "post":
        resp = client.post(with_query(f"/v2/{repo}/blobs/uploads/", {"digest": digest}),
                           data=data, headers=octet)
    elif mode == "post-put":
        _, loc = start_upload(client, repo)
        resp = client.put(with_query(loc, {"digest": digest}), data=data, headers=octet)
    else:
        raise ValueError(mode)
    expect_status(resp, 201)
    assert location_path(resp) == f"/v2/{repo}/blobs/{digest}", describe(resp)
    assert resp.headers.get("Docker-Content-Digest") == digest, describe(resp)
    return digest


def patch_chunk(client: Client, loc: str, chunk: bytes, start: int | None) -> requests.Response:
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(chunk))}
    if start is not None:
        headers["Content-Range"] = f"{start}-{start + len(chunk) - 1}"
    return client.patch(loc, data=chunk, headers=headers)


# What wrangler's dev proxy answers a non-GET request whose fetch to the worker's workerd
# failed (a hiccup of the local proxy under load, seen on the raw baseline worker too).
PROXY_503 = "Your worker restarted mid-request"


def _resume_after_proxy_503(client: Client, loc: str, resp, chunk: bytes, pos: int, content_range: bool):
    """A PATCH that wrangler's proxy answered with its own 503 is resumed as a careful client
    resumes any interrupted chunk: it asks the upload's status (GET, which the proxy retries)
    and sends the chunk again only if the registry did not take it. Any other answer, and a
    status the chunk does not explain, is left for the caller's checks."""
    for _ in range(2):
        if resp.status_code != 503 or PROXY_503 not in resp.text:
            return resp, loc
        status = expect_status(client.get(loc), 204)
        taken = parse_range(status.headers.get("Range"))
        if taken == (0, pos + len(chunk) - 1):
            return status, loc  # the chunk landed: its answer was lost, not the chunk
        assert taken == (0, max(pos - 1, 0)), describe(status)  # (an empty upload says 0-0)
        resp = patch_chunk(client, loc, chunk, pos if content_range else None)
    return resp, loc


def upload_chunked(client: Client, repo: str, data: bytes, sizes, final_in_put: bool = False,
                   content_range: bool = True, algorithm: str = "sha256") -> str:
    """Upload data in PATCH chunks of the given sizes (the rest goes in the last one).

    With final_in_put the remainder rides on the closing PUT instead of a PATCH.
    Checks every 202's Range header and returns the digest.
    """
    digest = sha512_digest(data) if algorithm == "sha512" else sha256_digest(data)
    params = {"digest-algorithm": algorithm} if algorithm != "sha256" else None
    _, loc = start_upload(client, repo, params)
    offset, chunks = 0, []
    for size in sizes:
        if offset + size >= len(data):
            break
        chunks.append(data[offset:offset + size])
        offset += size
    tail = data[offset:]
    if not final_in_put and tail:
        chunks.append(tail)
        tail = b""
    pos = 0
    for chunk in chunks:
        resp = patch_chunk(client, loc, chunk, pos if content_range else None)
        resp, loc = _resume_after_proxy_503(client, loc, resp, chunk, pos, content_range)
        expect_status(resp, 202)
        pos += len(chunk)
        assert parse_range(resp.headers.get("Range")) == (0, pos - 1), describe(resp)
        assert resp.headers.get("Location"), describe(resp)
        loc = client.url(resp.headers["Location"])
    headers = {"Content-Type": "application/octet-stream"}
    if tail:
        headers["Content-Range"] = f"{pos}-{pos + len(tail) - 1}"
    resp = client.put(with_query(loc, {"digest": digest}), data=tail, headers=headers)
    expect_status(resp, 201)
    assert location_path(resp) == f"/v2/{repo}/blobs/{digest}", describe(resp)
    assert resp.headers.get("Docker-Content-Digest") == digest, describe(resp)
    return digest


def pull_blob(client: Client, repo: str, digest: str) -> bytes:
    resp = client.get(f"/v2/{repo}/blobs/{digest}")
    expect_status(resp, 200)
    assert resp.headers.get("Docker-Content-Digest") == digest, describe(resp)
    return resp.content


# -------------------------------------------------------------------- manifests

def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data), **extra}


def config_bytes(arch: str = "amd64", layers=()) -> bytes:
    cfg = {"architecture": arch, "os": "linux", "config": {},
           "rootfs": {"type": "layers", "diff_ids": [sha256_digest(x) for x in layers]}}
    return json.dumps(cfg, sort_keys=True).encode()


def image_manifest(config: dict, layers: list, media_type: str = OCI_MANIFEST,
                   subject: dict | None = None, artifact_type: str | None = None,
                   annotations: dict | None = None) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": layers}
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = annotations
    return json.dumps(doc, indent=3).encode()


def index_manifest(manifests: list, media_type: str = OCI_INDEX, **extra) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests, **extra}
    return json.dumps(doc, indent=2).encode()


def push_manifest(client: Client, repo: str, ref: str, body: bytes, media_type: str,
                  expect: int | None = 201, params=None) -> requests.Response:
    """PUT a manifest; with expect=201 also checks Location and Docker-Content-Digest."""
    url = f"/v2/{repo}/manifests/{ref}"
    if params:
        url = with_query(url, params)
    resp = client.put(url, data=body, headers={"Content-Type": media_type})
    if expect is not None:
        expect_status(resp, expect)
    if expect == 201:
        want = sha512_digest(body) if ref.startswith("sha512:") else sha256_digest(body)
        assert resp.headers.get("Docker-Content-Digest") == want, describe(resp)
        assert location_path(resp).startswith(f"/v2/{repo}/manifests/"), describe(resp)
    return resp


def push_image(client: Client, repo: str, tag: str | None, n_layers: int = 2,
               layer_size: int = 1024, arch: str = "amd64", **manifest_kw) -> dict:
    """Push config + n random layers + an OCI manifest; returns what was pushed."""
    layers = [b"e2e-layer\0" + random_bytes(layer_size) for _ in range(n_layers)]
    cfg = config_bytes(arch, layers)
    for blob in [cfg, *layers]:
        push_blob(client, repo, blob)
    body = image_manifest(descriptor(OCI_CONFIG, cfg),
                          [descriptor(OCI_LAYER, x) for x in layers], **manifest_kw)
    digest = sha256_digest(body)
    push_manifest(client, repo, tag or digest, body, OCI_MANIFEST)
    return {"manifest": body, "digest": digest, "config": cfg, "layers": layers,
            "blobs": {sha256_digest(b): b for b in [cfg, *layers]}}


def get_manifest(client: Client, repo: str, ref: str, accept: str | None = None):
    headers = {"Accept": accept or ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])}
    return client.get(f"/v2/{repo}/manifests/{ref}", headers=headers)


def parse_link(resp: requests.Response) -> str | None:
    """Return the target of `Link: <...>; rel="next"`, or None when absent."""
    link = resp.headers.get("Link")
    if not link:
        return None
    m = re.fullmatch(r'\s*<([^>]+)>\s*;\s*rel="?next"?\s*', link)
    assert m, f"malformed Link header {link!r}"
    return m.group(1)
