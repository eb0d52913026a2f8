"""Blob upload sessions (end-4a/4b/4c, end-5, end-6, end-13, end-14).

POST to open a session, PATCH chunks with and without Content-Range, GET the
session status, close it with PUT ?digest= (with or without a final chunk),
cancel it with DELETE; single-POST monolithic pushes; sha512 sessions; chunk
order and Content-Range errors; digest mismatches leaving nothing behind.
"""

import re
import uuid

import pytest

from helpers import (
    MiB, assert_error, describe, expect_status, location_path, parse_range, patch_chunk,
    pull_blob, push_blob, random_bytes, sha256_digest, sha512_digest, start_upload,
    upload_chunked, with_query,
)

OCTET = {"Content-Type": "application/octet-stream"}


def test_post_opens_session(client, repo):
    resp, loc = start_upload(client, repo)
    raw = resp.headers["Location"]
    assert raw.startswith(f"/v2/{repo}/blobs/uploads/"), f"Location must be relative: {raw}"
    assert re.fullmatch(r"[^/?#]+", location_path(resp).rsplit("/", 1)[1]), raw
    assert re.fullmatch(r"\d+", resp.headers.get("OCI-Chunk-Min-Length", "")), describe(resp)
    uid = resp.headers.get("Docker-Upload-UUID")
    assert uid, describe(resp)
    resp2, loc2 = start_upload(client, repo)
    assert loc2 != loc and resp2.headers.get("Docker-Upload-UUID") != uid


@pytest.mark.parametrize("mode", ["post", "post-put"])
@pytest.mark.parametrize("size", [0, 1, 4096, 3 * MiB + 7])
def test_monolithic_push(client, repo, mode, size):
    data = random_bytes(size)
    digest = push_blob(client, repo, data, mode=mode)
    assert pull_blob(client, repo, digest) == data


def test_repush_same_blob_is_idempotent(client, repo):
    data = random_bytes(2048)
    d1 = push_blob(client, repo, data, mode="post")
    d2 = push_blob(client, repo, data, mode="post-put")
    assert d1 == d2
    assert pull_blob(client, repo, d1) == data


def test_chunked_mixed_sizes_up_to_30mib(client, repo):
    sizes = [1, MiB, 5 * MiB, 7 * MiB, 3 * MiB + 12345, 1, 5 * MiB - 1, 999, 6 * MiB]
    data = random_bytes(sum(sizes) + 777)  # ~27.5 MiB; the tail goes in a last PATCH
    digest = upload_chunked(client, repo, data, sizes)
    assert digest == sha256_digest(data)
    got = pull_blob(client, repo, digest)
    assert len(got) == len(data) and sha256_digest(got) == digest


@pytest.mark.parametrize("sizes", [
    pytest.param([5 * MiB] * 3, id="equal-5mib"),
    pytest.param([1] * 5 + [MiB], id="bytes-then-mib"),
    pytest.param([7 * MiB, 1, 5 * MiB + 3], id="uneven"),
    pytest.param([MiB - 1, MiB + 1, 2 * MiB], id="around-mib"),
])
def test_chunked_patterns(client, repo, sizes):
    data = random_bytes(sum(sizes) + 100)
    digest = upload_chunked(client, repo, data, sizes)
    assert sha256_digest(pull_blob(client, repo, digest)) == digest


def test_final_chunk_in_put(client, repo):
    data = random_bytes(6 * MiB + 5)
    digest = upload_chunked(client, repo, data, [5 * MiB], final_in_put=True)
    assert pull_blob(client, repo, digest) == data


def test_put_only_after_single_patch(client, repo):
    data = random_bytes(10_000)
    _, loc = start_upload(client, repo)
    resp = expect_status(patch_chunk(client, loc, data, 0), 202)
    loc = client.url(resp.headers["Location"])
    resp = expect_status(client.put(with_query(loc, {"digest": sha256_digest(data)})), 201)
    assert resp.headers["Docker-Content-Digest"] == sha256_digest(data)
    assert pull_blob(client, repo, sha256_digest(data)) == data


