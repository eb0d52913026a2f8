"""Manifest push and pull (end-3, end-7a, end-7b) for every supported kind.

OCI image manifest, OCI index, Docker schema2 manifest, Docker manifest list and
an artifact manifest are stored and served byte for byte (odd whitespace and key
order included), by tag and by digest (sha256 and sha512). Error paths:
DIGEST_INVALID, MANIFEST_BLOB_UNKNOWN (tag untouched), MANIFEST_INVALID,
unknown media types, 413 over 4 MiB, bad tags and MANIFEST_UNKNOWN.
"""

import json

import pytest

from helpers import (
    DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST, DOCKER_MANIFEST, EMPTY_DESCRIPTOR, MiB,
    OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, assert_error, config_bytes, describe,
    descriptor, expect_status, get_manifest, push_blob, push_image, push_manifest, random_bytes,
    sha256_digest, sha512_digest,
)


def weird_json(doc: dict) -> bytes:
    """Valid JSON with reversed key order, tabs, spaces before commas, CRLF and a raw é."""
    def rev(x):
        if isinstance(x, dict):
            return {k: rev(x[k]) for k in reversed(list(x))}
        if isinstance(x, list):
            return [rev(v) for v in x]
        return x
    text = json.dumps(rev(doc), indent="\t", separators=(" ,", " :  "), ensure_ascii=False)
    return ("\r\n  " + text + "\n\n").encode("utf-8")


def _blobs(client, repo, media_type_cfg, media_type_layer, arch="amd64"):
    layers = [random_bytes(700), random_bytes(1300)]
    cfg = config_bytes(arch, layers)
    for b in [cfg, *layers]:
        push_blob(client, repo, b)
    return descriptor(media_type_cfg, cfg), [descriptor(media_type_layer, x) for x in layers]


def _oci_image(client, repo, arch="amd64"):
    cfg, layers = _blobs(client, repo, OCI_CONFIG, OCI_LAYER, arch)
    return weird_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg,
                       "layers": layers, "annotations": {"e2e.note": "caf\u00e9 \\u00e9"}})


def _docker_image(client, repo, arch="amd64"):
    cfg, layers = _blobs(client, repo, DOCKER_CONFIG, DOCKER_LAYER, arch)
    return weird_json({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": cfg,
                       "layers": layers})


def _list(client, repo, child_builder, child_type, list_type):
    entries = []
    for arch in ("amd64", "arm64"):
        body = child_builder(client, repo, arch)
        push_manifest(client, repo, sha256_digest(body), body, child_type)
        entries.append(descriptor(child_type, body, platform={"architecture": arch, "os": "linux"}))
    return weird_json({"schemaVersion": 2, "mediaType": list_type, "manifests": entries})


def _artifact(client, repo):
    push_blob(client, repo, b"{}")
    sbom = b'{"sbom": true}'
    push_blob(client, repo, sbom)
    return weird_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "artifactType": "application/vnd.e2e.sbom.v1",
                       "config": EMPTY_DESCRIPTOR,
                       "layers": [descriptor("application/vnd.e2e.sbom.v1+json", sbom)],
                       "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}})


KINDS = {
    "oci-image": (OCI_MANIFEST, _oci_image),
    "oci-index": (OCI_INDEX, lambda c, r: _list(c, r, _oci_image, OCI_MANIFEST, OCI_INDEX)),
    "docker-v2": (DOCKER_MANIFEST, _docker_image),
    "docker-list": (DOCKER_LIST,
                    lambda c, r: _list(c, r, _docker_image, DOCKER_MANIFEST, DOCKER_LIST)),
    "artifact": (OCI_MANIFEST, _artifact),
}


def assert_manifest(client, repo, ref, body, media_type, digest=None):
    digest = digest or sha256_digest(body)
    resp = expect_status(get_manifest(client, repo, ref), 200)
    assert resp.content == body, describe(resp)
    assert resp.headers["Content-Type"].split(";")[0].strip() == media_type
    assert resp.headers["Docker-Content-Digest"] == digest
    assert int(resp.headers["Content-Length"]) == len(body)
    head = expect_status(client.head(f"/v2/{repo}/manifests/{ref}",
                                     headers={"Accept": media_type}), 200)
    assert head.content == b""
    assert head.headers["Docker-Content-Digest"] == digest
    assert int(head.headers["Content-Length"]) == len(body)
    assert head.headers["Content-Type"].split(";")[0].strip() == media_type


@pytest.mark.parametrize("kind", list(KINDS))
def test_push_pull_kind_byte_for_byte(client, repo, kind):
    media_type, build = KINDS[kind]
    body = build(client, repo)
    resp = push_manifest(client, repo, "v1", body, media_type)
    digest = sha256_digest(body)
    assert resp.headers["Location"].split("?")[0].endswith(f"/v2/{repo}/manifests/{digest}") or \
        resp.headers["Location"].split("?")[0].endswith(f"/v2/{repo}/manifests/v1")
    assert_manifest(client, repo, "v1", body, media_type)
    assert_manifest(client, repo, digest, body, media_type)


