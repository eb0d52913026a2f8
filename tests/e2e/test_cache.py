"""Small blobs are kept in the Workers Cache API and served from it on the next pull,
but only after the access check: another repository, or the same one after a delete,
still gets 404. Big blobs are never teed into the cache (memory stays flat)."""

import time

from helpers import MiB, assert_error, expect_status, push_blob, random_bytes

CACHE_HEADER = "x-edge-registry-cache"


def _get_until_hit(client, url, attempts=20):
    """The cache is written after the response (ctx.waitUntil): allow it a moment."""
    seen = []
    for _ in range(attempts):
        resp = expect_status(client.get(url), 200)
        seen.append(resp.headers.get(CACHE_HEADER))
        if seen[-1] == "hit":
            return resp, seen
        time.sleep(0.25)
    return None, seen


def test_small_blob_is_served_from_cache_after_the_first_pull(client, repo):
    data = random_bytes(3 * MiB)
    digest = push_blob(client, repo, data)
    url = f"/v2/{repo}/blobs/{digest}"
    first = expect_status(client.get(url), 200)
    assert first.headers.get(CACHE_HEADER) == "miss"
    assert first.content == data
    hit, seen = _get_until_hit(client, url)
    assert hit is not None, f"never served from cache: {seen}"
    assert hit.content == data
    assert hit.headers["Docker-Content-Digest"] == digest
    assert hit.headers["Content-Length"] == str(len(data))
    # Ranges are always served from R2.
    part = expect_status(client.get(url, headers={"Range": "bytes=5-9"}), 206)
    assert part.content == data[5:10]


def test_cache_never_bypasses_the_access_check(client, repo, repo2):
    data = random_bytes(4096)
    digest = push_blob(client, repo, data)
    url = f"/v2/{repo}/blobs/{digest}"
    expect_status(client.get(url), 200)
    hit, seen = _get_until_hit(client, url)
    assert hit is not None, f"never served from cache: {seen}"
    # Cached, but not in repo2: still unknown there.
    assert_error(client.get(f"/v2/{repo2}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    # Deleted from repo: gone, cache or not.
    expect_status(client.delete(url), 202)
    assert_error(client.get(url), 404, "BLOB_UNKNOWN")
    assert client.head(url).status_code == 404


def test_big_blobs_are_not_cached(client, repo):
    data = random_bytes(33 * MiB)
    digest = push_blob(client, repo, data)
    url = f"/v2/{repo}/blobs/{digest}"
    for _ in range(3):
        resp = expect_status(client.get(url), 200)
        assert resp.headers.get(CACHE_HEADER) == "miss"
        assert len(resp.content) == len(data)
        time.sleep(0.3)
