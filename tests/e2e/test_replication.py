"""Geo-replication end to end: `wrangler dev --env replicated` with three local buckets
(eu, us, ap; home us), the local replication queue and the fault-injection hooks
(REPLICATION_TEST_HOOKS=on). Requests are placed with miniflare's `MF-CF-Blob` header
(the request's `cf` object); without it wrangler dev says NA/US/DFW, so skopeo's requests
go to `us`. The `x-edge-registry-replica` hook header reads one replica alone, which is
how these tests see what each bucket holds.

Measured numbers (replication lag, failover cost, repair) are printed in the summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from clientrun import isolated_env, require, runner
from conftest import REPO_ROOT, Registry, _serve
from helpers import (
    Client, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, config_bytes, descriptor, expect_status, image_manifest,
    layout_manifest_digest, patch_chunk, push_blob, push_manifest, random_bytes, random_repo,
    read_layout_blobs, sha256_digest, start_upload, upload_chunked, write_oci_layout_image,
)
from plainfront import PlainHttpFront

REPLICAS = ("eu", "us", "ap")
WHERE = {"eu": {"continent": "EU", "country": "DE", "colo": "FRA"},
         "us": {"continent": "NA", "country": "US", "colo": "DFW"},
         "ap": {"continent": "AS", "country": "SG", "colo": "SIN"}}
CONVERGE_TIMEOUT = 60.0
BACKOFF_SECONDS = 2
READ_TIMEOUT_MS = 500


@pytest.fixture(scope="module")
def replicated(pytestconfig):
    reg = Registry(extra_args=[
        "--env", "replicated",
        "--var", "REPLICATION_TEST_HOOKS:on",
        "--var", "REPLICATION_RETRY_SECONDS:1",
        "--var", f"REPLICA_BACKOFF_SECONDS:{BACKOFF_SECONDS}",
        "--var", "REPLICATION_RESEND_AFTER_SECONDS:0",
        "--var", f"REPLICA_READ_TIMEOUT_MS:{READ_TIMEOUT_MS}",
    ])
    yield from _serve(pytestconfig, reg)


@pytest.fixture
def at(replicated):
    """at("eu") is a client whose requests come from that replica's region."""
    made = []

    def make(region: str | None = None, pin: str | None = None) -> Client:
        c = Client(replicated.url)
        if region:
            c.session.headers["MF-CF-Blob"] = json.dumps(WHERE[region])
        if pin:
            c.session.headers["x-edge-registry-replica"] = pin
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
    admin = Client(replicated.url)
    expect_status(admin.put("/admin/faults", json={"fail": [], "drop": []}), 200)
    for name in REPLICAS:
        expect_status(admin.put(f"/admin/replicas/{name}/routing", json={"enabled": True}), 200)
    admin.close()


def status(replicated) -> dict:
    c = Client(replicated.url)
    try:
        resp = expect_status(c.get("/admin/replicas"), 200)
        return {r["name"]: r for r in resp.json()["replicas"]}
    finally:
        c.close()


def set_faults(replicated, fail=(), drop=(), stall=()):
    c = Client(replicated.url)
    try:
        plan = {"fail": list(fail), "drop": list(drop), "stall": list(stall)}
        expect_status(c.put("/admin/faults", json=plan), 200)
    finally:
        c.close()


def holds(at, replica: str, repo: str, image: dict) -> bool:
    """Whether `replica` alone serves the image's manifest and every blob (HEAD)."""
    c = at(pin=replica)
    if c.head(f"/v2/{repo}/manifests/{image['digest']}").status_code != 200:
        return False
    blobs = [d for d in image["blobs"] if d != image["digest"]]  # a layout lists its manifest too
    return all(c.head(f"/v2/{repo}/blobs/{d}").status_code == 200 for d in blobs)


def run_cron(replicated) -> None:
    """Runs the scheduled handler (upload expiry, then the replication repair) now."""
    c = Client(replicated.url)
    try:
        resp = c.get("/cdn-cgi/handler/scheduled")
        assert resp.status_code == 200 and resp.text == "ok", resp.text
    finally:
        c.close()


def wait_until(check, timeout=CONVERGE_TIMEOUT, every=0.1) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(every)
    pytest.fail(f"not converged within {timeout} s")


def push_image(client: Client, repo: str, tag: str, layer_sizes) -> dict:
    layers = [b"replicated\0" + random_bytes(n) for n in layer_sizes]
    cfg = config_bytes("amd64", layers)
    for blob in [cfg, *layers]:
        if len(blob) > 16 * 1024 * 1024:
            upload_chunked(client, repo, blob, [8 * 1024 * 1024] * 64)  # multipart-assembled
        else:
            push_blob(client, repo, blob)
    body = image_manifest(descriptor(OCI_CONFIG, cfg), [descriptor(OCI_LAYER, x) for x in layers])
    push_manifest(client, repo, tag, body, OCI_MANIFEST)
    return {"digest": sha256_digest(body), "blobs": {sha256_digest(b): b for b in [cfg, *layers]}}


