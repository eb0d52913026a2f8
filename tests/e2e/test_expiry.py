"""Abandoned uploads expire: the cron job (run on demand through wrangler's
/__scheduled) discards sessions idle longer than UPLOAD_EXPIRY_SECONDS (set low by the
fixture) and leaves active ones alone."""

import time

import pytest

from conftest import EXPIRY_SECONDS
from helpers import MiB, assert_error, expect_status, patch_chunk, random_bytes, start_upload


def test_idle_upload_sessions_are_expired_by_the_cron_job(registry, client, repo):
    if registry.external:
        pytest.skip("needs the fixture's wrangler with --test-scheduled")
    _, idle = start_upload(client, repo)
    expect_status(patch_chunk(client, idle, random_bytes(9 * MiB), 0), 202)
    time.sleep(EXPIRY_SECONDS + 1.5)
    _, fresh = start_upload(client, repo)
    expect_status(patch_chunk(client, fresh, b"recent", 0), 202)

    ran = client.get("/__scheduled?cron=17+*+*+*+*")  # wrangler's own endpoint
    assert ran.status_code == 200 and b"scheduled" in ran.content, ran.content

    assert_error(client.get(idle), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(idle, data=b"more"), 404, "BLOB_UPLOAD_UNKNOWN")
    status = expect_status(client.get(fresh), 204)
    assert status.headers["Range"] == "0-5"
