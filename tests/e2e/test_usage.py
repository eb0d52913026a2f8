"""Storage usage end to end: an instance of its own (the collector off, so the cron
trigger steps the usage count on every tick; USAGE_INTERVAL_SECONDS=0), two repositories
pushed over HTTP with images that share a layer, the count run through wrangler's cron
trigger (/__scheduled), and `scripts/usage --json` reporting exactly the bytes pushed:
the shared layer once in each repository and once in the total; an image pushed after
that report shows after `scripts/usage --refresh`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from conftest import REPO_ROOT, Registry, _serve
from helpers import (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Client, config_bytes, descriptor, image_manifest,
                     push_blob, push_manifest, random_bytes, random_repo)

CRON = "/__scheduled?cron=*/5+*+*+*+*"


@pytest.fixture(scope="module")
def usage_registry(pytestconfig, tmp_path_factory):
    env_file = tmp_path_factory.mktemp("usage") / "usage.dev.vars"
    env_file.write_text("GC=off\nUSAGE_INTERVAL_SECONDS=0\nUSAGE_CALLS_PER_STEP=40\n")
    yield from _serve(pytestconfig, Registry(extra_args=["--env-file", str(env_file)]))


@pytest.fixture
def http(usage_registry):
    c = Client(usage_registry.url)
    yield c
    c.close()


def push(http, repo: str, layers: list[bytes], tag: str) -> dict:
    cfg = config_bytes("amd64", layers)
    for blob in [cfg, *layers]:
        push_blob(http, repo, blob)
    body = image_manifest(descriptor(OCI_CONFIG, cfg), [descriptor(OCI_LAYER, x) for x in layers])
    push_manifest(http, repo, tag, body, OCI_MANIFEST)
    return {"config": cfg, "layers": layers, "manifest": body}


def scripts_usage(registry, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, REGISTRY=registry.url)
    env.pop("ADMIN", None)
    return subprocess.run([str(REPO_ROOT / "scripts" / "usage"), *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_usage_counts_a_shared_layer_once_per_repository_and_once_in_all(usage_registry, http, request):
    shared = b"shared-layer\0" + random_bytes(40_000)
    a, b = random_repo(request.node.name, "usage-a"), random_repo(request.node.name, "usage-b")
    a1 = push(http, a, [shared, b"a1\0" + random_bytes(3000)], "v1")
    a2 = push(http, a, [shared], "v2")
    b1 = push(http, b, [shared, b"b1\0" + random_bytes(5000)], "v1")
    pushed_at = int(time.time() * 1000)

    for _ in range(200):
        assert http.get(CRON).status_code == 200
        report = http.get("/admin/usage").json()
        if report.get("computed_at") is not None and report["run"] >= pushed_at - 1000:
            break
    else:
        raise AssertionError(f"no usage run finished: {http.get('/admin/usage').text}")

    done = scripts_usage(usage_registry, "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    repos = {r["repository"]: r for r in got["repositories"]}

    def expected(*images):
        blobs = {}
        for image in images:
            for blob in [image["config"], *image["layers"]]:
                blobs[blob] = len(blob)
        manifests = sum(len(i["manifest"]) for i in images)
        return {"blobs": len(blobs), "blob_bytes": sum(blobs.values()), "manifests": len(images),
                "manifest_bytes": manifests, "bytes": sum(blobs.values()) + manifests}

    for name, images, tags in [(a, [a1, a2], 2), (b, [b1], 1)]:
        want = expected(*images)
        have = repos[name]
        assert {k: have[k] for k in want} == want, (name, have)
        assert have["tags"] == tags
    total = expected(a1, a2, b1)
    assert {k: got["totals"][k] for k in total} == total, got["totals"]
    assert got["totals"]["repositories"] == 2
    assert got["totals"]["repository_bytes"] == repos[a]["bytes"] + repos[b]["bytes"]
    assert got["totals"]["repository_bytes"] - got["totals"]["bytes"] == len(shared), "the shared layer once"

    table = scripts_usage(usage_registry)
    assert table.returncode == 0 and a in table.stdout and b in table.stdout, table.stdout + table.stderr
    one = scripts_usage(usage_registry, "--json", b)
    assert one.returncode == 0 and json.loads(one.stdout)["bytes"] == repos[b]["bytes"], one.stdout + one.stderr

    # What is pushed after a report shows after the next run; --refresh runs one now.
    b2 = push(http, b, [b"b2\0" + random_bytes(2000)], "v2")
    assert json.loads(scripts_usage(usage_registry, "--json", b).stdout)["manifests"] == 1, "stale by one run"
    fresh = scripts_usage(usage_registry, "--refresh", "--json")
    assert fresh.returncode == 0, fresh.stderr
    now = {r["repository"]: r for r in json.loads(fresh.stdout)["repositories"]}
    want = expected(b1, b2)
    assert {k: now[b][k] for k in want} == want, now[b]