def test_a_push_lands_in_the_nearest_replica_and_reaches_the_others(replicated, at, measure):
    repo = random_repo("lag")
    image = push_image(at("eu"), repo, "v1", [1024, 3 * 1024 * 1024, 20 * 1024 * 1024])
    pushed = time.monotonic()
    assert holds(at, "eu", repo, image), "the push landed in eu, nearest to the client"
    lags = {}
    for replica in ("us", "ap"):
        wait_until(lambda: holds(at, replica, repo, image))
        lags[replica] = time.monotonic() - pushed
    measure("replication lag after a push from eu (3 blobs: 1 KiB, 3 MiB, 20 MiB chunked + manifest)",
            ", ".join(f"{r} {lag:.2f} s" for r, lag in lags.items()))
    # Each replica serves the tag alone, with the same bytes.
    for replica in REPLICAS:
        c = at(pin=replica)
        resp = expect_status(c.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}), 200)
        assert sha256_digest(resp.content) == image["digest"]
        for digest in image["blobs"]:
            assert sha256_digest(expect_status(c.get(f"/v2/{repo}/blobs/{digest}"), 200).content) == digest
    wait_until(lambda: all(s["backlog"] == 0 for s in status(replicated).values()))
    report = status(replicated)
    assert set(report) == set(REPLICAS) and report["us"]["home"] and report["eu"]["region"] == "weur"


def test_a_pull_that_outruns_replication_is_served_by_the_replica_that_has_it(replicated, at):
    set_faults(replicated, drop=["ap"])  # ap will not receive it
    repo = random_repo("fallback")
    image = push_image(at("eu"), repo, "v1", [4096])
    c = at("ap")
    resp = expect_status(c.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}), 200)
    assert sha256_digest(resp.content) == image["digest"]
    for digest in image["blobs"]:
        assert sha256_digest(expect_status(c.get(f"/v2/{repo}/blobs/{digest}"), 200).content) == digest
    assert not holds(at, "ap", repo, image), "ap itself does not hold it: the read fell back"
    set_faults(replicated)
    expect_status(at().post("/admin/repair"), 200)
    wait_until(lambda: holds(at, "ap", repo, image))


def test_pull_completes_while_a_replica_fails_mid_pull(replicated, at, measure, tmp_path):
    repo = random_repo("failpull")
    # Layers above the 32 MiB cache limit, so every read goes to a bucket.
    image = push_image(at("eu"), repo, "v1", [40 * 1024 * 1024, 36 * 1024 * 1024, 1024])
    wait_until(lambda: holds(at, "us", repo, image))
    c = at("us")
    digests = list(image["blobs"])
    first = expect_status(c.get(f"/v2/{repo}/blobs/{digests[0]}"), 200)
    assert sha256_digest(first.content) == digests[0]
    set_faults(replicated, fail=["us"])  # us fails from here on, mid-pull
    started = time.monotonic()
    resp = expect_status(c.get(f"/v2/{repo}/blobs/{digests[1]}", stream=True), 200)
    first_byte = time.monotonic() - started
    assert sha256_digest(resp.content) == digests[1]
    for digest in digests[2:]:
        assert sha256_digest(expect_status(c.get(f"/v2/{repo}/blobs/{digest}"), 200).content) == digest
    manifest = expect_status(c.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}), 200)
    assert sha256_digest(manifest.content) == image["digest"]
    health = status(replicated)["us"]["health"]
    assert not health["healthy"] and "injected fault" in (health["last_error"] or "")
    measure("first request after its replica failed (fell back within the request)",
            f"{first_byte:.3f} s to first byte")


def test_a_replica_that_stops_answering_is_timed_out_then_skipped(replicated, at, measure):
    repo = random_repo("stall")
    image = push_image(at("us"), repo, "v1", [1024])
    wait_until(lambda: all(s["backlog"] == 0 for s in status(replicated).values()))
    set_faults(replicated, stall=["us"])
    c = at("us")
    timings = []
    for _ in range(3):
        started = time.monotonic()
        resp = expect_status(c.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}), 200)
        timings.append(time.monotonic() - started)
        assert sha256_digest(resp.content) == image["digest"]
    health = status(replicated)["us"]["health"]
    assert not health["healthy"] and "no answer" in health["last_error"]
    measure(f"failover when the nearest replica stops answering (read timeout {READ_TIMEOUT_MS} ms)",
            "first request {:.3f} s, then {} (replica skipped during its back-off)".format(
                timings[0], ", ".join(f"{t:.3f} s" for t in timings[1:])))


