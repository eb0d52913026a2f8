"""Settings the worker cannot use, end to end. A `wrangler dev` worker started with a var
it cannot use answers every request with a 500 whose text names the var and says what is
wrong (logged once), whether the refusal is new (a junk number, which used to fall back
silently) or kept (access control without a signing key). `scripts/dev` asks the worker
once it is up and stops with that line instead of serving; with valid settings it serves,
and stops on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import REPO_ROOT, Registry, _serve, free_port, port_open
from workerd_proc import stop_process_group

DEV_TIMEOUT = 240.0
PATHS = ("/v2/", "/v2/_catalog", "/v2/team/app/tags/list", "/token", "/auth/tokens")


@pytest.fixture(scope="module")
def junk_number(pytestconfig):
    yield from _serve(pytestconfig, Registry(extra_args=["--var", "MAX_REQUEST_BODY_MB:100MB"], ready_status=500))


@pytest.fixture(scope="module")
def no_signing_key(pytestconfig):
    yield from _serve(pytestconfig, Registry(extra_args=["--var", "AUTH_ANONYMOUS:[]"], ready_status=500))


def answers(url: str) -> list[tuple[int, str]]:
    with requests.Session() as s:
        s.trust_env = False
        return [(r.status_code, r.text) for r in (s.get(url + p, timeout=30) for p in PATHS)]


def test_a_junk_number_is_refused_on_every_request_naming_the_var(junk_number):
    expected = ('edge-registry is misconfigured: MAX_REQUEST_BODY_MB: "100MB" is not a whole number of '
                'megabytes; set your plan\'s request body limit')
    for status, text in answers(junk_number.url):
        assert status == 500
        assert text.startswith(expected), text
    deadline = time.monotonic() + 10
    while "refusing to serve" not in junk_number.log_tail(400) and time.monotonic() < deadline:
        time.sleep(0.2)
    logged = junk_number.log_tail(400).count("refusing to serve: edge-registry is misconfigured: MAX_REQUEST_BODY_MB")
    assert logged == 1, f"logged once per isolate, not per request ({logged} times)"


def test_access_control_without_a_signing_key_is_still_refused(no_signing_key):
    for status, text in answers(no_signing_key.url):
        assert status == 500
        assert text.startswith("edge-registry is misconfigured: AUTH_TOKEN_SECRET: must be set"), text


def start_dev(state: str, *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, PORT=str(port), STATE_DIR=state, EDGE_REGISTRY_SKIP_BUILD="1",
               WRANGLER_SEND_METRICS="false", NO_COLOR="1", FORCE_COLOR="0", CI="1")
    proc = subprocess.Popen(
        [str(REPO_ROOT / "scripts" / "dev"), *args, "--inspector-port", str(free_port())], cwd=REPO_ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    return proc, port


def wait_port_closed(port: int) -> None:
    deadline = time.monotonic() + 30
    while port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not port_open(port), "wrangler dev still listens after scripts/dev ended"


def test_scripts_dev_stops_with_the_line_that_names_the_var():
    with tempfile.TemporaryDirectory(prefix="edge-registry-dev-") as state:
        proc, port = start_dev(state, "--var", "UPLOAD_EXPIRY_SECONDS:soon")
        try:
            output, _ = proc.communicate(timeout=DEV_TIMEOUT)
        finally:
            stop_process_group(proc)
        line = 'scripts/dev: edge-registry is misconfigured: UPLOAD_EXPIRY_SECONDS: "soon" is not a whole number'
        assert proc.returncode == 1, output[-4000:]
        assert any(l.startswith(line) for l in output.splitlines()), output[-4000:]
        wait_port_closed(port)


def test_scripts_dev_serves_valid_settings_until_interrupted():
    with tempfile.TemporaryDirectory(prefix="edge-registry-dev-") as state:
        proc, port = start_dev(state)
        try:
            url = f"http://127.0.0.1:{port}/v2/"
            deadline = time.monotonic() + DEV_TIMEOUT
            status = None
            with requests.Session() as s:
                s.trust_env = False
                while status != 200 and time.monotonic() < deadline and proc.poll() is None:
                    try:
                        status = s.get(url, timeout=5).status_code
                    except requests.RequestException:
                        time.sleep(0.5)
                assert status == 200, f"scripts/dev did not serve (exit {proc.poll()})"
                time.sleep(3)  # past the settings check: still serving
                assert proc.poll() is None and s.get(url, timeout=5).status_code == 200
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole group
            proc.communicate(timeout=60)
        finally:
            stop_process_group(proc)
        wait_port_closed(port)
