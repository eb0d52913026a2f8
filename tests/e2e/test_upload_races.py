"""Two requests for one upload session at once, against the real worker and local R2.

Two PATCHes at the same offset, sent at once from two connections, as a hostile or
retrying client would: exactly one is accepted, the other gets 416 with the winner's
Range, and the blob is exactly the winner's bytes. A PUT or a second PATCH that arrives
while a chunked PATCH is still streaming gets 416; a DELETE wins over it, and the
streaming PATCH then answers 404 BLOB_UPLOAD_UNKNOWN.
"""

import threading

import pytest

from helpers import (
    Client, MiB, assert_error, describe, expect_status, parse_range, pull_blob, random_bytes,
    sha256_digest, start_upload, with_query,
)


def _patch(client, loc, data, start=0):
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
               "Content-Range": f"{start}-{start + len(data) - 1}"}
    return client.patch(loc, data=data, headers=headers)


@pytest.mark.parametrize("sizes", [(MiB, 9 * MiB), (9 * MiB, MiB)], ids=["1+9MiB", "9+1MiB"])
def test_concurrent_patches_at_one_offset_exactly_one_wins(registry, repo, sizes):
    for trial in range(3):
        opener = Client(registry.url)
        _, loc = start_upload(opener, repo)
        bodies = [random_bytes(n) for n in sizes]
        answers = [None, None]
        barrier = threading.Barrier(2)

        def send(i):
            client = Client(registry.url)
            barrier.wait()
            answers[i] = _patch(client, loc, bodies[i])
            client.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [202, 416], f"trial {trial}: {[describe(a) for a in answers]}"
        winner = next(i for i, a in enumerate(answers) if a.status_code == 202)
        loser = answers[1 - winner]
        assert_error(loser, 416, "BLOB_UPLOAD_INVALID")
        # The loser sees the session as it stood (nothing yet) or as the winner left it.
        assert parse_range(loser.headers.get("Range"))[1] in (0, len(bodies[winner]) - 1), describe(loser)
        status = expect_status(opener.get(loc), 204)
        assert parse_range(status.headers["Range"]) == (0, len(bodies[winner]) - 1), describe(status)
        digest = sha256_digest(bodies[winner])
        expect_status(opener.put(with_query(loc, {"digest": digest})), 201)
        assert pull_blob(opener, repo, digest) == bodies[winner]
        opener.close()


def test_requests_meeting_a_streaming_patch_get_416_and_a_delete_wins(registry, repo):
    client = Client(registry.url)
    _, loc = start_upload(client, repo)
    first = random_bytes(9 * MiB)  # over one 8 MiB part: uploaded and checkpointed
    go_on = threading.Event()
    sent_first = threading.Event()

    def body():
        yield first
        sent_first.set()
        go_on.wait(60)
        yield random_bytes(MiB)

    result = {}

    def stream():
        streaming = Client(registry.url)
        result["patch"] = streaming.patch(loc, data=body(), headers={"Content-Type": "application/octet-stream"})
        streaming.close()

    thread = threading.Thread(target=stream)
    thread.start()
    try:
        assert sent_first.wait(60)
        # Wait until the worker has taken the session (its first part is checkpointed).
        for _ in range(200):
            status = expect_status(client.get(loc), 204)
            if parse_range(status.headers["Range"])[1] > 0:
                break
            threading.Event().wait(0.05)
        other = Client(registry.url)
        assert_error(_patch(other, loc, b"x" * 10, start=parse_range(status.headers["Range"])[1] + 1), 416,
                     "BLOB_UPLOAD_INVALID")
        put = other.put(with_query(loc, {"digest": sha256_digest(first)}))
        assert_error(put, 416, "BLOB_UPLOAD_INVALID")
        expect_status(other.delete(loc), 204)
        other.close()
    finally:
        go_on.set()
        thread.join(120)
    assert_error(result["patch"], 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    client.close()