def test_a_push_whose_replica_fails_mid_upload_completes_after_restarting_the_blob(replicated, at):
    """The writer fails between two chunks: the session's bytes are in the failed replica,
    so the client restarts that blob (as containers/image's retries do) and the push
    completes in another replica."""
    repo = random_repo("midpush")
    c = at("ap")
    layer = b"mid-push\0" + random_bytes(12 * 1024 * 1024)
    digest = sha256_digest(layer)
    _, loc = start_upload(c, repo)
    first = patch_chunk(c, loc, layer[:6 * 1024 * 1024], 0)
    expect_status(first, 202)
    set_faults(replicated, fail=["ap"])
    broken = patch_chunk(c, c.url(first.headers["Location"]), layer[6 * 1024 * 1024:], 6 * 1024 * 1024)
    assert broken.status_code in (404, 503), broken.status_code
    again = c.head(f"/v2/{repo}/blobs/{digest}")
    assert again.status_code == 404, "not stored anywhere: the client must upload it again"
    assert upload_chunked(c, repo, layer, [6 * 1024 * 1024]) == digest
    cfg = config_bytes("amd64", [layer])
    push_blob(c, repo, cfg)
    body = image_manifest(descriptor(OCI_CONFIG, cfg), [descriptor(OCI_LAYER, layer)])
    push_manifest(c, repo, "v1", body, OCI_MANIFEST)
    pulled = expect_status(c.get(f"/v2/{repo}/blobs/{digest}"), 200).content
    assert sha256_digest(pulled) == digest
    image = {"digest": sha256_digest(body), "blobs": {digest: layer, sha256_digest(cfg): cfg}}
    assert holds(at, "us", repo, image), "the restarted push landed in us, next after ap (home)"


def test_skopeo_pull_and_push_complete_while_the_nearest_replica_is_down(replicated, at, measure, tmp_path):
    skopeo = runner(isolated_env(tmp_path), [require("skopeo")["skopeo"], "--insecure-policy"])
    front = PlainHttpFront(urlsplit(replicated.url).port, "127.0.0.1")
    try:
        repo = random_repo("failskopeo")
        src = write_oci_layout_image(tmp_path / "src", tag="v1", n_layers=3, layer_size=2 * 1024 * 1024)
        skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:v1", f"docker://{front.host}/{repo}:v1")
        wait_until(lambda: all(s["backlog"] == 0 for s in status(replicated).values()))
        set_faults(replicated, fail=["us"])  # skopeo's requests come from NA: us is nearest
        skopeo("copy", "--preserve-digests", "--src-tls-verify=false", f"docker://{front.host}/{repo}:v1", f"oci:{tmp_path / 'pulled'}:v1")
        assert layout_manifest_digest(tmp_path / "pulled", "v1") == src.digest
        pulled = read_layout_blobs(tmp_path / "pulled")
        assert all(pulled.get(d) == data for d, data in src.blobs.items())
        # A push while us is down lands in another replica and completes.
        src2 = write_oci_layout_image(tmp_path / "src2", tag="v2", n_layers=2, layer_size=1024 * 1024)
        started = time.monotonic()
        skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{tmp_path / 'src2'}:v2", f"docker://{front.host}/{repo}:v2")
        measure("skopeo push of 2 x 1 MiB while the nearest replica is down", f"{time.monotonic() - started:.2f} s")
        image2 = {"digest": src2.digest, "blobs": src2.blobs}
        assert holds(at, "eu", repo, image2) or holds(at, "ap", repo, image2)
        # Failback: once us works again it is probed after its back-off and catches up.
        set_faults(replicated)
        recovered = wait_until(lambda: holds(at, "us", repo, image2))
        measure("us caught up after its outage ended (queue retries)", f"{recovered:.2f} s")
        wait_until(lambda: status(replicated)["us"]["health"]["healthy"])
    finally:
        front.close()


