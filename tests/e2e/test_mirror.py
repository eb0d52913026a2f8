"""The pull-through cache against real upstreams, all local (there is no internet):
CNCF distribution (Debian's docker-registry) under `dist/`, the same behind a stub that can
fail or corrupt under `hub/` (Docker Hub's naming: `library/` added, the mirror host's
root), and our own worker with access control (examples/auth.dev.vars, the Docker token
flow) under `own/`, logged in as `reader`. The cache is a wrangler dev of its own.

skopeo, podman and docker (through `registry-mirrors` in its daemon.json) pull through it;
digests equal upstream's; a second pull is served with the upstream stopped; a tag moved
upstream is seen after UPSTREAM_TAG_TTL_SECONDS and not before; 429 and 5xx give the stale
copy; a corrupt blob is refused and not stored; the token-flow credentials work and appear
in no response and no log. Upstream requests per pull are counted at the stub."""

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from authflow import PASSWORDS, client_as, login
from clientrun import isolated_env, require, runner
from conftest import Registry, _serve
from dockerd import Dockerd
from helpers import Client, get_manifest, layout_manifest_digest, sha256_digest
from plainfront import PlainHttpFront
from upstreams import Distribution, Stub, push_image

TTL_S = 6
HEADER = "x-edge-registry-upstream"


@pytest.fixture(scope="module")
def distribution():
    found = require("docker-registry")
    upstream = Distribution(found["docker-registry"])
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def stub(distribution):
    proxy = Stub(distribution.url)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def mirror(pytestconfig, tmp_path_factory, distribution, stub, auth_registry):
    reg = Registry()
    upstreams = [
        {"prefix": "dist", "url": distribution.url},
        {"prefix": "hub", "url": stub.url, "official_images": True},
        {"prefix": "own", "url": auth_registry.url},
    ]
    credentials = {"own": {"username": "reader", "password": PASSWORDS["reader"]}}
    env_file = tmp_path_factory.mktemp("mirror") / "mirror.dev.vars"
    env_file.write_text(f"UPSTREAMS='{json.dumps(upstreams)}'\nUPSTREAM_CREDENTIALS='{json.dumps(credentials)}'\n"
                        f"UPSTREAM_TAG_TTL_SECONDS={TTL_S}\nMIRROR_HOSTS='{{\"localhost:{reg.port}\": \"hub\"}}'\n")
    reg.extra_args = ["--env-file", str(env_file)]
    yield from _serve(pytestconfig, reg)


