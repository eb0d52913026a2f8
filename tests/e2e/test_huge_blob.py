"""A blob larger than R2's 5 GiB single-put limit: pushed in 64 MiB chunks (under the
plan's request body limit), re-cut by the registry into multipart parts, completed without
a second copy, then pulled back whole and by a range across the 5 GiB mark.

E2E_HUGE_BLOB_MIB sets the size (default 5 GiB + 64 MiB + 17 bytes' worth, rounded to MiB
plus 17 bytes)."""

import hashlib
import os
import time

import pytest

from helpers import MiB, expect_status, patch_chunk, start_upload, with_query

GiB = 1024 * MiB
CHUNK = 64 * MiB
SIZE = int(os.environ.get("E2E_HUGE_BLOB_MIB", str(5 * 1024 + 64))) * MiB + 17


def _chunks():
    """SIZE bytes in CHUNK pieces; each piece differs (a counter in its first bytes)."""
    base = bytearray(os.urandom(CHUNK))
    sent, index = 0, 0
    while sent < SIZE:
        n = min(CHUNK, SIZE - sent)
        base[:8] = index.to_bytes(8, "big")
        yield bytes(base[:n])
        sent += n
        index += 1


@pytest.fixture
def registry(own_registry):
    """This module's own wrangler dev: GiBs through the local R2 simulator leave its workerd
    bloated, which must not unsettle the tests that share the session's instance."""
    return own_registry


def test_blob_over_five_gib_round_trips(client, repo):
    started = time.monotonic()
    _, location = start_upload(client, repo)
    digest = hashlib.sha256()
    offset = 0
    boundary = None
    previous_tail = b""
    for chunk in _chunks():
        digest.update(chunk)
        resp = expect_status(patch_chunk(client, location, chunk, offset), 202)
        offset += len(chunk)
        assert resp.headers["Range"] == f"0-{offset - 1}"
        location = client.url(resp.headers["Location"])
        if offset - len(chunk) == 5 * GiB:
            # 64 bytes straddling the 5 GiB mark: the end of one chunk, the start of this.
            boundary = (5 * GiB - 32, previous_tail + chunk[:32])
        previous_tail = chunk[-32:]
    expected = "sha256:" + digest.hexdigest()
    expect_status(client.put(with_query(location, {"digest": expected}), headers={"Content-Length": "0"}), 201)
    pushed = time.monotonic()

    url = f"/v2/{repo}/blobs/{expected}"
    head = expect_status(client.head(url), 200)
    assert int(head.headers["Content-Length"]) == SIZE

    assert boundary is not None, "blob does not cross 5 GiB"
    at, want = boundary
    part = expect_status(client.get(url, headers={"Range": f"bytes={at}-{at + 63}"}), 206)
    assert part.content == want
    assert part.headers["Content-Range"] == f"bytes {at}-{at + 63}/{SIZE}"

    pulled = hashlib.sha256()
    received = 0
    with client.get(url, stream=True) as resp:
        expect_status(resp, 200)
        for block in resp.iter_content(8 * MiB):
            pulled.update(block)
            received += len(block)
    assert received == SIZE
    assert "sha256:" + pulled.hexdigest() == expected
    print(f"\n{SIZE / GiB:.2f} GiB: push {pushed - started:.1f} s, pull {time.monotonic() - pushed:.1f} s")