def test_push_by_digest(client, repo):
    body = _oci_image(client, repo)
    digest = sha256_digest(body)
    push_manifest(client, repo, digest, body, OCI_MANIFEST)
    assert_manifest(client, repo, digest, body, OCI_MANIFEST)
    tags = expect_status(client.get(f"/v2/{repo}/tags/list"), 200).json()
    assert tags["name"] == repo and tags.get("tags") in ([], None)


def test_push_same_manifest_twice(client, repo):
    body = _oci_image(client, repo)
    push_manifest(client, repo, "a", body, OCI_MANIFEST)
    push_manifest(client, repo, "a", body, OCI_MANIFEST)
    assert_manifest(client, repo, "a", body, OCI_MANIFEST)


def test_retag_moves_tag(client, repo):
    first = push_image(client, repo, "t")
    second = push_image(client, repo, "t")
    assert_manifest(client, repo, "t", second["manifest"], OCI_MANIFEST)
    assert_manifest(client, repo, first["digest"], first["manifest"], OCI_MANIFEST)


def test_sha512_manifest_digest(client, repo):
    body = _oci_image(client, repo)
    digest = sha512_digest(body)
    resp = push_manifest(client, repo, digest, body, OCI_MANIFEST)
    assert resp.headers["Docker-Content-Digest"] == digest
    assert_manifest(client, repo, digest, body, OCI_MANIFEST, digest=digest)


@pytest.mark.parametrize("algo", ["sha256", "sha512"])
def test_push_by_wrong_digest(client, repo, algo):
    body = _oci_image(client, repo)
    other = body + b" "
    wrong = sha256_digest(other) if algo == "sha256" else sha512_digest(other)
    resp = push_manifest(client, repo, wrong, body, OCI_MANIFEST, expect=None)
    assert_error(resp, 400, "DIGEST_INVALID")
    for d in (wrong, sha256_digest(body)):
        assert_error(get_manifest(client, repo, d), 404, ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"))


def _missing_config(c, r):
    cfg, layers = _blobs(c, r, OCI_CONFIG, OCI_LAYER)
    cfg = descriptor(OCI_CONFIG, random_bytes(50))
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg,
                       "layers": layers}).encode(), OCI_MANIFEST


def _missing_layer(c, r):
    cfg, layers = _blobs(c, r, OCI_CONFIG, OCI_LAYER)
    layers.append(descriptor(OCI_LAYER, random_bytes(50)))
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg,
                       "layers": layers}).encode(), OCI_MANIFEST


def _missing_child(c, r):
    child = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": descriptor(OCI_CONFIG, b"{}"), "layers": []}).encode()
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                       "manifests": [descriptor(OCI_MANIFEST, child)]}).encode(), OCI_INDEX


def _missing_docker_layer(c, r):
    cfg, layers = _blobs(c, r, DOCKER_CONFIG, DOCKER_LAYER)
    layers.insert(0, descriptor(DOCKER_LAYER, random_bytes(50)))
    return json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": cfg,
                       "layers": layers}).encode(), DOCKER_MANIFEST


@pytest.mark.parametrize("build", [_missing_config, _missing_layer, _missing_child,
                                   _missing_docker_layer], ids=lambda f: f.__name__[1:])
def test_missing_reference_leaves_tag_alone(client, repo, build):
    before = push_image(client, repo, "stable")
    body, media_type = build(client, repo)
    for ref in ("stable", "fresh"):
        resp = push_manifest(client, repo, ref, body, media_type, expect=None)
        assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
    assert_manifest(client, repo, "stable", before["manifest"], OCI_MANIFEST)
    assert_error(get_manifest(client, repo, "fresh"), 404, "MANIFEST_UNKNOWN")
    assert_error(get_manifest(client, repo, sha256_digest(body)), 404, "MANIFEST_UNKNOWN")


BAD_BODIES = {
    "truncated": b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode(),
    "not-json": b"this is not json",
    "empty": b"",
    "array": b"[]",
    "null": b"null",
    "binary": bytes(range(256)) * 4,
    "no-config": json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(),
    "layers-not-list": json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                   "config": EMPTY_DESCRIPTOR, "layers": {}}).encode(),
    "schema-1": json.dumps({"schemaVersion": 1, "mediaType": OCI_MANIFEST,
                            "config": EMPTY_DESCRIPTOR, "layers": []}).encode(),
    "size-string": json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                               "config": {**EMPTY_DESCRIPTOR, "size": "2"}}).encode(),
    "bad-utf8": b'{"schemaVersion": 2, "annotations": {"a": "\xff\xfe"}}',
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_malformed_manifest(client, repo, name):
    push_blob(client, repo, b"{}")
    resp = push_manifest(client, repo, "bad", BAD_BODIES[name], OCI_MANIFEST, expect=None)
    assert_error(resp, 400, "MANIFEST_INVALID")
    assert_error(get_manifest(client, repo, "bad"), 404, ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"))


def test_invalid_descriptor_digest(client, repo):
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                       "config": {**EMPTY_DESCRIPTOR, "digest": "sha256:zzz"}}).encode()
    resp = push_manifest(client, repo, "bad", body, OCI_MANIFEST, expect=None)
    assert_error(resp, 400, ("MANIFEST_INVALID", "DIGEST_INVALID"))


