"""Round trips with podman and buildah (containers/image, like skopeo, but from local
container storage): build an image with buildah, push it with podman and with buildah,
remove it locally, pull it back and compare the image id and layers. Storage is a
private vfs root per module, so nothing touches the machine's own images."""

import json
import os
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest

from helpers import Client, expect_status, get_manifest, sha256_digest
from plainfront import PlainHttpFront

TIMEOUT = 600


@pytest.fixture(scope="module")
def containers(tmp_path_factory):
    tools = {name: shutil.which(name) for name in ("podman", "buildah")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        if os.environ.get("E2E_REQUIRE_CLIENTS"):
            pytest.fail(f"{missing} not found and E2E_REQUIRE_CLIENTS is set")
        pytest.skip(f"{missing} not installed")
    base = tmp_path_factory.mktemp("containers")
    storage = ["--root", str(base / "root"), "--runroot", str(base / "run"), "--storage-driver", "vfs"]
    env = dict(os.environ, HOME=str(base), XDG_RUNTIME_DIR=str(base), REGISTRY_AUTH_FILE=str(base / "auth.json"),
               NO_PROXY="*", no_proxy="*")
    (base / "auth.json").write_text("{}")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(var, None)

    def run(tool, *args, check=True):
        cmd = [tools[tool], *storage, *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=TIMEOUT)
        if check:
            assert proc.returncode == 0, (
                f"{' '.join(cmd)} -> {proc.returncode}\nstdout: {proc.stdout.decode()[-3000:]}"
                f"\nstderr: {proc.stderr.decode()[-3000:]}")
        return proc.stdout.decode().strip()

    return run


@pytest.fixture(scope="module")
def host(registry):
    """host:port for containers/image, through the front that refuses TLS at once."""
    target = urlsplit(registry.url)
    front = PlainHttpFront(target.port or 80, target.hostname)
    yield front.host
    front.close()


def _build_image(run, tmp_path, name):
    """Two layers: a 6 MiB file, then a small one, on scratch."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    small = tmp_path / "hello.txt"
    small.write_text("hello from edge-registry\n")
    ctr = run("buildah", "from", "scratch")
    run("buildah", "copy", ctr, str(big), "/big.bin")
    run("buildah", "commit", ctr, f"{name}-base")
    ctr = run("buildah", "from", f"{name}-base")
    run("buildah", "copy", ctr, str(small), "/hello.txt")
    run("buildah", "config", "--cmd", '["/hello.txt"]', "--label", "e2e=podman", ctr)
    run("buildah", "commit", ctr, name)
    return json.loads(run("podman", "image", "inspect", name))[0]


def test_podman_and_buildah_push_and_pull(containers, registry, host, repo, tmp_path):
    local = "localhost/e2e/app:1"
    built = _build_image(containers, tmp_path, local)
    assert len(built["RootFS"]["Layers"]) == 2

    containers("podman", "push", "--tls-verify=false", local, f"{host}/{repo}:podman")
    containers("buildah", "push", "--tls-verify=false", local, f"docker://{host}/{repo}:buildah")

    client = Client(registry.url)
    try:
        manifests = {tag: expect_status(get_manifest(client, repo, tag), 200) for tag in ("podman", "buildah")}
        for tag, resp in manifests.items():
            body = json.loads(resp.content)
            assert resp.headers["Docker-Content-Digest"] == sha256_digest(resp.content)
            assert len(body["layers"]) == 2, tag
            # The image config is the one built locally: same image id.
            assert body["config"]["digest"] == "sha256:" + built["Id"], tag
        tags = expect_status(client.get(f"/v2/{repo}/tags/list"), 200).json()
        assert tags["tags"] == ["buildah", "podman"]
    finally:
        client.close()

    containers("podman", "rmi", "--all", "--force")
    assert containers("podman", "images", "--quiet") == ""
    containers("podman", "pull", "--tls-verify=false", f"{host}/{repo}:podman")
    pulled = json.loads(containers("podman", "image", "inspect", f"{host}/{repo}:podman"))[0]
    assert pulled["Id"] == built["Id"]
    assert pulled["RootFS"]["Layers"] == built["RootFS"]["Layers"]
    assert pulled["Config"]["Labels"]["e2e"] == "podman"