def test_streamed_patch_without_content_range(client, repo):
    data = random_bytes(3 * MiB + 11)
    digest = upload_chunked(client, repo, data, [MiB, 17, MiB], content_range=False)
    assert pull_blob(client, repo, digest) == data


def _session_with_one_chunk(client, repo, size):
    """A new upload session holding one chunk of `size` random bytes: (location, bytes)."""
    _, loc = start_upload(client, repo)
    data = random_bytes(size)
    resp = expect_status(patch_chunk(client, loc, data, 0), 202)
    return client.url(resp.headers["Location"]), data


def test_get_upload_status(client, repo):
    loc, _ = _session_with_one_chunk(client, repo, 1000)
    status = expect_status(client.get(loc), 204)
    assert parse_range(status.headers.get("Range")) == (0, 999), describe(status)
    assert status.headers.get("Docker-Upload-UUID"), describe(status)
    assert location_path(status).startswith(f"/v2/{repo}/blobs/uploads/"), describe(status)
    assert status.content == b""
    more = random_bytes(24)
    resp = expect_status(patch_chunk(client, client.url(status.headers["Location"]), more, 1000), 202)
    assert parse_range(resp.headers["Range"]) == (0, 1023)
    assert parse_range(expect_status(client.get(loc), 204).headers["Range"]) == (0, 1023)


@pytest.mark.parametrize("start", [0, 5, 9, 11, 100], ids=lambda s: f"start{s}")
def test_out_of_order_chunk_is_416(client, repo, start):
    first, second = random_bytes(10), random_bytes(10)
    _, loc = start_upload(client, repo)
    resp = expect_status(patch_chunk(client, loc, first, 0), 202)
    loc = client.url(resp.headers["Location"])
    assert_error(patch_chunk(client, loc, second, start), 416, "BLOB_UPLOAD_INVALID")
    # The session is intact: status unchanged, and the right chunk still completes it.
    assert parse_range(expect_status(client.get(loc), 204).headers["Range"]) == (0, 9)
    resp = expect_status(patch_chunk(client, loc, second, 10), 202)
    loc = client.url(resp.headers["Location"])
    data = first + second
    expect_status(client.put(with_query(loc, {"digest": sha256_digest(data)})), 201)
    assert pull_blob(client, repo, sha256_digest(data)) == data


def test_first_chunk_not_at_zero_is_416(client, repo):
    _, loc = start_upload(client, repo)
    assert_error(patch_chunk(client, loc, random_bytes(10), 3), 416, "BLOB_UPLOAD_INVALID")


def test_final_put_chunk_out_of_order_is_416(client, repo):
    _, loc = start_upload(client, repo)
    resp = expect_status(patch_chunk(client, loc, b"0123456789", 0), 202)
    loc = client.url(resp.headers["Location"])
    data = b"0123456789" + b"abc"
    resp = client.put(with_query(loc, {"digest": sha256_digest(data)}), data=b"abc",
                      headers={**OCTET, "Content-Range": "5-7"})
    assert_error(resp, 416, "BLOB_UPLOAD_INVALID")


@pytest.mark.parametrize("value", [
    "0-", "-9", "abc", "0-9-10", "9-0", "0x0-0x9", "+0-9", "0-9,10-19",
    "18446744073709551615-18446744073709551624",
])
def test_malformed_content_range(client, repo, value):
    _, loc = start_upload(client, repo)
    resp = client.patch(loc, data=random_bytes(10), headers={**OCTET, "Content-Range": value})
    assert_error(resp, (400, 416), "BLOB_UPLOAD_INVALID")


