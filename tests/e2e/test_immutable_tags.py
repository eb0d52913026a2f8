"""Immutable tags end to end: an instance of its own started with IMMUTABLE_TAGS (every
`v*` tag of `e2e/*` except `*-rc*`). docker pushes v1, then a different image as v1 and is
refused, showing the registry's DENIED message; podman is refused the same way; pushing
the same image as v1 again works; a tag no rule covers (`latest`, `v2-rc1`) moves freely;
deleting v1, or the manifest it points at, is refused. Images are tiny, built FROM
scratch by a private dockerd (tests/e2e/dockerd.py) and by podman on a private vfs root.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from clientrun import isolated_env, require, runner
from conftest import Registry, _serve
from helpers import Client, assert_error
from test_docker import build, dockerd, front_for, push  # noqa: F401 (dockerd is a fixture)

RULES = '[{"repositories": "e2e/*", "tags": ["v*"], "except": ["*-rc*"]}]'
RULE_TEXT = 'IMMUTABLE_TAGS rule "e2e/*" tags ["v*"] except ["*-rc*"]'
SMALL = 32 * 1024


@pytest.fixture(scope="module")
def immutable_registry(pytestconfig, tmp_path_factory):
    env_file = tmp_path_factory.mktemp("immutable") / "immutable.dev.vars"
    env_file.write_text(f"IMMUTABLE_TAGS='{RULES}'\n")
    yield from _serve(pytestconfig, Registry(extra_args=["--env-file", str(env_file)]))


@pytest.fixture(scope="module")
def host(immutable_registry):
    front = front_for(immutable_registry)
    yield front.host
    front.close()


@pytest.fixture
def http(immutable_registry):
    c = Client(immutable_registry.url)
    yield c
    c.close()


def tagged(http, repo: str, tag: str) -> str | None:
    resp = http.head(f"/v2/{repo}/manifests/{tag}")
    return resp.headers["Docker-Content-Digest"] if resp.status_code == 200 else None


def refused_push(dockerd, ref: str) -> str:
    proc = dockerd.docker("push", ref, check="fail")
    return proc.stdout.decode() + proc.stderr.decode()


def test_docker_cannot_move_an_immutable_tag_but_may_push_it_again(dockerd, host, http, repo, tmp_path):
    v1 = f"{host}/{repo}:v1"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    build(dockerd, tmp_path / "a", v1, layer_bytes=SMALL)
    first, _ = push(dockerd, v1)
    dockerd.docker("tag", v1, f"{host}/{repo}:first")
    build(dockerd, tmp_path / "b", v1, layer_bytes=SMALL)
    said = refused_push(dockerd, v1)
    assert f"denied: tag v1 of {repo} is immutable ({RULE_TEXT}) and points at {first}" in said, said
    assert "push a new tag instead" in said, said
    assert tagged(http, repo, "v1") == first
    # The same image as v1 again: accepted, nothing moves.
    dockerd.docker("tag", f"{host}/{repo}:first", v1)
    again, _ = push(dockerd, v1)
    assert again == first and tagged(http, repo, "v1") == first
    # Tags no rule covers move: latest, and the excepted release candidate.
    for tag in ("latest", "v2-rc1"):
        ref = f"{host}/{repo}:{tag}"
        dockerd.docker("tag", f"{host}/{repo}:first", ref)
        pushed, _ = push(dockerd, ref)
        assert pushed == first
        build(dockerd, tmp_path / "b", ref, layer_bytes=SMALL)
        moved, _ = push(dockerd, ref)
        assert moved != first and tagged(http, repo, tag) == moved, tag
    dockerd.docker("rmi", "-f", v1, f"{host}/{repo}:first", f"{host}/{repo}:latest", f"{host}/{repo}:v2-rc1")


def test_deleting_an_immutable_tag_or_its_manifest_is_refused(dockerd, host, http, repo, tmp_path):
    ref = f"{host}/{repo}:v1"
    build(dockerd, tmp_path, ref, layer_bytes=SMALL)
    digest, _ = push(dockerd, ref)
    for reference in ("v1", digest):
        resp = http.delete(f"/v2/{repo}/manifests/{reference}")
        assert_error(resp, 403, "DENIED")
        assert "is immutable" in resp.json()["errors"][0]["message"]
    assert tagged(http, repo, "v1") == digest
    dockerd.docker("rmi", "-f", ref)


@pytest.fixture
def podman():
    found = require("podman")
    base = Path(tempfile.mkdtemp(prefix="podman-"))  # podman wants a runroot under 50 characters
    storage = ["--root", str(base / "root"), "--runroot", str(base / "run"), "--storage-driver", "vfs"]
    yield runner(isolated_env(base), [found["podman"], *storage])
    shutil.rmtree(base, ignore_errors=True)


def test_podman_cannot_move_an_immutable_tag(podman, host, http, repo, tmp_path):
    for name in ("one", "two"):
        context = tmp_path / name
        context.mkdir()
        (context / "hello.txt").write_text(f"hello from podman image {name}\n")
        (context / "Containerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
        podman("build", "-q", "-t", f"localhost/e2e/{name}:1", str(context))
    podman("push", "--tls-verify=false", "localhost/e2e/one:1", f"{host}/{repo}:v1")
    first = tagged(http, repo, "v1")
    assert first
    _, out, err = podman("push", "--tls-verify=false", "localhost/e2e/two:1", f"{host}/{repo}:v1", check="fail")
    assert f"tag v1 of {repo} is immutable" in out + err, out + err
    assert "denied" in (out + err).lower(), out + err
    assert tagged(http, repo, "v1") == first
    podman("push", "--tls-verify=false", "localhost/e2e/one:1", f"{host}/{repo}:v1")
    assert tagged(http, repo, "v1") == first
