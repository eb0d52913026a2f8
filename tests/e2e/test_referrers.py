"""Subjects and the referrers API (end-12a, end-12b).

A manifest with `subject` is answered with `OCI-Subject`; dangling subjects are
accepted; GET /v2/<name>/referrers/<digest> lists each referrer's descriptor
(mediaType, digest, size, artifactType, annotations) as an OCI index, filters by
artifactType with `OCI-Filters-Applied`, is scoped to the repository, rejects
bad digests with 400, and forgets referrers whose manifest was deleted.
"""

import json

import pytest

from helpers import (
    EMPTY_DESCRIPTOR, OCI_INDEX, OCI_MANIFEST, assert_error, descriptor, expect_status,
    push_blob, push_image, push_manifest, random_bytes, sha256_digest,
)

SBOM = "application/vnd.e2e.sbom.v1"
SIG_CONFIG = "application/vnd.e2e.signature.config.v1+json"


def _subject(body: bytes, media_type: str = OCI_MANIFEST) -> dict:
    return {"mediaType": media_type, "digest": sha256_digest(body), "size": len(body)}


def push_artifact(client, repo, subject, artifact_type=SBOM, annotations=None, tag=None):
    """An artifact manifest (empty config) with one layer, referring to subject."""
    push_blob(client, repo, b"{}")
    payload = random_bytes(64)
    push_blob(client, repo, payload)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
           "config": EMPTY_DESCRIPTOR, "layers": [descriptor(artifact_type + "+bin", payload)],
           "subject": subject}
    if annotations:
        doc["annotations"] = annotations
    body = json.dumps(doc, indent=1).encode()
    resp = push_manifest(client, repo, tag or sha256_digest(body), body, OCI_MANIFEST)
    assert resp.headers.get("OCI-Subject") == subject["digest"], dict(resp.headers)
    return body


def push_signature_image(client, repo, subject, annotations):
    """An image manifest without artifactType: its config media type becomes artifactType."""
    cfg = b'{"signature": "e2e"}'
    push_blob(client, repo, cfg)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": descriptor(SIG_CONFIG, cfg), "layers": [], "subject": subject,
           "annotations": annotations}
    body = json.dumps(doc).encode()
    resp = push_manifest(client, repo, sha256_digest(body), body, OCI_MANIFEST)
    assert resp.headers.get("OCI-Subject") == subject["digest"], dict(resp.headers)
    return body


def push_index_referrer(client, repo, subject, child_body):
    """An index with a subject and no artifactType: the descriptor omits artifactType."""
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "subject": subject,
           "manifests": [descriptor(OCI_MANIFEST, child_body)],
           "annotations": {"e2e.kind": "index"}}
    body = json.dumps(doc).encode()
    resp = push_manifest(client, repo, sha256_digest(body), body, OCI_INDEX)
    assert resp.headers.get("OCI-Subject") == subject["digest"], dict(resp.headers)
    return body


def referrers(client, repo, digest, artifact_type=None):
    params = {"artifactType": artifact_type} if artifact_type else None
    resp = expect_status(client.get(f"/v2/{repo}/referrers/{digest}", params=params), 200)
    assert resp.headers["Content-Type"].split(";")[0].strip() == OCI_INDEX
    body = resp.json()
    assert body["schemaVersion"] == 2 and body["mediaType"] == OCI_INDEX, body
    assert isinstance(body["manifests"], list), body
    return resp, sorted(body["manifests"], key=lambda d: d["digest"])


def expected(body, media_type, artifact_type, annotations):
    d = {"mediaType": media_type, "digest": sha256_digest(body), "size": len(body)}
    if artifact_type:
        d["artifactType"] = artifact_type
    if annotations:
        d["annotations"] = annotations
    return d


def _project(desc):
    keys = ("mediaType", "digest", "size", "artifactType", "annotations")
    return {k: desc[k] for k in keys if k in desc}


