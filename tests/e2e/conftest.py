"""Fixtures for the end-to-end suite: a real `wrangler dev` worker per session.

`registry` (session) starts `npx --no-install wrangler dev` on 127.0.0.1 with a free
port and a fresh `--persist-to` state dir (local R2 + KV), waits until GET /v2/
answers 200, and kills the whole process group at the end. The worker must be
built already (scripts/test does that; EDGE_REGISTRY_SKIP_BUILD=1 tells the
build hook to skip). Set E2E_REGISTRY_URL=http://127.0.0.1:PORT to run the suite
against a registry that is already running instead (restart() then skips).

`auth_registry` (session) is a second, separate instance with access control on: the
same command plus `--env-file examples/auth.dev.vars` (users reader, writer, admin;
anonymous pull on public/*), its own state dir and port. Anonymous GET /v2/ answers 401
there, which is what its readiness probe waits for. E2E_AUTH_REGISTRY_URL points it at
one already running with those vars instead.

Environment knobs: E2E_READY_TIMEOUT (s, default 120), E2E_KEEP_STATE=1 (keep the
temp dir even when everything passed), E2E_REGISTRY_URL, E2E_AUTH_REGISTRY_URL (see above).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from helpers import Client, random_repo
from workerd_proc import stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = float(os.environ.get("E2E_READY_TIMEOUT", "120"))
START_ATTEMPTS = 3
STOP_TIMEOUT = 15.0


EXPIRY_SECONDS = 5
AUTH_VARS = REPO_ROOT / "examples" / "auth.dev.vars"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    ok = host == "localhost"
    try:
        ok = ok or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not ok:
        raise pytest.UsageError(f"E2E_REGISTRY_URL must point at a loopback address, got {url}")


class Registry:
    """A running registry: `.url`, `.host`, `.state_dir`, `.restart()`.

    extra_args go to `wrangler dev` after the usual ones (kept across restarts);
    ready_status is what anonymous GET /v2/ answers once it serves (401 with auth on);
    config is the wrangler.toml whose worker runs (default: this tree's; test_upgrade.py
    points it at a previous release's build, then back, on the same state dir).
    """

    def __init__(self, url: str | None = None, extra_args=(), ready_status: int = 200,
                 config: Path | None = None):
        self.external = url is not None
        self.config = Path(config) if config else REPO_ROOT / "wrangler.toml"
        self.extra_args = list(extra_args)
        self.ready_status = ready_status
        self.proc: subprocess.Popen | None = None
        self.log_file = None
        if self.external:
            _require_loopback(url)
            self.url = url.rstrip("/")
            self.host = urlsplit(self.url).netloc
            self.workdir = self.state_dir = self.log_path = None
            return
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="edge-registry-e2e-"))
        self.state_dir = self.workdir / "state"
        self.state_dir.mkdir()
        self.log_path = self.workdir / "wrangler.log"

    # ----------------------------------------------------------- process control
    def command(self) -> list[str]:
        if shutil.which("npx") is None:
            pytest.fail("npx not found: install Node.js and run npm ci in the repo root")
        if not (REPO_ROOT / "node_modules" / ".bin" / "wrangler").exists():
            pytest.fail(f"wrangler is not installed in {REPO_ROOT}/node_modules (run npm ci)")
        return [
            "npx", "--no-install", "wrangler", "dev",
            "--config", str(self.config),
            "--ip", "127.0.0.1",
            "--port", str(self.port),
            "--persist-to", str(self.state_dir),
            "--inspector-port", str(free_port()),
            "--show-interactive-dev-session=false",
            # GET /__scheduled runs the cron job (upload expiry) on demand; sessions idle
            # for EXPIRY_SECONDS are expired by it (test_expiry.py).
            "--test-scheduled",
            "--var", f"UPLOAD_EXPIRY_SECONDS:{EXPIRY_SECONDS}",
            *self.extra_args,
        ]

    def start(self) -> None:
        if self.external:
            self.wait_ready()
            return
        env = dict(os.environ, EDGE_REGISTRY_SKIP_BUILD="1", WRANGLER_SEND_METRICS="false",
                   NO_COLOR="1", FORCE_COLOR="0", CI="1")
        # A port picked free can be taken before wrangler binds it (another process's
        # outgoing connection gets it): seen once in CI for the inspector port. Such a
        # start is tried again, with a fresh inspector port.
        for attempt in range(1, START_ATTEMPTS + 1):
            cmd = self.command()
            self.log_file = open(self.log_path, "ab")
            self.log_file.write(f"\n===== start {time.ctime()}: {' '.join(cmd)}\n".encode())
            self.log_file.flush()
            started_at = self.log_path.stat().st_size
            self.proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)
            if self.wait_ready(retry_if_port_taken=(attempt < START_ATTEMPTS, started_at)):
                return
            self.stop()
            time.sleep(1)

    def wait_ready(self, retry_if_port_taken=(False, 0)) -> bool:
        """True once /v2/ answers; False when wrangler exited because a port was taken
        and `retry_if_port_taken` = (may retry, log offset of this start) allows a retry."""
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer yet"
        probe = requests.Session()
        probe.trust_env = False  # loopback only: ignore proxy settings
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                may_retry, offset = retry_if_port_taken
                if may_retry and self.log_path is not None:
                    with open(self.log_path, "rb") as log:
                        log.seek(offset)
                        if b"Address already in use" in log.read():
                            return False
                self.fail(f"wrangler exited early with code {self.proc.returncode}")
            try:
                resp = probe.get(self.url + "/v2/", timeout=5)
                if resp.status_code == self.ready_status:
                    probe.close()
                    return True
                last = f"GET /v2/ -> {resp.status_code}"
            except requests.RequestException as exc:
                last = f"GET /v2/ failed: {exc.__class__.__name__}"
            time.sleep(0.5)
        self.fail(f"registry not ready after {READY_TIMEOUT:.0f}s ({last}, "
                  f"waiting for {self.ready_status})")

    def fail(self, why: str) -> None:
        tail = self.log_tail()
        print(f"\n{why}\n----- wrangler log tail ({self.log_path}) -----\n{tail}")
        self.stop()
        pytest.fail(f"{why}\n{tail}", pytrace=False)

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_bytes().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process_group(proc, STOP_TIMEOUT)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
        if not self.external:
            deadline = time.monotonic() + 20
            while port_open(self.port) and time.monotonic() < deadline:
                time.sleep(0.2)

    def restart(self) -> None:
        """Stop and start again on the same state dir and port, then wait for /v2/."""
        if self.external:
            pytest.skip("E2E_REGISTRY_URL is set: cannot restart an external registry")
        self.stop()
        self.start()

    def cleanup(self, keep: bool) -> None:
        self.stop()
        if self.workdir is None:
            return
        if keep or os.environ.get("E2E_KEEP_STATE"):
            print(f"\ne2e registry state and log kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ------------------------------------------------------------------ pytest hooks

def pytest_collection_modifyitems(session, config, items):
    """Run test_restart.py last, so a restart never lands between other tests."""
    items.sort(key=lambda item: item.path.name == "test_restart.py")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.session.config.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


# --------------------------------------------------------------------- fixtures

def _serve(pytestconfig, reg: Registry):
    try:
        reg.start()
        yield reg
    finally:
        failed = pytestconfig.stash.get(_FAILED, False)
        if failed and not reg.external:
            print(f"\n----- wrangler log tail ({reg.log_path}) -----\n{reg.log_tail()}")
        reg.cleanup(keep=failed)


@pytest.fixture(scope="session")
def registry(pytestconfig):
    yield from _serve(pytestconfig, Registry(os.environ.get("E2E_REGISTRY_URL") or None))


@pytest.fixture(scope="session")
def auth_registry(pytestconfig):
    """A second instance with access control: examples/auth.dev.vars (see module doc)."""
    reg = Registry(os.environ.get("E2E_AUTH_REGISTRY_URL") or None,
                   extra_args=["--env-file", str(AUTH_VARS)], ready_status=401)
    yield from _serve(pytestconfig, reg)


@pytest.fixture(scope="module")
def own_registry(pytestconfig):
    """A registry of the module's own, stopped when the module ends: for tests whose load
    (several GiB through the local R2 simulator) could destabilise the shared instance."""
    yield from _serve(pytestconfig, Registry())


@pytest.fixture
def client(registry):
    c = Client(registry.url)
    yield c
    c.close()


@pytest.fixture
def repo(request):
    """A fresh repository name for this test: e2e/<test>-<random>."""
    return random_repo(request.node.name)


@pytest.fixture
def repo2(request):
    return random_repo(request.node.name + "-b")


# ------------------------------------------------------------------ measurements

_MEASUREMENTS: list[tuple[str, str, str]] = []


@pytest.fixture
def measure(request):
    """measure(what, value): a number a test measured, printed in the session summary."""
    def record(what: str, value: str) -> None:
        _MEASUREMENTS.append((request.node.name, what, value))
    return record


def pytest_terminal_summary(terminalreporter):
    if _MEASUREMENTS:
        terminalreporter.section("measured")
        for test, what, value in _MEASUREMENTS:
            terminalreporter.write_line(f"{what}: {value}  [{test}]")