@pytest.fixture(scope="module")
def cache(mirror):
    client = Client(mirror.url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def front(mirror):
    """host:port of the cache for containers/image clients (no TLS probe)."""
    target = urlsplit(mirror.url)
    proxy = PlainHttpFront(target.port, target.hostname)
    yield proxy.host
    proxy.close()


def pull(client: Client, name: str, tag: str) -> tuple[str, dict]:
    """Pulls as a client does: the manifest, then each blob; (digest, blobs by digest)."""
    resp = get_manifest(client, name, tag)
    assert resp.status_code == 200, resp.text
    manifest = resp.json()
    blobs = {}
    for d in [manifest["config"]["digest"], *[layer["digest"] for layer in manifest["layers"]]]:
        blob = client.get(f"/v2/{name}/blobs/{d}")
        assert blob.status_code == 200, blob.text
        blobs[d] = blob.content
    return resp.headers["Docker-Content-Digest"], blobs


def test_skopeo_pulls_through_and_again_with_the_upstream_stopped(distribution, cache, front, tmp_path):
    found = require("skopeo")
    image = push_image(Client(distribution.url), "team/skopeo", "1")
    run = runner(isolated_env(tmp_path), [found["skopeo"]])
    for attempt in ("cold", "upstream stopped"):
        layout = tmp_path / attempt.replace(" ", "-")
        run("copy", "--preserve-digests", "--src-tls-verify=false", f"docker://{front}/dist/team/skopeo:1",
            f"oci:{layout}:1")
        assert layout_manifest_digest(layout, "1") == image["digest"], attempt
        for digest, data in image["blobs"].items():
            assert (layout / "blobs" / "sha256" / digest[7:]).read_bytes() == data
        distribution.stop()
    distribution.start()
    stale = get_manifest(cache, "dist/team/skopeo", "1")
    assert stale.headers.get("Docker-Content-Digest") == image["digest"]


def test_podman_pulls_through_the_cache(distribution, front):
    found = require("podman")
    image = push_image(Client(distribution.url), "team/podman", "1")
    base = Path(tempfile.mkdtemp(prefix="e2e-pm-"))  # podman refuses a run root over 50 characters
    try:
        storage = ["--root", str(base / "root"), "--runroot", str(base / "run"), "--storage-driver", "vfs"]
        run = runner(isolated_env(base), [found["podman"], *storage])
        run("pull", "--tls-verify=false", f"{front}/dist/team/podman:1")
        _, out, _ = run("image", "inspect", f"{front}/dist/team/podman:1")
        assert json.loads(out)[0]["Digest"] == image["digest"]
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_docker_registry_mirrors_pulls_docker_hub_names_through_the_cache(distribution, stub, mirror):
    found = require("dockerd", "docker")
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root here")
    image = push_image(Client(distribution.url), "library/mirrored", "1")
    stub.take_requests()
    daemon = Dockerd(found["dockerd"], found["docker"],
                     daemon_config={"registry-mirrors": [f"http://localhost:{mirror.port}"]})
    try:
        daemon.docker("pull", "mirrored:1")
        digests = json.loads(daemon.docker("image", "inspect", "--format", "{{json .RepoDigests}}",
                                           "mirrored:1").stdout)
        assert f"mirrored@{image['digest']}" in digests, digests
    finally:
        daemon.stop()
    fetched = stub.take_requests()
    assert any(r.startswith("GET /v2/library/mirrored/manifests/1") for r in fetched), fetched
    # The mirror host's name and the prefixed name are one cache.
    same = get_manifest(Client(mirror.url), "hub/library/mirrored", "1")
    assert (same.headers.get("Docker-Content-Digest"), same.headers.get(HEADER)) == (image["digest"], "hit")


def test_upstream_requests_per_pull_cold_warm_and_after_the_ttl(distribution, stub, cache, measure):
    mib = 1024 * 1024
    image = push_image(Client(distribution.url), "library/counted", "1", layer_sizes=(8 * mib, mib, mib))
    big = next(d for d, b in image["blobs"].items() if len(b) > 8 * mib)
    stub.take_requests()
    started = time.monotonic()
    with cache.get(f"/v2/hub/counted/blobs/{big}", stream=True) as miss:
        next(miss.iter_content(1))
        measure("time to first byte, 8 MiB layer, miss (s)", f"{time.monotonic() - started:.3f}")
    stub.take_requests()
    started = time.monotonic()
    with cache.get(f"/v2/hub/counted/blobs/{big}", stream=True) as hit:
        next(hit.iter_content(1))
        measure("time to first byte, 8 MiB layer, cached (s)", f"{time.monotonic() - started:.3f}")
        assert hit.headers.get(HEADER) == "hit"

    fresh = push_image(Client(distribution.url), "library/counted3", "1")
    stub.take_requests()
    digest, blobs = pull(cache, "hub/counted3", "1")
    assert (digest, blobs) == (fresh["digest"], fresh["blobs"])
    cold = stub.take_requests()
    assert len(cold) == 5 and all(r.startswith("GET ") for r in cold), cold
    assert pull(cache, "hub/counted3", "1")[0] == digest
    assert stub.take_requests() == [], "warm: nothing asked upstream"
    time.sleep(TTL_S + 0.5)
    assert pull(cache, "hub/counted3", "1")[0] == digest
    after = stub.take_requests()
    assert [r.split(" ")[0] for r in after] == ["HEAD"], after
    measure("upstream requests per pull of a 3-layer image: cold, warm, after the TTL", f"{len(cold)}, 0, {len(after)}")


def test_concurrent_misses_of_a_blob_are_fetched_upstream_once(distribution, stub, mirror):
    image = push_image(Client(distribution.url), "library/together", "1", layer_sizes=(4 * 1024 * 1024,))
    layer = sha256_digest(image["layers"][0])
    stub.slow = layer  # the first fetch takes a second: the second request arrives mid-fetch
    stub.take_requests()
    results = []

    def fetch():
        client = Client(mirror.url)
        try:
            resp = client.get(f"/v2/hub/together/blobs/{layer}")
            results.append((resp.status_code, resp.content == image["layers"][0], resp.headers.get(HEADER)))
        finally:
            client.close()

    try:
        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.3)
        for thread in threads:
            thread.join(timeout=120)
    finally:
        stub.slow = None
    assert sorted(results) == [(200, True, "fetched"), (200, True, "hit")], results
    transfers = [r for r in stub.take_requests() if r == f"GET /v2/library/together/blobs/{layer}"]
    assert len(transfers) == 1, "one upstream transfer for both"