@pytest.mark.parametrize("ctype", ["application/x-unknown", "text/plain", OCI_CONFIG,
                                   "application/vnd.docker.distribution.manifest.v1+json"])
def test_unknown_media_type(client, repo, ctype):
    body = push_image(client, repo, None)["manifest"]
    resp = push_manifest(client, repo, "odd", body, ctype, expect=None)
    assert_error(resp, 400, ("MANIFEST_INVALID", "UNSUPPORTED"))
    assert_error(get_manifest(client, repo, "odd"), 404, "MANIFEST_UNKNOWN")


def _padded(client, repo, total):
    push_blob(client, repo, b"{}")
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": EMPTY_DESCRIPTOR,
           "layers": [], "annotations": {"pad": ""}}
    base = len(json.dumps(doc).encode())
    doc["annotations"]["pad"] = "x" * (total - base)
    body = json.dumps(doc).encode()
    assert len(body) == total
    return body


def test_manifest_of_exactly_4mib_is_accepted(client, repo):
    body = _padded(client, repo, 4 * MiB)
    push_manifest(client, repo, "big", body, OCI_MANIFEST)
    assert_manifest(client, repo, "big", body, OCI_MANIFEST)


def test_manifest_over_4mib_is_413(client, repo):
    body = _padded(client, repo, 4 * MiB + 1)
    resp = push_manifest(client, repo, "huge", body, OCI_MANIFEST, expect=None)
    assert_error(resp, 413, "SIZE_INVALID")
    assert_error(get_manifest(client, repo, "huge"), 404, "MANIFEST_UNKNOWN")


def test_push_with_several_tags(client, repo):
    img = push_image(client, repo, None)
    tags = ["1.2.3", "1.2", "latest"]
    resp = push_manifest(client, repo, img["digest"], img["manifest"], OCI_MANIFEST,
                         params=[("tag", t) for t in tags])
    announced = [t.strip() for t in resp.headers.get("OCI-Tag", "").split(",") if t.strip()]
    assert sorted(announced) == sorted(tags), describe(resp)
    for t in tags:
        assert_manifest(client, repo, t, img["manifest"], OCI_MANIFEST)
    listed = expect_status(client.get(f"/v2/{repo}/tags/list"), 200).json()["tags"]
    assert listed == sorted(tags)


BAD_TAGS = ["-lead", ".lead", "a" * 129, "has+plus", "has:colon", "sp ace", "t\u00e9"]
TAG_CODES = ("MANIFEST_INVALID", "TAG_INVALID", "DIGEST_INVALID")  # "has:colon" parses as a digest


@pytest.mark.parametrize("tag", BAD_TAGS, ids=range(len(BAD_TAGS)))
def test_bad_tag_rejected(client, repo, tag):
    img = push_image(client, repo, None)
    resp = push_manifest(client, repo, tag, img["manifest"], OCI_MANIFEST, expect=None)
    assert_error(resp, 400, TAG_CODES)
    resp = push_manifest(client, repo, img["digest"], img["manifest"], OCI_MANIFEST,
                         expect=None, params=[("tag", "ok"), ("tag", tag)])
    assert_error(resp, 400, TAG_CODES)
    assert_error(get_manifest(client, repo, "ok"), 404, "MANIFEST_UNKNOWN")


def test_longest_tag_accepted(client, repo):
    tag = "_" + "a.b-c" * 25 + "zz"  # 128 characters
    assert len(tag) == 128
    img = push_image(client, repo, tag)
    assert_manifest(client, repo, tag, img["manifest"], OCI_MANIFEST)


def test_unknown_manifest(client, repo):
    push_image(client, repo, "exists")
    missing = sha256_digest(random_bytes(8))
    # ".INVALID_MANIFEST_NAME" is the conformance suite's (v1.1.1): a reference that cannot
    # exist is not found on reads (PUT and DELETE of one stay 400, test_bad_tag_rejected).
    for ref in ("nope", missing, ".INVALID_MANIFEST_NAME"):
        assert_error(get_manifest(client, repo, ref), 404, "MANIFEST_UNKNOWN")
        head = expect_status(client.head(f"/v2/{repo}/manifests/{ref}"), 404)
        assert head.content == b""
    assert_error(get_manifest(client, repo + "-absent", "latest"), 404,
                 ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"))