@pytest.fixture
def graph(client, repo):
    """A subject image with an SBOM artifact, a signature image and an index referrer."""
    subj = push_image(client, repo, "app")
    subject = _subject(subj["manifest"])
    sbom_ann = {"org.opencontainers.image.created": "2024-02-02T00:00:00Z", "e2e.n": "1"}
    sbom = push_artifact(client, repo, subject, annotations=sbom_ann)
    sig_ann = {"e2e.fingerprint": "abcd"}
    sig = push_signature_image(client, repo, subject, sig_ann)
    idx = push_index_referrer(client, repo, subject, sig)
    push_image(client, repo, "unrelated")  # no subject: never listed
    want = sorted([
        expected(sbom, OCI_MANIFEST, SBOM, sbom_ann),
        expected(sig, OCI_MANIFEST, SIG_CONFIG, sig_ann),
        expected(idx, OCI_INDEX, None, {"e2e.kind": "index"}),
    ], key=lambda d: d["digest"])
    return subj["digest"], want


def test_referrers_list(client, repo, graph):
    subject, want = graph
    _, got = referrers(client, repo, subject)
    assert [_project(d) for d in got] == want
    index_entry = next(d for d in got if d["mediaType"] == OCI_INDEX)
    assert "artifactType" not in index_entry


def test_referrers_filter(client, repo, graph):
    subject, want = graph
    resp, got = referrers(client, repo, subject, SBOM)
    assert resp.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [_project(d) for d in got] == [w for w in want if w.get("artifactType") == SBOM]
    resp, got = referrers(client, repo, subject, SIG_CONFIG)
    assert [d["artifactType"] for d in got] == [SIG_CONFIG]
    resp, got = referrers(client, repo, subject, "application/vnd.e2e.none")
    assert resp.headers.get("OCI-Filters-Applied") == "artifactType"
    assert got == []


def test_referrers_none(client, repo):
    push_image(client, repo, "x")
    for digest in (sha256_digest(random_bytes(10)), push_image(client, repo, "y")["digest"]):
        resp, got = referrers(client, repo, digest)
        assert got == []
        assert "OCI-Filters-Applied" not in resp.headers


def test_dangling_subject(client, repo):
    ghost = {"mediaType": OCI_MANIFEST, "digest": sha256_digest(random_bytes(99)), "size": 99}
    body = push_artifact(client, repo, ghost, tag="sbom")
    _, got = referrers(client, repo, ghost["digest"])
    assert [_project(d) for d in got] == [expected(body, OCI_MANIFEST, SBOM, None)]
    # The referrer itself is an ordinary manifest: pullable by tag and digest.
    resp = expect_status(client.get(f"/v2/{repo}/manifests/sbom",
                                    headers={"Accept": OCI_MANIFEST}), 200)
    assert resp.content == body


def test_referrers_scoped_to_repository(client, repo, repo2, graph):
    subject, _ = graph
    push_blob(client, repo2, b"x")
    _, got = referrers(client, repo2, subject)
    assert got == []


@pytest.mark.parametrize("digest", ["sha256:xyz", "sha256:" + "A" * 64, "latest", "sha256:"])
def test_referrers_bad_digest(client, repo, digest):
    push_image(client, repo, "x")
    assert_error(client.get(f"/v2/{repo}/referrers/{digest}"), 400, "DIGEST_INVALID")


def test_deleted_referrer_disappears(client, repo, graph):
    subject, want = graph
    victim = next(w for w in want if w.get("artifactType") == SBOM)
    expect_status(client.delete(f"/v2/{repo}/manifests/{victim['digest']}"), 202)
    _, got = referrers(client, repo, subject)
    assert [_project(d) for d in got] == [w for w in want if w is not victim]


def test_referrer_is_not_its_own_subject(client, repo):
    """Referrers are keyed by the subject digest only, not by the referrer's own digest."""
    img_body = push_image(client, repo, None)
    subject = _subject(img_body["manifest"])
    sbom = push_artifact(client, repo, subject)
    _, got = referrers(client, repo, sha256_digest(sbom))
    assert got == []
    _, got = referrers(client, repo, subject["digest"])
    assert [d["digest"] for d in got] == [sha256_digest(sbom)]
