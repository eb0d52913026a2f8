"""scripts/bench's own pieces (scripts/benchlib), which are built on this suite's helpers:
its images, its raw, python and skopeo-layout clients, and its report. Small sizes: what
is checked is that the bench still measures what it says when a helper here changes, not
speed. The raw client runs against a stdlib PUT/GET server standing in for the baseline
worker; the python client against the session's registry."""

from __future__ import annotations

import sys
import threading
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import REPO_ROOT
from helpers import MiB, random_repo
from layout import layout_manifest_digest, read_layout_blobs

sys.path.insert(0, str(REPO_ROOT / "scripts"))

from benchlib import BenchError  # noqa: E402
from benchlib import clients, report  # noqa: E402
from benchlib.workloads import Image  # noqa: E402


@pytest.fixture
def image(tmp_path):
    return Image("small", [3 * MiB + 5, 1000], tmp_path / "data")


def test_bench_image_restamps_to_new_digests_and_writes_a_layout_skopeo_reads(image, tmp_path):
    before = {b.digest for b in image.blobs} | {image.manifest_digest}
    sizes = [b.size for b in image.layers]
    image.stamp("again")
    after = {b.digest for b in image.blobs} | {image.manifest_digest}
    assert not before & after, "a re-stamped image must send only new digests"
    assert [b.size for b in image.layers] == sizes
    assert image.total_bytes == sum(sizes) + image.config.size + len(image.manifest)

    image.write_layout(tmp_path / "layout", "t")
    blobs = read_layout_blobs(tmp_path / "layout")  # verifies every blob's digest
    assert set(blobs) == after
    assert layout_manifest_digest(tmp_path / "layout", "t") == image.manifest_digest


class _PlainStore(BaseHTTPRequestHandler):
    """The baseline worker's contract: PUT /<key> stores the body (201), GET /<key> returns it."""

    store: dict = {}

    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        key = self.path.split("?", 1)[0]
        self.store[key] = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(201)

    def do_GET(self):
        body = self.store.get(self.path)
        if body is None:
            self._answer(404, b"not found")
        else:
            self._answer(200, body)


def test_bench_raw_client_round_trips_and_reports_a_status_it_did_not_expect(image):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PlainStore)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with closing(clients.client(f"http://127.0.0.1:{server.server_port}")) as raw:
            clients.raw_put(raw, image, "k", part_mib=clients.MULTIPART_PART_MIB)
            assert _PlainStore.store[f"/k/{image.layers[0].digest}"] == image.layers[0].path.read_bytes()
            clients.raw_get(raw, image, "k")
            with pytest.raises(BenchError) as missing:
                clients.raw_get(raw, image, "never-put")
    finally:
        server.shutdown()
    assert report.short_error(str(missing.value)) == "-> 404, expected (200,)"


def test_bench_python_client_pushes_chunked_and_mono_and_pulls_back(registry, image, monkeypatch):
    monkeypatch.setattr(clients, "PATCH_CHUNK", 1 * MiB)  # a 3 MiB layer: four PATCHes
    with closing(clients.client(registry.url)) as api:
        for mode in ("chunked", "mono"):
            repo = random_repo(f"bench-{mode}")
            image.stamp(mode)
            clients.py_push(api, image, repo, mode)
            clients.py_pull(api, image, repo)
        with pytest.raises(BenchError):
            clients.py_pull(api, image, random_repo("bench-never-pushed"))


def _measurement(client: str, op: str, seconds: float, run: int = 1, **extra) -> dict:
    return {"workload": "small", "client": client, "op": op, "run": run, "seconds": seconds,
            "rss_growth": 2 * MiB, "cpu_s": 0.5, "bytes": 10 * MiB, **extra}


def test_bench_report_takes_medians_against_raw_and_prints_every_row(capsys):
    results = [
        _measurement("raw", "put", 1.0), _measurement("raw", "put", 3.0, run=2),
        _measurement("raw", "put-multipart", 2.0),
        _measurement("python", "push-chunked", 4.0),
        {"workload": "small", "client": "skopeo", "op": "push", "run": 1,
         "error": "skipped: a 200 MiB body is over the registry's OCI-Chunk-Max-Length"},
        {"workload": "small", "client": "python", "op": "pull", "run": 1,
         "error": "BenchError: GET https://x/v2/r/manifests/t -> 503, expected (200,): b''"},
    ]
    rows = {(r["client"], r["op"]): r for r in report.summarize(results, ["small"])}
    assert [k for k in rows] == report.ROW_ORDER
    assert rows[("raw", "put")]["seconds"] == 2.0 and rows[("raw", "put")]["runs"] == 2
    chunked = rows[("python", "push-chunked")]
    assert chunked["x_raw"] == 2.0 and chunked["x_raw_multipart"] == 2.0
    assert chunked["mib_s"] == 2.5 and chunked["cpu_s_per_mib"] == 0.05
    assert rows[("python", "pull")]["errors"] == 1

    report.print_table(list(rows.values()))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["workload", "client", "op", "s", "MiB/s", "x", "raw", "RSS+",
                                "MiB", "cpu", "s/MiB"]
    assert len(lines) == 2 + len(report.ROW_ORDER)
    table = {tuple(line.split()[1:3]): line for line in lines[2:]}
    assert table[("python", "push-chunked")].endswith("(2.00 x raw put-multipart)")
    assert "  -  skipped: a 200 MiB body" in table[("skopeo", "push")]
    assert table[("python", "pull")].endswith("ERROR  (1 failed runs) -> 503, expected (200,)")
