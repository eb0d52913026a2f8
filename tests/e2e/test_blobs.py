"""Blob pulls, ranges, repository scoping, cross-repository mounts and deletes.

Covers end-2 (GET/HEAD blob, with Range), end-10 (DELETE blob) and end-11
(POST ?mount=&from=), including BLOB_UNKNOWN and DIGEST_INVALID error paths.
"""

import pytest

from helpers import (
    assert_error, describe, expect_status, location_path, pull_blob, push_blob, random_bytes,
    sha256_digest, with_query,
)

SIZE = 10_000


@pytest.fixture
def blob(client, repo):
    data = random_bytes(SIZE)
    return push_blob(client, repo, data), data


def test_get_and_head_blob(client, repo, blob):
    digest, data = blob
    resp = expect_status(client.get(f"/v2/{repo}/blobs/{digest}"), 200)
    assert resp.content == data
    assert resp.headers["Docker-Content-Digest"] == digest
    assert int(resp.headers["Content-Length"]) == SIZE
    head = expect_status(client.head(f"/v2/{repo}/blobs/{digest}"), 200)
    assert head.content == b""
    assert int(head.headers["Content-Length"]) == SIZE
    assert head.headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize("header,start,end", [
    ("bytes=0-9", 0, 9),
    ("bytes=100-199", 100, 199),
    ("bytes=9999-9999", 9999, 9999),
    ("bytes=5000-", 5000, SIZE - 1),
    ("bytes=-50", SIZE - 50, SIZE - 1),
    ("bytes=0-", 0, SIZE - 1),
    ("bytes=9990-20000", 9990, SIZE - 1),
])
def test_range_requests(client, repo, blob, header, start, end):
    digest, data = blob
    resp = expect_status(client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header}), 206)
    assert resp.content == data[start:end + 1]
    assert resp.headers.get("Content-Range") == f"bytes {start}-{end}/{SIZE}", describe(resp)
    assert int(resp.headers["Content-Length"]) == end - start + 1


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}"])
def test_unsatisfiable_range(client, repo, blob, header):
    digest, _ = blob
    resp = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    expect_status(resp, 416)


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=5-2", "items=0-1", "bytes=--1"])
def test_garbage_range_never_5xx(client, repo, blob, header):
    """An unparseable Range may be ignored (200, whole blob) or refused (416)."""
    digest, data = blob
    resp = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    expect_status(resp, 200, 416)
    if resp.status_code == 200:
        assert resp.content == data


def test_unknown_blob(client, repo, blob):
    missing = sha256_digest(random_bytes(32))
    assert_error(client.get(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    head = expect_status(client.head(f"/v2/{repo}/blobs/{missing}"), 404)
    assert head.content == b""


def test_unknown_blob_in_unknown_repo(client, repo):
    missing = sha256_digest(random_bytes(32))
    assert_error(client.get(f"/v2/{repo}-none/blobs/{missing}"), 404,
                 ("BLOB_UNKNOWN", "NAME_UNKNOWN"))


@pytest.mark.parametrize("digest", [
    "sha256:xyz", "sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha256:" + "a" * 65,
    "sha512:" + "a" * 64, "sha256", "sha256:", ":" + "a" * 64,
])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_bad_digest_syntax(client, repo, blob, digest, method):
    assert_error(client.request(method, f"/v2/{repo}/blobs/{digest}"), 400, "DIGEST_INVALID")


def test_blob_not_visible_in_other_repo(client, repo, repo2, blob):
    digest, _ = blob
    assert_error(client.get(f"/v2/{repo2}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    expect_status(client.head(f"/v2/{repo2}/blobs/{digest}"), 404)
    # Pushing the same bytes to the other repo makes them visible there too.
    push_blob(client, repo2, blob[1])
    assert pull_blob(client, repo2, digest) == blob[1]


def _mount(client, repo, digest, source=None):
    params = {"mount": digest}
    if source:
        params["from"] = source
    return client.post(with_query(f"/v2/{repo}/blobs/uploads/", params))


def test_mount_from_other_repo(client, repo, repo2, blob):
    digest, data = blob
    resp = expect_status(_mount(client, repo2, digest, repo), 201)
    assert location_path(resp) == f"/v2/{repo2}/blobs/{digest}"
    assert resp.headers.get("Docker-Content-Digest") == digest
    assert pull_blob(client, repo2, digest) == data
    assert pull_blob(client, repo, digest) == data


def test_mount_without_from(client, repo, repo2, blob):
    digest, data = blob
    resp = expect_status(_mount(client, repo2, digest), 201)
    assert location_path(resp) == f"/v2/{repo2}/blobs/{digest}"
    assert pull_blob(client, repo2, digest) == data


def test_mount_unknown_blob_opens_session(client, repo, repo2):
    data = random_bytes(500)
    digest = sha256_digest(data)
    resp = expect_status(_mount(client, repo2, digest, repo), 202)
    assert location_path(resp).startswith(f"/v2/{repo2}/blobs/uploads/"), describe(resp)
    assert_error(client.get(f"/v2/{repo2}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    loc = client.url(resp.headers["Location"])
    done = client.put(with_query(loc, {"digest": digest}), data=data,
                      headers={"Content-Type": "application/octet-stream"})
    expect_status(done, 201)
    assert pull_blob(client, repo2, digest) == data


def test_delete_blob(client, repo, blob):
    digest, _ = blob
    expect_status(client.delete(f"/v2/{repo}/blobs/{digest}"), 202)
    assert_error(client.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    expect_status(client.head(f"/v2/{repo}/blobs/{digest}"), 404)
    assert_error(client.delete(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_unknown_blob(client, repo, blob):
    missing = sha256_digest(random_bytes(16))
    assert_error(client.delete(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")


def test_delete_in_one_repo_keeps_mounted_copy(client, repo, repo2, blob):
    digest, data = blob
    expect_status(_mount(client, repo2, digest, repo), 201)
    expect_status(client.delete(f"/v2/{repo}/blobs/{digest}"), 202)
    assert_error(client.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert pull_blob(client, repo2, digest) == data


def test_repush_after_delete(client, repo, blob):
    digest, data = blob
    expect_status(client.delete(f"/v2/{repo}/blobs/{digest}"), 202)
    assert push_blob(client, repo, data, mode="post-put") == digest
    assert pull_blob(client, repo, digest) == data
