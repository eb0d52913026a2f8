"""The bench's report: medians per row, the printed table and the JSON file.

`summarize` turns every measurement into one row per workload, client and op (medians over
the runs; `x_raw` against the raw baseline of the same workload, and for the pushes stored
as multipart objects and their pulls also against the raw multipart rows). `notes` reads
two answers off those rows, printed under the table: docker's road against its physical
limit (and its CPU per MiB against the wasm road's), and whether a slow read of a multipart
object is the local R2 simulator's or ours. `print_report` prints the header (commit, load,
workerd pids, warnings), the table and the notes; `write_json` saves everything. The
columns are explained in README.md, "Benchmark".
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
from . import REPO, MiB
from .clients import PATCH_CHUNK
from .workloads import WORKLOADS

WORKLOAD_SIZES = dict(WORKLOADS)

ROW_ORDER = [("raw", "put"), ("raw", "get"), ("raw", "put-multipart"), ("raw", "get-multipart"),
             ("raw", "put-multipart-chunked"), ("raw", "put-multipart-chunked-hashed"),
             ("skopeo", "push"), ("skopeo", "pull"),
             ("python", "push-chunked"), ("python", "pull"),
             ("python", "push-docker-road"), ("python", "pull-docker-road"), ("python", "push-mono"),
             ("docker", "push"), ("docker", "pull")]
# The python rows whose blobs are stored as multipart objects (numbered chunks, or a body of
# unknown length), with the raw row that is their physical limit.
MULTIPART_LIMIT = {"push-chunked": "put-multipart", "pull": "get-multipart",
                   "push-docker-road": "put-multipart", "pull-docker-road": "get-multipart"}
DOCKER_ROAD_TARGET = 0.9  # issue 11: docker's road at >= 0.9 of raw put-multipart's throughput
SLOWER = 1.25  # a ratio over this is "slower" in the notes
# The registry copies a blob up to this size into the Workers cache (a tee of the R2 stream)
# when it first serves it: src/edge/cache.rs, CACHE_MAX_BYTES. A first pull pays for that.
CACHE_MAX_BYTES = 32 * MiB
COUNTED = ("proxy_503s", "docker_retries")  # summed over a row's runs


def summarize(results: list, workloads: list[str]) -> list[dict]:
    rows = []
    for name in workloads:
        med = {}
        for client, op in ROW_ORDER:
            ok = [r for r in results if r["workload"] == name and r["client"] == client
                  and r["op"] == op and "error" not in r]
            errors = sum(1 for r in results if r["workload"] == name and r["client"] == client
                         and r["op"] == op and "error" in r)
            row = {"workload": name, "client": client, "op": op, "runs": len(ok), "errors": errors,
                   **{key: sum(r.get(key, 0) for r in results if r["workload"] == name
                               and r["client"] == client and r["op"] == op) for key in COUNTED}}
            first = next((r["error"] for r in results if r["workload"] == name
                          and r["client"] == client and r["op"] == op and "error" in r), None)
            if first:
                row["first_error"] = first
            if ok:
                nbytes = ok[0]["bytes"]
                row.update({
                    "seconds": statistics.median(r["seconds"] for r in ok),
                    "rss_growth_mib": statistics.median(r["rss_growth"] for r in ok) / MiB,
                    "rss_growth_max_mib": max(r["rss_growth"] for r in ok) / MiB,
                    "cpu_s_per_mib": statistics.median(r["cpu_s"] for r in ok) / (nbytes / MiB),
                    "bytes": nbytes,
                })
                row["mib_s"] = nbytes / MiB / row["seconds"]
                med[(client, op)] = row["seconds"]
            rows.append(row)
        for row in rows:
            if row["workload"] != name or "seconds" not in row:
                continue
            raw_op = "get" if row["op"] == "get" or row["op"].startswith("pull") else "put"
            if row["client"] == "raw" and "-multipart" in row["op"]:
                raw_op = row["op"]  # its own baseline: shown for the multipart columns below
            if ("raw", raw_op) in med:
                row["x_raw"] = row["seconds"] / med[("raw", raw_op)]
            # Blobs pushed in numbered chunks or with no length are stored as multipart objects:
            # the limit for writing them is a raw multipart put, for reading them a raw multipart get.
            multipart_op = MULTIPART_LIMIT.get(row["op"])
            if row["client"] == "python" and ("raw", multipart_op) in med:
                row["x_raw_multipart"] = row["seconds"] / med[("raw", multipart_op)]
                row["raw_multipart_op"] = multipart_op
    return rows


def short_error(text: str) -> str:
    """The telling part of an error: an HTTP status or skopeo's message, on one line."""
    m = re.search(r"(-> \d{3}, expected[^:]*|status: \d{3}[^\"]*|skipped: .*|timed out.*)", text)
    return " ".join((m.group(1) if m else text).split())[:90]


