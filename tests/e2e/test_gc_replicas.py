"""The garbage collector with replicas end to end: `wrangler dev --env replicated` (three
local buckets, home us, the local queue) with GC=on and a grace period of seconds. One run
goes through `POST /admin/gc` (the replication admin port's collector view), the next
through the cron trigger (the scheduled handler's): a blob no manifest uses is condemned,
then deleted from every replica, while an image pushed in another region pulls whole from
each replica alone. The races are driven natively in tests/gc_replicas.rs.
"""

from __future__ import annotations

import time

import pytest

from conftest import Registry, _serve
from helpers import Client, expect_status, push_blob, random_bytes, random_repo
from test_replication import REPLICAS, at, holds, push_image, wait_until  # noqa: F401 (at is a fixture)

GRACE_S = 2
# A condemnation counts from the end of the longest step (the grace period, when it is
# shorter) and a minute of clock skew (the grace period, when it is shorter).
PAST_GRACE_S = 3 * GRACE_S + 0.5


@pytest.fixture(scope="module")
def replicated(pytestconfig):
    """The replicated registry `at` (from test_replication) serves, here with GC on."""
    gc = ["GC:on", f"GC_GRACE_SECONDS:{GRACE_S}", "GC_INTERVAL_SECONDS:0", "GC_CALLS_PER_STEP:900"]
    hooks = ["REPLICATION_TEST_HOOKS:on", "REPLICATION_RETRY_SECONDS:1"]  # the pin header; quick retries
    reg = Registry(extra_args=["--env", "replicated", *(arg for var in gc + hooks for arg in ("--var", var))])
    yield from _serve(pytestconfig, reg)


def job(http: Client) -> dict:
    return expect_status(http.get("/admin/gc"), 200).json()


def collect_by_admin(http: Client) -> dict:
    for _ in range(200):
        stepped = expect_status(http.post("/admin/gc"), 200).json()
        if stepped["phase"]["phase"] == "done":
            return stepped
    raise AssertionError(f"no run finished: {job(http)}")


def collect_by_cron(http: Client) -> dict:
    before = job(http).get("run", 0)
    for _ in range(200):
        resp = http.get("/cdn-cgi/handler/scheduled")
        assert resp.status_code == 200, resp.text
        current = job(http)
        if current.get("run", 0) > before and current["phase"]["phase"] == "done":
            return current
    raise AssertionError(f"no run finished: {job(http)}")


def test_unused_content_goes_from_every_replica_and_images_stay_whole(replicated, at, request):
    repo = random_repo(request.node.name)
    image = push_image(at("eu"), repo, "v1", [3000])
    junk = random_bytes(5000)
    junk_digest = push_blob(at("ap"), repo, junk)
    everywhere = lambda: all(  # noqa: E731
        holds(at, r, repo, image) and at(pin=r).head(f"/v2/{repo}/blobs/{junk_digest}").status_code == 200
        for r in REPLICAS
    )
    wait_until(everywhere)

    http = at()
    first = collect_by_admin(http)
    report = first["report"]
    assert report.get("unreached", []) == [] and report["incomplete"] is None, report
    assert report["condemned"] == {"items": 1, "bytes": 5000}, report

    time.sleep(PAST_GRACE_S)
    second = collect_by_cron(http)["report"]
    assert second["deleted"] == {"items": 1, "bytes": 5000}, second
    assert second["links_removed"] == 1, second
    for replica in REPLICAS:
        pinned = at(pin=replica)
        assert pinned.head(f"/v2/{repo}/blobs/{junk_digest}").status_code == 404, replica
        assert holds(at, replica, repo, image), replica
    # The collector's keys never left the home replica: nothing queued copies them.
    status = expect_status(http.get("/admin/replicas"), 200).json()
    assert all(r.get("pending", 0) == 0 for r in status["replicas"]), status