def test_content_range_length_mismatch(client, repo):
    _, loc = start_upload(client, repo)
    resp = client.patch(loc, data=random_bytes(10), headers={**OCTET, "Content-Range": "0-99"})
    assert_error(resp, (400, 416), ("BLOB_UPLOAD_INVALID", "SIZE_INVALID"))


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_unknown_upload_id(client, repo, method):
    url = f"/v2/{repo}/blobs/uploads/{uuid.uuid4()}"
    data = b"x" if method in ("PATCH", "PUT") else None
    if method == "PUT":
        url = with_query(url, {"digest": sha256_digest(b"x")})
    resp = client.request(method, url, data=data, headers=OCTET if data else {})
    assert_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")


def test_put_digest_mismatch(client, repo):
    data, other = random_bytes(5000), random_bytes(5000)
    wrong = sha256_digest(other)
    _, loc = start_upload(client, repo)
    resp = client.put(with_query(loc, {"digest": wrong}), data=data, headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")
    for d in (wrong, sha256_digest(data)):
        assert_error(client.get(f"/v2/{repo}/blobs/{d}"), 404, "BLOB_UNKNOWN")
        assert expect_status(client.head(f"/v2/{repo}/blobs/{d}"), 404).content == b""


def test_single_post_digest_mismatch(client, repo):
    data = random_bytes(300)
    wrong = sha256_digest(data + b"!")
    resp = client.post(with_query(f"/v2/{repo}/blobs/uploads/", {"digest": wrong}),
                       data=data, headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")
    for d in (wrong, sha256_digest(data)):
        assert_error(client.get(f"/v2/{repo}/blobs/{d}"), 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize("digest", ["sha256:xyz", "sha256:" + "A" * 64, "nodigest", ""])
def test_put_bad_digest_syntax(client, repo, digest):
    _, loc = start_upload(client, repo)
    resp = client.put(with_query(loc, {"digest": digest}), data=b"abc", headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")


def test_put_without_digest_is_400(client, repo):
    _, loc = start_upload(client, repo)
    resp = client.put(loc, data=b"abc", headers=OCTET)
    assert_error(resp, 400, ("DIGEST_INVALID", "BLOB_UPLOAD_INVALID"))


def test_session_gone_after_put(client, repo):
    data = random_bytes(64)
    _, loc = start_upload(client, repo)
    expect_status(client.put(with_query(loc, {"digest": sha256_digest(data)}), data=data,
                             headers=OCTET), 201)
    assert_error(client.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch_chunk(client, loc, b"more", 64), 404, "BLOB_UPLOAD_UNKNOWN")


def test_cancel_upload(client, repo):
    loc, data = _session_with_one_chunk(client, repo, 100)
    resp = expect_status(client.delete(loc), 204)
    assert_error(client.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.delete(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/blobs/{sha256_digest(data)}"), 404, "BLOB_UNKNOWN")


def test_sha512_session(client, repo):
    data = random_bytes(2 * MiB + 3)
    digest = upload_chunked(client, repo, data, [MiB, 5], algorithm="sha512")
    assert digest == sha512_digest(data)
    resp = expect_status(client.get(f"/v2/{repo}/blobs/{digest}"), 200)
    assert resp.content == data and resp.headers["Docker-Content-Digest"] == digest
    head = expect_status(client.head(f"/v2/{repo}/blobs/{digest}"), 200)
    assert int(head.headers["Content-Length"]) == len(data)


def test_sha512_session_monolithic_put(client, repo):
    data = random_bytes(777)
    _, loc = start_upload(client, repo, {"digest-algorithm": "sha512"})
    resp = client.put(with_query(loc, {"digest": sha512_digest(data)}), data=data, headers=OCTET)
    expect_status(resp, 201)
    assert location_path(resp) == f"/v2/{repo}/blobs/{sha512_digest(data)}"
    assert pull_blob(client, repo, sha512_digest(data)) == data


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "SHA256!", "blake3x"])
def test_unsupported_digest_algorithm(client, repo, algorithm):
    resp = client.post(with_query(f"/v2/{repo}/blobs/uploads/", {"digest-algorithm": algorithm}))
    assert_error(resp, 400, ("DIGEST_INVALID", "UNSUPPORTED"))