def print_table(rows: list[dict]) -> None:
    head = f"{'workload':<14} {'client':<7} {'op':<21} {'s':>9} {'MiB/s':>8} {'x raw':>7} " \
           f"{'RSS+ MiB':>9} {'cpu s/MiB':>10}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "seconds" not in r:
            first = r.get("first_error", "")
            if first.startswith("skipped: ") and "failed" not in first:
                print(f"{r['workload']:<14} {r['client']:<7} {r['op']:<21} {'-':>9}  {first}")
            else:
                print(f"{r['workload']:<14} {r['client']:<7} {r['op']:<21} {'ERROR':>9}  "
                      f"({r['errors']} failed runs"
                      + (f", {r['proxy_503s']} proxy 503s" if r.get("proxy_503s") else "")
                      + f") {short_error(first)}")
            continue
        x = f"{r['x_raw']:.2f}" if "x_raw" in r else "-"
        note = f"  ({r['errors']} failed)" if r["errors"] else ""
        if r.get("proxy_503s"):
            note += f"  ({r['proxy_503s']} proxy 503s, measured again)"
        if r.get("docker_retries"):
            note += f"  (docker retried {r['docker_retries']} layer transfers)"
        if "x_raw_multipart" in r:
            note += f"  ({r['x_raw_multipart']:.2f} x raw {r['raw_multipart_op']})"
        print(f"{r['workload']:<14} {r['client']:<7} {r['op']:<21} {r['seconds']:9.3f} "
              f"{r['mib_s']:8.1f} {x:>7} {r['rss_growth_mib']:9.1f} {r['cpu_s_per_mib']:10.5f}{note}")


