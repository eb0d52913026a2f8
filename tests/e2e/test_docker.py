"""docker end to end: a private dockerd (tests/e2e/dockerd.py) builds images `FROM scratch`
and pushes them through the same plain-HTTP front the skopeo tests use (docker tries HTTPS
first; the front refuses it at once). Pushed images pull back by tag and by digest after
being removed locally, with the same image id and the registry serving the digest docker
printed; a second push of the same layers uploads none of them (docker reports each as
existing or mounted); `docker login` against the access-controlled instance lets a writer
push and refuses a reader's push. containerd's `ctr`, a second real client (the containerd
that dockerd runs), pulls what docker pushed and pushes it to another repository with
`--plain-http`; digests equal.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import pytest

from clientrun import require, runner
from dockerd import Dockerd
from helpers import random_bytes
from plainfront import PlainHttpFront

PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64}) size:")


@pytest.fixture(scope="module")
def dockerd():
    found = require("dockerd", "docker")
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root here")
    daemon = Dockerd(found["dockerd"], found["docker"])
    yield daemon
    daemon.stop()


def front_for(registry):
    target = urlsplit(registry.url)
    return PlainHttpFront(target.port or 80, target.hostname)


@pytest.fixture(scope="module")
def host(registry):
    front = front_for(registry)
    yield front.host
    front.close()


@pytest.fixture(scope="module")
def auth_host(auth_registry):
    front = front_for(auth_registry)
    yield front.host
    front.close()


def build(dockerd, tmp_path, tag: str, layer_bytes: int = 3 * 1024 * 1024) -> str:
    """Builds a two-layer image `FROM scratch` as `tag`; its image id."""
    (tmp_path / "data.bin").write_bytes(random_bytes(layer_bytes))
    (tmp_path / "hello.txt").write_text(f"hello from {tag}\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY data.bin /data.bin\nCOPY hello.txt /hello.txt\n")
    dockerd.docker("build", "-q", "-t", tag, ".", cwd=tmp_path)
    return image_id(dockerd, tag)


def image_id(dockerd, ref: str) -> str:
    return dockerd.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.decode().strip()


def push(dockerd, ref: str) -> tuple[str, str]:
    """Pushes `ref`: (the manifest digest docker printed, its whole output)."""
    out = dockerd.docker("push", ref).stdout.decode()
    found = PUSHED_DIGEST.search(out)
    assert found, out
    return found.group(1), out


def test_push_then_pull_by_tag_and_by_digest(dockerd, host, repo, client, tmp_path):
    ref = f"{host}/{repo}:1"
    built = build(dockerd, tmp_path, ref)
    digest, _ = push(dockerd, ref)
    served = client.head(f"/v2/{repo}/manifests/1")
    assert served.status_code == 200 and served.headers["Docker-Content-Digest"] == digest
    dockerd.docker("rmi", ref)
    dockerd.docker("image", "inspect", ref, check="fail")
    dockerd.docker("pull", ref)
    assert image_id(dockerd, ref) == built
    dockerd.docker("rmi", ref)
    by_digest = f"{host}/{repo}@{digest}"
    dockerd.docker("pull", by_digest)
    assert image_id(dockerd, by_digest) == built
    dockerd.docker("rmi", by_digest)


def test_layers_already_in_the_registry_are_not_uploaded_again(dockerd, host, repo, tmp_path):
    first = f"{host}/{repo}:a"
    build(dockerd, tmp_path, first)
    push(dockerd, first)
    for again in (f"{host}/{repo}:b", f"{host}/{repo}-copy:1"):
        dockerd.docker("tag", first, again)
        _, out = push(dockerd, again)
        # docker prints each layer's last state on its own line (without a terminal).
        last = {}
        for line in out.splitlines():
            if found := re.match(r"^([0-9a-f]{12}): (.*)$", line):
                last[found.group(1)] = found.group(2)
        assert len(last) == 2, out
        assert all(state == "Layer already exists" or state.startswith("Mounted from") for state in last.values()), out
        dockerd.docker("rmi", again)
        dockerd.docker("pull", again)
    dockerd.docker("rmi", "-f", first, f"{host}/{repo}:b", f"{host}/{repo}-copy:1")


def test_pull_picks_its_platform_from_a_multi_platform_index(dockerd, host, repo, client, tmp_path):
    """An index made and pushed with `docker manifest` (linux/amd64 and an image annotated
    linux/arm64): `docker pull` of the index takes this machine's linux/amd64 image."""
    amd64, arm64, multi = f"{host}/{repo}:amd64", f"{host}/{repo}:arm64", f"{host}/{repo}:multi"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    wanted = build(dockerd, tmp_path / "a", amd64, layer_bytes=128 * 1024)
    other = build(dockerd, tmp_path / "b", arm64, layer_bytes=128 * 1024)
    push(dockerd, amd64)
    push(dockerd, arm64)
    dockerd.docker("manifest", "create", "--insecure", multi, amd64, arm64)
    dockerd.docker("manifest", "annotate", "--arch", "arm64", multi, arm64)
    dockerd.docker("manifest", "push", "--insecure", "--purge", multi)
    index = client.get(f"/v2/{repo}/manifests/multi",
                       headers={"Accept": "application/vnd.docker.distribution.manifest.list.v2+json"})
    assert index.status_code == 200, index.text
    platforms = sorted(m["platform"]["architecture"] for m in index.json()["manifests"])
    assert platforms == ["amd64", "arm64"], index.text
    dockerd.docker("rmi", amd64, arm64)
    dockerd.docker("pull", multi)
    assert image_id(dockerd, multi) == wanted != other
    dockerd.docker("rmi", multi)


def test_ctr_pulls_what_docker_pushed_and_pushes_it_on(dockerd, host, repo, client, tmp_path):
    found = require("ctr")
    ref, copy = f"{host}/{repo}:1", f"{host}/{repo}-ctr:1"
    build(dockerd, tmp_path, ref, layer_bytes=256 * 1024)
    digest, _ = push(dockerd, ref)

    def ctr(*args):
        return runner(dockerd.env, [found["ctr"], "--address", str(dockerd.containerd_socket), "-n", "e2e"])(*args)

    ctr("images", "pull", "--plain-http", ref)
    _, listed, _ = ctr("images", "ls")
    assert any(line.split()[:1] == [ref] and digest in line for line in listed.splitlines()), listed
    ctr("images", "tag", ref, copy)
    ctr("images", "push", "--plain-http", copy)
    served = client.head(f"/v2/{repo}-ctr/manifests/1")
    assert served.status_code == 200 and served.headers["Docker-Content-Digest"] == digest
    ctr("images", "rm", ref, copy)
    dockerd.docker("rmi", ref)


def test_login_lets_a_writer_push_and_refuses_a_reader(dockerd, auth_host, tmp_path):
    ref = f"{auth_host}/team/docker-login:1"
    build(dockerd, tmp_path, ref, layer_bytes=64 * 1024)
    dockerd.docker("login", "-u", "reader", "--password-stdin", auth_host, input=b"reader-pass")
    refused = dockerd.docker("push", ref, check="fail")
    assert re.search(r"denied|unauthorized|forbidden", refused.stderr.decode() + refused.stdout.decode(),
                     re.I), refused
    dockerd.docker("login", "-u", "writer", "--password-stdin", auth_host, input=b"writer-pass")
    push(dockerd, ref)
    dockerd.docker("rmi", ref)
    dockerd.docker("pull", ref)
    dockerd.docker("logout", auth_host)
    dockerd.docker("rmi", ref)
