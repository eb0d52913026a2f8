"""Repository delete end to end: an instance of its own with the smallest step budget
(REPOSITORY_DELETE_CALLS_PER_STEP=7: two pages of keys per request, one per cron
invocation; the local R2 lists 100 keys a page with their metadata) and an immutable-tag
rule. A repository of 440 tags is deleted as a job:
the DELETE answers 202 with the status's Location, pushes into it are refused while it
runs, the cron trigger (/__scheduled) finishes it over several invocations, and the
status shows it done. The README's backup recipes (skopeo copy --all to an OCI layout and
back; skopeo sync of a repository to directories and back) restore a deleted image with
the same digest. A repository holding an
immutable tag is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import Registry, _serve
from helpers import (
    OCI_MANIFEST, Client, assert_error, expect_status, get_manifest, push_image, push_manifest,
)
from test_docker import front_for

CRON = "/__scheduled?cron=17+*+*+*+*"
TAGS = 440  # five PUTs of 88
TAGS_PER_PUT = 88  # each answered with an OCI-Tag header: under http.client's 100


@pytest.fixture(scope="module")
def delete_registry(pytestconfig, tmp_path_factory):
    env_file = tmp_path_factory.mktemp("repodelete") / "repodelete.dev.vars"
    rules = '[{"repositories": "*/locked", "tags": ["v*"]}]'
    env_file.write_text(f"REPOSITORY_DELETE_CALLS_PER_STEP=7\nIMMUTABLE_TAGS='{rules}'\n")
    yield from _serve(pytestconfig, Registry(extra_args=["--env-file", str(env_file)]))


@pytest.fixture
def http(delete_registry):
    c = Client(delete_registry.url)
    yield c
    c.close()


def deletion(http, repo: str) -> dict:
    return expect_status(http.get(f"/admin/repositories/{repo}"), 200).json()


def test_a_big_repository_is_deleted_as_a_job_the_cron_trigger_finishes(http, repo):
    img = push_image(http, repo, "v1")
    for start in range(0, TAGS, TAGS_PER_PUT):
        # Named after v1, which the first step deletes (tags go in key order).
        tags = [("tag", f"x{i:05}") for i in range(start, start + TAGS_PER_PUT)]
        push_manifest(http, repo, img["digest"], img["manifest"], OCI_MANIFEST, params=tags)
    assert deletion(http, repo)["state"] == "never-deleted"

    first = http.delete(f"/admin/repositories/{repo}")
    assert first.status_code == 202, first.text
    assert first.headers["Location"] == f"/admin/repositories/{repo}"
    job = first.json()
    assert job["state"] == "deleting" and 0 < job["keys_removed"] < TAGS, job
    assert_error(get_manifest(http, repo, "v1"), 404, "MANIFEST_UNKNOWN")
    refused = http.post(f"/v2/{repo}/blobs/uploads/")
    assert_error(refused, 403, "DENIED")
    assert "is being deleted" in refused.text, refused.text

    invocations = 0
    while deletion(http, repo)["state"] != "done":
        assert http.get(CRON).status_code == 200
        invocations += 1
        assert invocations < 60, deletion(http, repo)
    assert invocations >= 2, "the cron trigger continued it over several invocations"
    done = deletion(http, repo)
    assert done["started_at"] == job["started_at"] and done["finished_at"] >= done["started_at"], done
    # Every tag, the manifest link, three blob links, the catalog entry.
    assert done["keys_removed"] == TAGS + 1 + 1 + 3 + 1, done
    assert_error(get_manifest(http, repo, img["digest"]), 404, "MANIFEST_UNKNOWN")
    assert repo not in expect_status(http.get("/v2/_catalog?n=1000"), 200).json()["repositories"]
    assert_error(http.delete(f"/admin/repositories/{repo}"), 404, "NAME_UNKNOWN")
    soon = http.post(f"/v2/{repo}/blobs/uploads/")
    assert_error(soon, 403, "DENIED")
    assert "deleted moments ago" in soon.text, soon.text


def test_a_repository_with_an_immutable_tag_is_refused(http, repo):
    push_image(http, f"{repo}/locked", "v1")
    assert_error(http.delete(f"/admin/repositories/{repo}/locked"), 403, "DENIED")
    assert deletion(http, f"{repo}/locked")["state"] == "never-deleted"
    expect_status(get_manifest(http, f"{repo}/locked", "v1"), 200)


def test_the_readme_backup_restores_a_deleted_image_with_its_digest(delete_registry, http, repo, tmp_path):
    exe = shutil.which("skopeo")
    if exe is None:
        if os.environ.get("E2E_REQUIRE_CLIENTS"):
            pytest.fail("skopeo not found and E2E_REQUIRE_CLIENTS is set")
        pytest.skip("skopeo not installed (set E2E_REQUIRE_CLIENTS=1 to make this fail)")
    front = front_for(delete_registry)
    home = tmp_path / "home"
    home.mkdir()
    (home / "auth.json").write_text("{}")
    env = dict(os.environ, HOME=str(home), REGISTRY_AUTH_FILE=str(home / "auth.json"), NO_PROXY="*")

    def skopeo(*args):
        cmd = [exe, "--insecure-policy", *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
        assert proc.returncode == 0, f"{cmd}: {proc.stderr.decode()[-2000:]}"

    try:
        img = push_image(http, f"{repo}/app", "1.0")
        backup = tmp_path / "backup"
        # The README's commands: back up every tag to an OCI layout, delete, restore.
        skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false", f"docker://{front.host}/{repo}/app:1.0",
               f"oci:{backup}:1.0")
        expect_status(http.delete(f"/admin/repositories/{repo}/app"), 200, 202)
        for _ in range(10):
            if deletion(http, f"{repo}/app")["state"] == "done":
                break
            assert http.get(CRON).status_code == 200
        assert_error(get_manifest(http, f"{repo}/app", "1.0"), 404, "MANIFEST_UNKNOWN")
        # Into another name: the deleted one refuses pushes for a few minutes.
        skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false", f"oci:{backup}:1.0",
               f"docker://{front.host}/{repo}/restored:1.0")
        restored = expect_status(get_manifest(http, f"{repo}/restored", "1.0"), 200)
        assert restored.headers["Docker-Content-Digest"] == img["digest"]
        assert restored.content == img["manifest"]
        # Every tag of a repository: skopeo sync to one directory per tag, and back.
        synced = tmp_path / "synced"
        skopeo("sync", "--all", "--preserve-digests", "--src", "docker", "--dest", "dir",
               "--src-tls-verify=false", f"{front.host}/{repo}/restored", str(synced))
        assert [p.name for p in synced.iterdir()] == ["restored:1.0"]
        skopeo("sync", "--all", "--preserve-digests", "--src", "dir", "--dest", "docker",
               "--dest-tls-verify=false", str(synced / "restored:1.0"), f"{front.host}/{repo}/synced")
        again = expect_status(get_manifest(http, f"{repo}/synced/restored", "1.0"), 200)
        assert again.headers["Docker-Content-Digest"] == img["digest"]
    finally:
        front.close()
