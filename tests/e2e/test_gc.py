"""Garbage collection end to end: an instance of its own with a 3 s grace period and a
small step budget (GC_CALLS_PER_STEP=40, so a run takes many cron invocations), driven
through wrangler's cron trigger (/__scheduled) and scripts/gc. docker pushes an image to
keep and one to delete, skopeo copies the kept one to a second repository; after the
delete, a first run condemns only the deleted image's content, a second run a grace
period later deletes it (the local R2 state shrinks by at least its layer) while a docker
push runs alongside; every remaining image still pulls with the same digests, and the
collected layer can be pushed again. Retention (RETENTION for `retained/*`, keep the newest
tag, RETENTION_MODE=apply) reports first in a dry run, then deletes in a real one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from clientrun import require
from conftest import REPO_ROOT, Registry, _serve
from helpers import Client
from test_docker import build, dockerd, front_for, push  # noqa: F401 (dockerd is a fixture)

GRACE_S = 3
CRON = "/__scheduled?cron=17+*+*+*+*"
RETENTION = '[{"repositories": "retained/*", "keep_last": 1, "untagged_older_than_days": 0}]'


@pytest.fixture(scope="module")
def gc_registry(pytestconfig, tmp_path_factory):
    env_file = tmp_path_factory.mktemp("gc") / "gc.dev.vars"
    env_file.write_text(f"GC_GRACE_SECONDS={GRACE_S}\nGC_INTERVAL_SECONDS=0\nGC_CALLS_PER_STEP=40\n"
                        f"RETENTION='{RETENTION}'\nRETENTION_MODE=apply\n")
    yield from _serve(pytestconfig, Registry(extra_args=["--env-file", str(env_file)]))


@pytest.fixture(scope="module")
def host(gc_registry):
    front = front_for(gc_registry)
    yield front.host
    front.close()


@pytest.fixture
def http(gc_registry):
    c = Client(gc_registry.url)
    yield c
    c.close()


def r2_bytes(registry) -> int:
    """Bytes of the objects the local R2 simulator stores (its blob files on disk; its
    SQLite metadata and write-ahead log are left out, they grow with any write)."""
    files = Path(registry.state_dir).glob("v3/r2/*/blobs/*")
    return sum(p.stat().st_size for p in files if p.is_file())


def job(http) -> dict:
    resp = http.get("/admin/gc")
    assert resp.status_code == 200, resp.text
    return resp.json()


def collect_by_cron(http, alongside=None) -> dict:
    """Ticks the cron trigger until a run that started after the call is done; its job."""
    before = job(http).get("run", 0)
    for _ in range(500):
        resp = http.get(CRON)
        assert resp.status_code == 200, resp.text
        if alongside is not None:
            alongside()
        current = job(http)
        if current.get("run", 0) > before and current["phase"]["phase"] == "done":
            return current
    raise AssertionError(f"no run finished: {job(http)}")


def blob_status(http, repo: str, digest: str) -> int:
    """A blob's status to a GET (a HEAD, as pushes send before skipping an upload, would
    rescue condemned content: see the README)."""
    with http.get(f"/v2/{repo}/blobs/{digest}", stream=True) as resp:
        return resp.status_code


def layer_digests(http, repo: str, reference: str) -> list[str]:
    resp = http.get(f"/v2/{repo}/manifests/{reference}",
                    headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert resp.status_code == 200, resp.text
    return [layer["digest"] for layer in resp.json()["layers"]]


def test_deleted_images_are_collected_a_grace_period_later_and_the_rest_still_pulls(
        dockerd, gc_registry, host, http, repo, tmp_path):
    skopeo = require("skopeo")["skopeo"]
    keep, drop, copy = f"{host}/{repo}/keep:1", f"{host}/{repo}/drop:1", f"{host}/{repo}/copy:1"
    for name in ("keep", "drop", "late"):
        (tmp_path / name).mkdir()
    keep_id = build(dockerd, tmp_path / "keep", keep, layer_bytes=256 * 1024)
    keep_digest, _ = push(dockerd, keep)
    build(dockerd, tmp_path / "drop", drop, layer_bytes=2 * 1024 * 1024)
    drop_digest, _ = push(dockerd, drop)
    subprocess.run([skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{keep}", f"docker://{copy}"], check=True, capture_output=True, timeout=120)
    drop_layers = layer_digests(http, f"{repo}/drop", "1")
    keep_layers = layer_digests(http, f"{repo}/keep", "1")
    assert http.delete(f"/v2/{repo}/drop/manifests/{drop_digest}").status_code == 202

    first = collect_by_cron(http)
    report = first["report"]
    assert report["steps"] > 3, report  # 40 calls a step: the cron trigger continued it
    assert report["condemned"]["items"] >= 3, report  # drop's two layers, config and manifest
    assert report["deleted"]["items"] == 0, report
    assert all(blob_status(http, f"{repo}/drop", d) == 200 for d in drop_layers), "kept for the grace period"
    before = r2_bytes(gc_registry)

    time.sleep(3 * GRACE_S + 1)  # condemned as of a step later (at most the grace), plus the grace, plus the skew margin (at most the grace)
    second = collect_by_cron(http)
    report = second["report"]
    drop_bytes = 2 * 1024 * 1024
    assert report["deleted"]["items"] >= 4 and report["deleted"]["bytes"] >= drop_bytes, report
    assert report["links_removed"] >= 3, report
    assert all(blob_status(http, f"{repo}/drop", d) == 404 for d in drop_layers)
    after = r2_bytes(gc_registry)
    print(f"\ngc e2e: run 1 {first['report']}\ngc e2e: run 2 {report}\ngc e2e: local R2 {before} -> {after} bytes")
    assert before - after >= drop_bytes, (before, after, report)

    # A docker push while a run is in progress (started by one tick, continued by more
    # while the push goes on): it completes and pulls.
    build(dockerd, tmp_path / "late", f"{host}/{repo}/late:1", layer_bytes=512 * 1024)
    started = job(http).get("run", 0)
    assert http.get(CRON).status_code == 200
    running = job(http)
    assert running["run"] > started and running["phase"]["phase"] != "done", running
    pushed = {}
    pusher = threading.Thread(target=lambda: pushed.update(digest=push(dockerd, f"{host}/{repo}/late:1")[0]))
    pusher.start()
    while pusher.is_alive() and job(http)["phase"]["phase"] != "done":
        assert http.get(CRON).status_code == 200
    pusher.join(timeout=300)
    collect_by_cron(http)

    # What remains pulls, with the same digests and image id; so does the late push.
    for ref in (keep, f"{host}/{repo}/late:1"):
        dockerd.docker("rmi", ref)
    dockerd.docker("pull", keep)
    assert dockerd.docker("image", "inspect", "--format", "{{.Id}}", keep).stdout.decode().strip() == keep_id
    assert http.head(f"/v2/{repo}/keep/manifests/1").headers["Docker-Content-Digest"] == keep_digest
    assert layer_digests(http, f"{repo}/copy", "1") == keep_layers
    assert all(blob_status(http, f"{repo}/copy", d) == 200 for d in keep_layers)
    assert "digest" in pushed, "the push that ran alongside the collector completed"
    dockerd.docker("pull", f"{host}/{repo}/late:1")

    # The collected image can be pushed again.
    again, _ = push(dockerd, drop)
    assert again == drop_digest
    assert all(blob_status(http, f"{repo}/drop", d) == 200 for d in drop_layers)


def test_scripts_gc_dry_run_reports_and_deletes_nothing(gc_registry, http, repo):
    data = os.urandom(300_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert http.post(f"/v2/{repo}/orphan/blobs/uploads/?digest={digest}", data=data).status_code == 201
    env = {**os.environ, "REGISTRY": gc_registry.url}
    gc = str(REPO_ROOT / "scripts" / "gc")
    out = subprocess.run([gc], env=env, check=True, capture_output=True, timeout=300).stdout.decode()
    assert "(real)" in out and "condemned" in out, out
    time.sleep(3 * GRACE_S + 1)
    out = subprocess.run([gc, "--dry-run"], env=env, check=True, capture_output=True, timeout=300).stdout.decode()
    assert "(dry)" in out, out
    would = [line for line in out.splitlines() if "would delete" in line]
    assert would and not would[0].split("would delete")[1].strip().startswith("0 "), out
    assert blob_status(http, f"{repo}/orphan", digest) == 200, "a dry run deletes nothing"
    status = subprocess.run([str(REPO_ROOT / "scripts" / "gc"), "--status"], env=env, check=True,
                            capture_output=True, timeout=60).stdout.decode()
    assert "(dry)" in status and "'phase': 'done'" in status, status


def test_retention_reports_in_a_dry_run_then_deletes_old_tags_and_their_manifests(
        dockerd, gc_registry, host, http, repo, tmp_path):
    name = f"retained/{repo}"
    images = {}
    for tag in ("a", "b", "c"):
        (tmp_path / tag).mkdir()
        image_id = build(dockerd, tmp_path / tag, f"{host}/{name}:{tag}", layer_bytes=64 * 1024)
        images[tag] = (image_id, push(dockerd, f"{host}/{name}:{tag}")[0])
    time.sleep(GRACE_S + 1)  # every tag and manifest past the grace period

    env = {**os.environ, "REGISTRY": gc_registry.url}
    gc = str(REPO_ROOT / "scripts" / "gc")
    out = subprocess.run([gc, "--dry-run"], env=env, check=True, capture_output=True, timeout=300).stdout.decode()
    assert "would delete (RETENTION_MODE dry-run, or a dry run): 2 tags, 2 manifests" in out, out
    assert f"- {name}:a" in out and f"- {name}:b" in out, out
    assert http.get(f"/v2/{name}/tags/list").json()["tags"] == ["a", "b", "c"], "a dry run deletes nothing"

    real = collect_by_cron(http)
    retention = real["report"]["retention"]
    print(f"\nretention e2e: {retention}")
    assert retention["applied"] and retention["changed"] == 0, retention
    assert (retention["tags_deleted"], retention["manifests_deleted"]) == (2, 2), retention
    assert http.get(f"/v2/{name}/tags/list").json()["tags"] == ["c"]
    for tag in ("a", "b"):
        assert http.get(f"/v2/{name}/manifests/{images[tag][1]}").status_code == 404
    assert real["report"]["condemned"]["items"] >= 6, real["report"]  # a's and b's manifests, configs, layers

    # The kept tag still pulls as pushed; a deleted tag can be pushed again.
    dockerd.docker("rmi", f"{host}/{name}:c")
    dockerd.docker("pull", f"{host}/{name}:c")
    assert dockerd.docker("image", "inspect", "--format", "{{.Id}}", f"{host}/{name}:c").stdout.decode().strip() \
        == images["c"][0]
    assert push(dockerd, f"{host}/{name}:a")[0] == images["a"][1]
    assert http.head(f"/v2/{name}/manifests/a").status_code == 200