def notes(rows: list[dict]) -> list[str]:
    """The lines under the table, per workload: docker's road against raw put-multipart
    (throughput ratio, the issue's target) and raw put, its pull against raw get-multipart,
    CPU per MiB against the wasm road (push-chunked); and multipart reads: raw get, raw
    get-multipart and the pull of a chunked push, side by side, with whose the slowness is."""
    out = []
    for name in dict.fromkeys(r["workload"] for r in rows):
        got = {(r["client"], r["op"]): r for r in rows if r["workload"] == name and "seconds" in r}

        def s(op, client="raw"):
            return got[(client, op)]["seconds"] if (client, op) in got else None

        road = got.get(("python", "push-docker-road"))
        if road and s("put-multipart"):
            line = (f"{name}: docker's road (push-docker-road) {road['seconds']:.3f} s: throughput "
                    f"{s('put-multipart') / road['seconds']:.2f} of raw put-multipart "
                    f"(target >= {DOCKER_ROAD_TARGET:.2f}: "
                    f"{'met' if s('put-multipart') / road['seconds'] >= DOCKER_ROAD_TARGET else 'NOT met'})")
            if s("put-multipart-chunked"):
                line += f", {s('put-multipart-chunked') / road['seconds']:.2f} of raw put-multipart-chunked"
            if s("put-multipart-chunked-hashed"):
                line += (f", {s('put-multipart-chunked-hashed') / road['seconds']:.2f} of raw "
                         "put-multipart-chunked-hashed (the same with the runtime's hash)")
            if s("put"):
                line += f", {s('put') / road['seconds']:.2f} of raw put"
            pulled = got.get(("python", "pull-docker-road"))
            if pulled and s("get-multipart"):
                line += f"; its pull {pulled['seconds'] / s('get-multipart'):.2f} x raw get-multipart's time"
            wasm = got.get(("python", "push-chunked"))
            if wasm:
                line += (f"; cpu {road['cpu_s_per_mib']:.5f} s/MiB against the wasm road's (push-chunked) "
                         f"{wasm['cpu_s_per_mib']:.5f}")
                if wasm["cpu_s_per_mib"] > 0:
                    line += f" ({road['cpu_s_per_mib'] / wasm['cpu_s_per_mib']:.2f} x)"
            out.append(line)
        if s("get") and s("get-multipart") and s("pull", "python"):
            sim, ours = s("get-multipart") / s("get"), s("pull", "python") / s("get-multipart")
            verdict = [f"the local R2 simulator reads a multipart object {sim:.1f} x slower than one object"
                       if sim > SLOWER else "the local R2 simulator reads multipart objects as fast as single ones"]
            verdict.append(f"our pull is {ours:.2f} x the raw multipart read"
                           + (": the extra is ours" if ours > SLOWER else ": the rest is not ours"))
            cached = [n for n in WORKLOAD_SIZES.get(name, []) if n <= CACHE_MAX_BYTES]
            if cached:
                verdict.append(f"{len(cached)} of its layers are at most {CACHE_MAX_BYTES // MiB} MiB, so "
                               f"this first pull also copies them into the Workers cache")
            out.append(f"{name}: multipart reads: raw get {s('get'):.3f} s, raw get-multipart "
                       f"{s('get-multipart'):.3f} s, python pull of the chunked push "
                       f"{s('pull', 'python'):.3f} s: " + "; ".join(verdict))
    return out


def git_info() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    dirty = [line for line in git("status", "--porcelain").splitlines() if line]
    return {"commit": git("rev-parse", "HEAD"), "describe": git("log", "-1", "--format=%h %s"),
            "dirty_files": len(dirty)}


def loads(values) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def print_report(info: dict, runs: int, load_start, load_end, baseline, registry,
                 build_changed: bool, results: list, rows: list[dict]) -> None:
    """The header (commit, runs, load, workerd pids, warnings), then the table."""
    print()
    print(f"edge-registry benchmark: commit {info['commit'][:12]} ({info['describe']})"
          + (f", {info['dirty_files']} uncommitted files" if info["dirty_files"] else ""))
    print(f"median of {runs} run(s); {os.cpu_count()} cpus; load average "
          f"start {loads(load_start)}, end {loads(load_end)}")
    print(f"worker workerd: baseline pid {baseline.pid}, registry pid {registry.pid} ({registry.how})")
    if build_changed:
        print("WARNING: build/ changed during the run (wrangler reloads it): numbers may mix builds")
    restarts = sum(1 for r in results if r.get("worker_restarted"))
    if restarts:
        print(f"WARNING: the worker's workerd process changed during {restarts} measurement(s)")
    print()
    print_table(rows)
    lines = notes(rows)
    if lines:
        print()
        for line in lines:
            print(line)


def write_json(args, info: dict, load_start, load_end, instances: list, build_changed: bool,
               rows: list[dict], results: list) -> None:
    """Every measurement (all runs) and the summary, to the --json file."""
    args.json.write_text(json.dumps({
        "git": info, "build_changed_during_run": build_changed, "runs": args.runs,
        "quick": args.quick, "cpus": os.cpu_count(),
        "loadavg_start": load_start, "loadavg_end": load_end,
        "workloads": {n: s for n, s in args.workloads}, "patch_chunk": PATCH_CHUNK,
        "instances": {i.name: {"worker_pid": i.pid, "other_workerd": i.others, "how": i.how}
                      for i in instances},
        "summary": rows, "notes": notes(rows), "measurements": results}, indent=2))