def test_a_tag_moved_upstream_is_seen_after_the_ttl_and_not_before(distribution, cache):
    first = push_image(Client(distribution.url), "team/moving", "latest")
    fetched_at = time.monotonic()
    assert pull(cache, "dist/team/moving", "latest")[0] == first["digest"]
    second = push_image(Client(distribution.url), "team/moving", "latest")
    within = get_manifest(cache, "dist/team/moving", "latest")
    assert time.monotonic() - fetched_at < TTL_S, "the check below must run within the TTL"
    assert (within.headers["Docker-Content-Digest"], within.headers[HEADER]) == (first["digest"], "hit")
    time.sleep(max(0.0, TTL_S - (time.monotonic() - fetched_at)) + 0.5)
    after = get_manifest(cache, "dist/team/moving", "latest")
    assert (after.headers["Docker-Content-Digest"], after.headers[HEADER]) == (second["digest"], "fetched")


def test_429_and_5xx_upstream_give_the_stale_copy(distribution, stub, cache):
    statuses = (429, 503, 500)
    images = {status: push_image(Client(distribution.url), f"library/stale{status}", "1") for status in statuses}
    for status, image in images.items():
        assert pull(cache, f"hub/stale{status}", "1")[0] == image["digest"]
    time.sleep(TTL_S + 0.5)
    try:
        for status, image in images.items():
            stub.mode = status
            stale = get_manifest(cache, f"hub/stale{status}", "1")
            assert stale.status_code == 200, (status, stale.text)
            assert stale.headers["Docker-Content-Digest"] == image["digest"]
            assert stale.headers.get(HEADER) == "stale" and stale.headers.get("Warning", "").startswith("110")
            for digest, data in image["blobs"].items():
                assert cache.get(f"/v2/hub/stale{status}/blobs/{digest}").content == data
            never = get_manifest(cache, f"hub/stale{status}", "never-cached")
            assert never.status_code == 502 and "Retry-After" in never.headers, never.text
            # Served stale, the tag is trusted for another TTL: the failing upstream is not
            # asked on every pull.
            stub.take_requests()
            assert get_manifest(cache, f"hub/stale{status}", "1").headers.get(HEADER) == "hit"
            assert stub.take_requests() == []
    finally:
        stub.mode = None
    time.sleep(TTL_S + 0.5)
    assert get_manifest(cache, "hub/stale429", "1").headers.get(HEADER) == "revalidated"


def test_a_corrupt_upstream_blob_is_refused_and_not_stored(distribution, stub, cache):
    image = push_image(Client(distribution.url), "library/corrupt", "1")
    layer = next(d for d, b in image["blobs"].items() if b in image["layers"])
    assert get_manifest(cache, "hub/corrupt", "1").status_code == 200
    stub.corrupt = layer
    try:
        refused = cache.get(f"/v2/hub/corrupt/blobs/{layer}")
        assert refused.status_code == 502 and "nothing was stored" in refused.text, refused.text
        stub.corrupt, stub.mode = None, 503
        not_stored = cache.get(f"/v2/hub/corrupt/blobs/{layer}")
        assert not_stored.status_code == 502, "nothing of the corrupt copy was kept"
    finally:
        stub.corrupt, stub.mode = None, None
    healed = cache.get(f"/v2/hub/corrupt/blobs/{layer}")
    assert (healed.status_code, healed.content == image["blobs"][layer]) == (200, True)


def test_token_flow_credentials_work_and_reach_no_response_or_log(auth_registry, mirror, cache):
    writer = client_as(auth_registry.url, login("writer"))
    image = push_image(writer, "team/through-cache", "1")
    responses = []
    resp = get_manifest(cache, "own/team/through-cache", "1")
    responses.append(resp)
    assert resp.headers.get("Docker-Content-Digest") == image["digest"], resp.text
    for digest, data in image["blobs"].items():
        responses.append(cache.get(f"/v2/own/team/through-cache/blobs/{digest}"))
        assert responses[-1].content == data
    responses.append(get_manifest(cache, "own/team/absent", "1"))
    assert responses[-1].status_code == 404
    secrets = [PASSWORDS["reader"], "Basic ", "Bearer ", "eyJ"]
    for r in responses:
        seen = f"{dict(r.headers)} {r.text if r.headers.get('Content-Type', '').endswith('json') else ''}"
        assert not any(s in seen for s in secrets), seen
    log = mirror.log_path.read_text(errors="replace")
    assert "own/team/through-cache" in log, "the log is the cache's"
    assert not any(s in log for s in [PASSWORDS["reader"], "Bearer ", "eyJ"]), "a credential or token in the log"
