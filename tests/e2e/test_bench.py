"""scripts/bench's own pieces (scripts/benchlib), which are built on this suite's helpers:
its images, its raw, python and skopeo-layout clients, and its report, then the whole
`scripts/bench` on its 1 MiB workload, once. Small sizes: what is checked is that the bench
still measures what it says when a helper here changes, not speed. The raw client runs
against a stdlib PUT/GET server standing in for the baseline worker; the python client
against the session's registry; the whole bench against this tree's build/ (its own two
`wrangler dev` and, where docker is installed and this is root, its own dockerd)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clientrun import require
from conftest import REPO_ROOT
from helpers import MiB, random_repo
from layout import layout_manifest_digest, read_layout_blobs

sys.path.insert(0, str(REPO_ROOT / "scripts"))

from benchlib import BenchError  # noqa: E402
from benchlib import clients, report  # noqa: E402
from benchlib.docker_client import why_unavailable  # noqa: E402
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
    framing: dict = {}  # key -> (Content-Length, Transfer-Encoding) of its PUT

    def log_message(self, *args):
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") != "chunked":
            return self.rfile.read(int(self.headers["Content-Length"]))
        body = b""
        while size := int(self.rfile.readline().split(b";")[0], 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return body

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        key = self.path.split("?", 1)[0]
        self.framing[key] = (self.headers.get("Content-Length"), self.headers.get("Transfer-Encoding"))
        self.store[key] = self._read_body()
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
            layer = f"/k/{image.layers[0].digest}"
            assert _PlainStore.store[layer] == image.layers[0].path.read_bytes()
            assert _PlainStore.framing[layer] == (str(image.layers[0].size), None)
            clients.raw_get(raw, image, "k")
            # As docker sends a layer: chunked, no length; the same bytes arrive.
            clients.raw_put(raw, image, "c", part_mib=clients.MULTIPART_PART_MIB, chunked=True)
            layer = f"/c/{image.layers[0].digest}"
            assert _PlainStore.framing[layer] == (None, "chunked")
            clients.raw_get(raw, image, "c")
            with pytest.raises(BenchError) as missing:
                clients.raw_get(raw, image, "never-put")
    finally:
        server.shutdown()
    assert report.short_error(str(missing.value)) == "-> 404, expected (200,)"


def test_bench_python_client_pushes_on_each_road_and_pulls_back(registry, image, monkeypatch):
    monkeypatch.setattr(clients, "PATCH_CHUNK", 1 * MiB)  # a 3 MiB layer: four PATCHes
    with closing(clients.client(registry.url)) as api:
        sent = []
        api.session.hooks["response"].append(lambda resp, *a, **kw: sent.append(resp.request))
        for mode in clients.PUSH_MODES:
            repo = random_repo(f"bench-{mode}")
            image.stamp(mode)
            del sent[:]
            clients.py_push(api, image, repo, mode)
            patches = [r for r in sent if r.method == "PATCH"]
            if mode == "docker-road":  # one PATCH per blob, unsized, chunked; an empty PUT
                assert len(patches) == len(image.blobs)
                assert all(r.headers.get("Transfer-Encoding") == "chunked"
                           and "Content-Length" not in r.headers for r in patches)
                assert {r.headers["Content-Length"] for r in sent if r.method == "PUT"
                        and "/blobs/uploads/" in r.url} == {"0"}
            elif mode == "chunked":  # numbered: four ranged PATCHes for the 3 MiB layer, one
                assert len(patches) == 4 + 1 + 1  # for the small layer and one for the config
                assert all("Content-Range" in r.headers and "Content-Length" in r.headers for r in patches)
            else:
                assert patches == []
            clients.py_pull(api, image, repo)
        with pytest.raises(BenchError):
            clients.py_pull(api, image, random_repo("bench-never-pushed"))
        with pytest.raises(ValueError):
            clients.py_push(api, image, random_repo("bench-bad-mode"), "sideways")


def _measurement(client: str, op: str, seconds: float, run: int = 1, **extra) -> dict:
    return {"workload": "small", "client": client, "op": op, "run": run, "seconds": seconds,
            "rss_growth": 2 * MiB, "cpu_s": 0.5, "bytes": 10 * MiB, **extra}


def test_bench_report_takes_medians_against_raw_and_prints_every_row(capsys):
    results = [
        _measurement("raw", "put", 1.0), _measurement("raw", "put", 3.0, run=2),
        _measurement("raw", "put-multipart", 2.0),
        _measurement("python", "push-chunked", 4.0, proxy_503s=2),
        _measurement("docker", "push", 3.0, docker_retries=1),
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
    assert table[("python", "push-chunked")].endswith(
        "(2 proxy 503s, measured again)  (2.00 x raw put-multipart)")
    assert table[("docker", "push")].endswith("  (docker retried 1 layer transfers)")
    assert "  -  skipped: a 200 MiB body" in table[("skopeo", "push")]
    assert table[("python", "pull")].endswith("ERROR  (1 failed runs) -> 503, expected (200,)")


def test_bench_notes_answer_docker_road_against_its_limit_and_whose_multipart_reads_are_slow():
    results = [
        _measurement("raw", "put", 1.0), _measurement("raw", "get", 0.5),
        _measurement("raw", "put-multipart", 2.0), _measurement("raw", "get-multipart", 2.0),
        _measurement("raw", "put-multipart-chunked", 2.5),
        _measurement("python", "push-chunked", 4.0, cpu_s=1.0),
        _measurement("python", "pull", 2.2),
        _measurement("python", "push-docker-road", 2.0, cpu_s=0.25),
        _measurement("python", "pull-docker-road", 3.0),
    ]
    rows = report.summarize(results, ["small"])
    road = next(r for r in rows if r["op"] == "push-docker-road")
    assert road["x_raw"] == 2.0 and road["x_raw_multipart"] == 1.0
    assert next(r for r in rows if r["op"] == "pull-docker-road")["x_raw_multipart"] == 1.5
    road_note, reads_note = report.notes(rows)
    assert "throughput 1.00 of raw put-multipart (target >= 0.90: met)" in road_note
    assert "1.25 of raw put-multipart-chunked, 0.50 of raw put" in road_note
    assert "its pull 1.50 x raw get-multipart's time" in road_note
    assert "cpu 0.02500 s/MiB against the wasm road's (push-chunked) 0.10000 (0.25 x)" in road_note
    assert "simulator reads a multipart object 4.0 x slower than one object" in reads_note
    assert "our pull is 1.10 x the raw multipart read: the rest is not ours" in reads_note

    slower = [r if r["op"] != "push-docker-road" else {**r, "seconds": 4.0} for r in results]
    assert "(target >= 0.90: NOT met)" in report.notes(report.summarize(slower, ["small"]))[0]


def test_bench_runs_whole_and_prints_every_row(tmp_path):
    """scripts/bench itself, one run of its 1 MiB workload against this tree's build/."""
    require("skopeo")
    docker_skip = why_unavailable()
    if docker_skip and os.environ.get("E2E_REQUIRE_CLIENTS"):
        pytest.fail(f"docker rows would be skipped ({docker_skip}) and E2E_REQUIRE_CLIENTS is set")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "bench"), "--skip-setup",
                           "--only", "1MiB", "--runs", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    said = f"scripts/bench -> {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, said
    summary = json.loads(out.read_text())["summary"]
    assert [(r["client"], r["op"]) for r in summary] == report.ROW_ORDER
    for row in summary:
        if row["client"] == "docker" and docker_skip:
            assert row["first_error"] == f"skipped: {docker_skip}", said
        else:
            assert row["runs"] == 1 and row["errors"] == 0, (row, said)
    lines = proc.stdout[proc.stdout.index("workload "):].splitlines()
    assert {tuple(line.split()[1:3]) for line in lines if line.startswith("1MiB ")} == set(report.ROW_ORDER)
    assert any(line.startswith("1MiB: docker's road (push-docker-road) ") for line in lines), said
    assert any(line.startswith("1MiB: multipart reads: raw get ") for line in lines), said
