"""The bench's report: medians per row, the printed table and the JSON file.

`summarize` turns every measurement into one row per workload, client and op (medians over
the runs; `x_raw` against the raw baseline of the same workload, and for chunked pushes and
their pulls also against the raw multipart rows). `print_report` prints the header (commit,
load, workerd pids, warnings) and the table; `write_json` saves everything. The columns are
explained in README.md, "Benchmark".
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
from . import REPO, MiB
from .clients import PATCH_CHUNK

ROW_ORDER = [("raw", "put"), ("raw", "get"), ("raw", "put-multipart"), ("raw", "get-multipart"),
             ("skopeo", "push"), ("skopeo", "pull"),
             ("python", "push-chunked"), ("python", "push-mono"), ("python", "pull")]


def summarize(results: list, workloads: list[str]) -> list[dict]:
    rows = []
    for name in workloads:
        med = {}
        for client, op in ROW_ORDER:
            ok = [r for r in results if r["workload"] == name and r["client"] == client
                  and r["op"] == op and "error" not in r]
            errors = sum(1 for r in results if r["workload"] == name and r["client"] == client
                         and r["op"] == op and "error" in r)
            row = {"workload": name, "client": client, "op": op, "runs": len(ok), "errors": errors}
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
            raw_op = "get" if row["op"] in ("get", "pull") else "put"
            if row["client"] == "raw" and row["op"].endswith("-multipart"):
                raw_op = row["op"]  # its own baseline: shown for the multipart columns below
            if ("raw", raw_op) in med:
                row["x_raw"] = row["seconds"] / med[("raw", raw_op)]
            # Blobs pushed in numbered chunks are stored as multipart objects: the limit for
            # writing them is a raw multipart put, and for reading them back a raw multipart get.
            multipart_op = {"push-chunked": "put-multipart", "pull": "get-multipart"}.get(row["op"])
            if row["client"] == "python" and ("raw", multipart_op) in med:
                row["x_raw_multipart"] = row["seconds"] / med[("raw", multipart_op)]
                row["raw_multipart_op"] = multipart_op
    return rows


def short_error(text: str) -> str:
    """The telling part of an error: an HTTP status or skopeo's message, on one line."""
    m = re.search(r"(-> \d{3}, expected[^:]*|status: \d{3}[^\"]*|skipped: .*|timed out.*)", text)
    return " ".join((m.group(1) if m else text).split())[:90]


def print_table(rows: list[dict]) -> None:
    head = f"{'workload':<14} {'client':<7} {'op':<13} {'s':>9} {'MiB/s':>8} {'x raw':>7} " \
           f"{'RSS+ MiB':>9} {'cpu s/MiB':>10}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "seconds" not in r:
            first = r.get("first_error", "")
            if first.startswith("skipped: ") and "failed" not in first:
                print(f"{r['workload']:<14} {r['client']:<7} {r['op']:<13} {'-':>9}  {first}")
            else:
                print(f"{r['workload']:<14} {r['client']:<7} {r['op']:<13} {'ERROR':>9}  "
                      f"({r['errors']} failed runs) {short_error(first)}")
            continue
        x = f"{r['x_raw']:.2f}" if "x_raw" in r else "-"
        note = f"  ({r['errors']} failed)" if r["errors"] else ""
        if "x_raw_multipart" in r:
            note += f"  ({r['x_raw_multipart']:.2f} x raw {r['raw_multipart_op']})"
        print(f"{r['workload']:<14} {r['client']:<7} {r['op']:<13} {r['seconds']:9.3f} "
              f"{r['mib_s']:8.1f} {x:>7} {r['rss_growth_mib']:9.1f} {r['cpu_s_per_mib']:10.5f}{note}")


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
        "summary": rows, "measurements": results}, indent=2))
