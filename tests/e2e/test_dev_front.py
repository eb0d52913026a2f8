"""`scripts/dev`'s front (scripts/plain-front.mjs): docker, podman and skopeo try HTTPS
first on a registry without TLS and fall back to HTTP only when that fails; workerd never
answers a TLS hello on its HTTP port, so each command used to wait ~10 s for a timeout. The
front on the dev port answers a TLS hello with a plain-HTTP 400 at once and splices plain
HTTP to wrangler: the registry is served through it (skopeo reaches it with
`--tls-verify=false`), a request whose client half-closes still gets its answer, a TLS hello
is refused rather than left hanging, and Ctrl-C stops the front with wrangler.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from test_settings import DEV_TIMEOUT, start_dev, wait_port_closed
from workerd_proc import stop_process_group

# A TLS record header (handshake, TLS 1.0 framing) and the start of a ClientHello.
TLS_HELLO = bytes([0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03]) + bytes(32)


SERVING = re.compile(r"wrangler listens on (\d+) behind a front")


def read_lines(proc: subprocess.Popen) -> tuple[list[str], threading.Thread]:
    """scripts/dev's output, collected as it comes."""
    lines: list[str] = []

    def pump():
        for line in proc.stdout:
            lines.append(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def wait_served(proc: subprocess.Popen, lines: list[str]) -> int:
    """Waits until scripts/dev says it serves (past its settings check): wrangler's port."""
    deadline = time.monotonic() + DEV_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        for line in list(lines):
            if found := SERVING.search(line):
                return int(found.group(1))
        time.sleep(0.5)
    pytest.fail(f"scripts/dev did not serve (exit {proc.poll()}):\n{''.join(lines)[-3000:]}")


def tls_hello_answer(port: int) -> bytes | None:
    """What the dev port answers a TLS hello with before it closes the connection, None
    when it leaves the hello hanging for 5 s (what workerd alone does)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(TLS_HELLO)
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            return None
        return answer


def test_scripts_dev_refuses_tls_at_once_and_serves_http_through_its_front():
    with tempfile.TemporaryDirectory(prefix="edge-registry-dev-") as state:
        proc, port = start_dev(state)
        lines, reader = read_lines(proc)
        try:
            inner = wait_served(proc, lines)
            # A plain-HTTP answer, which Go clients (docker) report as "server gave HTTP
            # response to HTTPS client" and fall back on.
            answer = tls_hello_answer(port)
            assert answer is not None, "the dev port left a TLS hello hanging"
            assert answer.startswith(b"HTTP/1.1 400 "), answer
            # A client that ends its side once the request is sent still gets the answer.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                raw.shutdown(socket.SHUT_WR)
                answer = b""
                while chunk := raw.recv(4096):
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 200 "), answer
            # Plain HTTP on the same port after a refused TLS attempt: the fallback works.
            with requests.Session() as s:
                s.trust_env = False
                resp = s.get(f"http://127.0.0.1:{port}/v2/_catalog", timeout=10)
                assert resp.status_code == 200 and resp.json() == {"repositories": []}, resp.text
            if shutil.which("skopeo"):
                run = subprocess.run(
                    ["skopeo", "inspect", "--tls-verify=false", f"docker://127.0.0.1:{port}/none/app:1"],
                    capture_output=True, text=True, timeout=60, env=dict(os.environ, NO_PROXY="*"))
                assert run.returncode != 0 and "manifest unknown" in run.stderr, run.stderr
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole group
            proc.wait(timeout=60)
        finally:
            stop_process_group(proc)
            reader.join(timeout=10)
        wait_port_closed(port)
        wait_port_closed(inner)
