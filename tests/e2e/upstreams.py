"""Local upstream registries for the pull-through cache's e2e tests (there is no internet):

- `Distribution`: Debian's `docker-registry` (CNCF distribution 2.8) on a free port, with
  its own storage directory; `stop()` and `start()` take it down and back on the same port.
- `Stub`: a small HTTP proxy in front of a registry that can be told to answer every
  request with a status (`429`, `503`, ...) or to serve one blob corrupted (same length,
  first byte changed), and that records the requests it forwards.
- `push_image`: pushes an image (a config and tar layers, so that docker can extract
  it) with the API calls distribution 2.8 takes (it has no monolithic POST).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from conftest import free_port
from helpers import (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Client, config_bytes, descriptor, image_manifest,
                     push_blob, push_manifest, random_bytes, sha256_digest)

START_TIMEOUT = 30.0


class Distribution:
    def __init__(self, binary: str):
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="e2e-distribution-"))
        self.config = self.root / "config.yml"
        self.config.write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n")
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        log = open(self.root / "log", "ab")
        self.proc = subprocess.Popen([self.binary, "serve", str(self.config)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/v2/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"distribution did not start: {(self.root / 'log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Stub:
    """`mode`: None forwards; a number answers every request with that status.
    `corrupt`: a digest whose blob is served with its first byte changed.
    `slow`: a digest whose blob is answered only after a second."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.mode: int | None = None
        self.corrupt: str | None = None
        self.slow: str | None = None
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stub._answer(self, "GET")

            def do_HEAD(self):
                stub._answer(self, "HEAD")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take_requests(self) -> list[str]:
        taken, self.requests = self.requests, []
        return taken

    def _answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        self.requests.append(f"{method} {handler.path}")
        if self.mode is not None:
            body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"stub"}]}'
            handler.send_response(self.mode)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if method == "GET":
                handler.wfile.write(body)
            return
        if self.slow and handler.path.endswith(f"/blobs/{self.slow}"):
            time.sleep(1.0)
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("accept", "authorization")}
        upstream = requests.request(method, self.target + handler.path, headers=headers, timeout=60,
                                    allow_redirects=True)
        body = upstream.content
        if self.corrupt and handler.path.endswith(f"/blobs/{self.corrupt}") and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        handler.send_response(upstream.status_code)
        for name in ("Content-Type", "Docker-Content-Digest", "WWW-Authenticate"):
            if name in upstream.headers:
                handler.send_header(name, upstream.headers[name])
        length = upstream.headers.get("Content-Length", str(len(body))) if method == "HEAD" else str(len(body))
        handler.send_header("Content-Length", length)
        handler.end_headers()
        if method == "GET":
            handler.wfile.write(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def tar_layer(name: str, data: bytes) -> bytes:
    """An uncompressed tar holding one file, as an image layer."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def push_image(client: Client, repo: str, tag: str, layer_sizes=(1024, 2048, 4096)) -> dict:
    """Pushes a config and a tar layer per size (random files) under `tag`."""
    layers = [tar_layer(f"file{i}.bin", random_bytes(size)) for i, size in enumerate(layer_sizes)]
    cfg = config_bytes("amd64", layers)
    for blob in [cfg, *layers]:
        push_blob(client, repo, blob, mode="post-put")
    body = image_manifest(descriptor(OCI_CONFIG, cfg), [descriptor(OCI_LAYER, x) for x in layers])
    push_manifest(client, repo, tag, body, OCI_MANIFEST)
    return {"digest": sha256_digest(body), "manifest": body, "layers": layers,
            "blobs": {sha256_digest(b): b for b in [cfg, *layers]}}