def replicas_script(replicated, *args) -> str:
    """Runs scripts/replicas (the operator's command) against the instance."""
    proc = subprocess.run([str(REPO_ROOT / "scripts" / "replicas"), *args], capture_output=True, text=True,
                          env=dict(os.environ, REGISTRY_URL=replicated.url), timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_oci_client_crate_round_trips_while_the_nearest_replica_is_down(replicated, measure):
    """A second real client (tests/e2e-client: chunked uploads of 4 MiB, uneven and 16
    concurrent chunks, then pulls and tag lists) while `us`, nearest to it, fails."""
    from test_oci_client import _client_bin
    exe = _client_bin()
    set_faults(replicated, fail=["us"])
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    started = time.monotonic()
    proc = subprocess.run([str(exe), "--registry", replicated.host], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}"
    measure("oci-client driver (chunked pushes, pulls, tag lists) with the nearest replica down",
            f"{time.monotonic() - started:.1f} s, exit 0")
    health = status(replicated)["us"]["health"]
    assert not health["healthy"] and "injected fault" in (health["last_error"] or "")
    # us is back: its retries wait for their back-off, the repair re-sends them at once.
    set_faults(replicated)
    c = Client(replicated.url)
    expect_status(c.post("/admin/repair"), 200)
    c.close()
    caught_up = wait_until(lambda: all(s["backlog"] == 0 for s in status(replicated).values()), timeout=180)
    measure("after the oci-client run, every replica caught up once the repair ran", f"{caught_up:.1f} s")


def test_a_replica_out_of_routing_gets_no_client_traffic_and_catches_up(replicated, at):
    admin = at()
    printed = replicas_script(replicated, "disable", "eu")
    eu_line = next(line for line in printed.splitlines() if line.startswith("eu "))
    assert "disabled" in eu_line and "weur" in eu_line, printed
    assert status(replicated)["eu"]["routing"] == "disabled"
    before = status(replicated)["eu"]["health"]
    repo = random_repo("switch")
    image = push_image(at("eu"), repo, "v1", [2048, 6 * 1024 * 1024])
    c = at("eu")
    for digest in image["blobs"]:
        assert sha256_digest(expect_status(c.get(f"/v2/{repo}/blobs/{digest}"), 200).content) == digest
    expect_status(c.get(f"/v2/{repo}/tags/list"), 200)
    # Pinning to a replica out of routing serves nothing: the switch holds even for hooks.
    expect_status(at(pin="eu").get(f"/v2/{repo}/manifests/v1"), 404)
    wait_until(lambda: all(status(replicated)[r]["backlog"] == 0 for r in REPLICAS))
    after = status(replicated)["eu"]["health"]
    assert after["client_ops"] == before["client_ops"], "no client request touched eu"
    assert after["replication_ops"] > before["replication_ops"], "replication into eu continued"
    replicas_script(replicated, "enable", "eu")
    assert holds(at, "eu", repo, image), "re-enabled, eu is up to date"
    bad = admin.put("/admin/replicas/nowhere/routing", json={"enabled": False})
    assert bad.status_code == 404 and bad.json()["errors"][0]["code"] == "UNSUPPORTED"
    bad = admin.put("/admin/replicas/eu/routing", data=b"{\"enabled\": \"no\"}")
    assert bad.status_code == 400 and bad.json()["errors"][0]["message"]


def test_a_lost_message_is_restored_by_the_scheduled_repair(replicated, at, measure):
    set_faults(replicated, drop=["ap"])
    repo = random_repo("lost")
    image = push_image(at("us"), repo, "v1", [1024, 5000])
    wait_until(lambda: holds(at, "eu", repo, image))
    time.sleep(2)
    assert not holds(at, "ap", repo, image), "the messages to ap were dropped"
    pending = status(replicated)["ap"]
    assert pending["backlog"] > 0 and pending["oldest_pending_seconds"] is not None
    set_faults(replicated)
    run_cron(replicated)
    repaired = wait_until(lambda: holds(at, "ap", repo, image))
    measure("lost messages restored after the cron repair ran", f"{repaired:.2f} s")
    wait_until(lambda: status(replicated)["ap"]["backlog"] == 0)


def test_fault_hooks_and_admin_endpoints_refuse_bad_input(replicated):
    c = Client(replicated.url)
    try:
        resp = c.put("/admin/faults", json={"fail": ["mars"]})
        assert resp.status_code == 400 and "mars" in resp.json()["errors"][0]["message"]
        assert c.put("/admin/faults", data=b"not json").status_code == 400
        assert c.delete("/admin/replicas").status_code == 405
        report = expect_status(c.post("/admin/repair"), 200).json()
        assert set(report) >= {"resent", "missing", "unreachable"}
    finally:
        c.close()


def test_restart_mid_replication_loses_nothing_and_replication_resumes(replicated, at, measure):
    """Last in the module: restarts the instance. Local queues live in memory, so the
    restart loses the messages in flight; the markers in R2 survive, and the repair job
    re-sends them."""
    repo = random_repo("restart")
    image = push_image(at("eu"), repo, "v1", [30 * 1024 * 1024, 25 * 1024 * 1024, 1024])
    replicated.restart()
    assert holds(at, "eu", repo, image), "everything pushed is still in eu after the restart"
    pending = sum(s["backlog"] for s in status(replicated).values())
    started = time.monotonic()
    run_cron(replicated)
    for replica in ("us", "ap"):
        wait_until(lambda: holds(at, replica, repo, image))
    measure("after a restart mid-replication", f"{pending} changes were pending; converged "
            f"{time.monotonic() - started:.2f} s after the repair ran")
