"""The previous release's worker, built from git history for the upgrade test.

`previous_worker()` exports the commit with `git archive` into a temporary directory
(git's state is left untouched: no worktree to register or prune), builds that commit's
crate there with today's `scripts/build DIR` (the release's code and storage formats are
what the test is about; its build tooling, worker-build then, is not) and yields the
directory, whose `wrangler.toml` runs its `build/index.js`. The directory is removed
afterwards, also on failure. Cargo's output is kept in `target/upgrade-previous/cargo`
(gitignored with the rest of `target/`): `git archive` stamps every file with the commit's
time, so a second run finds the crate fresh and only re-runs wasm-bindgen.

git missing, no repository, or the commit absent from this clone's history (a shallow
clone) skip the test; a failing build fails it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The last commit that landed before the upgrade work (issue 9, "Upgrades lose nothing"):
# the release a deployment is upgraded from. Move it forward when a release ships.
PREVIOUS_RELEASE = "4f727de"
CACHE_DIR = REPO_ROOT / "target" / "upgrade-previous"
BUILD_TIMEOUT = float(os.environ.get("E2E_PREVIOUS_BUILD_TIMEOUT", "1800"))


def previous_release() -> str:
    """The commit to upgrade from: E2E_PREVIOUS_RELEASE, else PREVIOUS_RELEASE."""
    return os.environ.get("E2E_PREVIOUS_RELEASE") or PREVIOUS_RELEASE


def _git(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, **kw)


def resolve_commit(commit: str) -> str:
    """The full hash of `commit`, or pytest.skip when git or the commit is unavailable."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot build the previous release")
    if _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip(f"{REPO_ROOT} is not a git repository: cannot build the previous release")
    found = _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", text=True)
    if found.returncode != 0:
        pytest.skip(f"previous release {commit} is not in this clone's history "
                    "(shallow clone? `git fetch --unshallow`)")
    return found.stdout.strip()


@contextlib.contextmanager
def previous_worker(commit: str | None = None):
    """Yields (directory with the built worker, full hash, build seconds)."""
    sha = resolve_commit(commit or previous_release())
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    if _git("check-ignore", "-q", str(CACHE_DIR)).returncode != 0:
        pytest.fail(f"{CACHE_DIR} is not gitignored: the build cache would show up in git status")
    tree = Path(tempfile.mkdtemp(prefix=f"edge-registry-{sha[:10]}-"))
    log_path = CACHE_DIR / f"build-{sha[:12]}.log"
    try:
        archive = tree.parent / (tree.name + ".tar")
        try:
            made = _git("archive", "--format=tar", "-o", str(archive), sha, text=True)
            if made.returncode != 0:
                pytest.fail(f"git archive {sha} failed: {made.stderr}")
            subprocess.run(["tar", "-xf", str(archive), "-C", str(tree)], check=True)
        finally:
            archive.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "EDGE_REGISTRY_SKIP_BUILD"}
        env["CARGO_TARGET_DIR"] = str(CACHE_DIR / "cargo")
        started = time.monotonic()
        with open(log_path, "wb") as log:
            try:
                built = subprocess.run([str(REPO_ROOT / "scripts" / "build"), str(tree)], cwd=tree, env=env,
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"building {sha[:12]} took over {BUILD_TIMEOUT:.0f}s (log {log_path})")
        seconds = time.monotonic() - started
        if built.returncode != 0 or not (tree / "build" / "index.js").exists():
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
            pytest.fail(f"scripts/build of {sha[:12]} failed ({built.returncode}), log {log_path}:\n{tail}",
                        pytrace=False)
        yield tree, sha, seconds
    finally:
        shutil.rmtree(tree, ignore_errors=True)
