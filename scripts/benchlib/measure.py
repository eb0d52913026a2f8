"""Measuring: the two `wrangler dev` instances, one measured operation, one workload's run.

`Instance` is a tests/e2e `WranglerDev` over HTTPS with its state and log under the temp
dir. `measure` runs one operation under an `RssSampler` of the instance's worker workerd
(wall clock, peak RSS over the RSS just before, CPU time), after SETTLE seconds of quiet.
`run_workload` times every row of one workload for one run: each push on new digests
(the image is re-stamped), each pull of what the push before it stored, and an operation
during which wrangler restarted workerd is measured again, at most MAX_ATTEMPTS times.
"""

from __future__ import annotations

import shutil
import time
from contextlib import closing
from pathlib import Path

import requests

from workerd_proc import RssSampler, WranglerDev

from . import REPO, MiB, BenchError, log
from .clients import MULTIPART_PART_MIB, Skopeo, client, py_pull, py_push, raw_get, raw_put
from .workloads import Image

READY_TIMEOUT = 180.0
SETTLE = 0.5  # seconds of quiet before each measured operation
MAX_ATTEMPTS = 3  # a measurement is taken again when wrangler restarted workerd during it
ERRORS = (BenchError, requests.RequestException, OSError)


class Instance(WranglerDev):
    """One `wrangler dev` over HTTPS with state and log under workdir/name."""

    def __init__(self, name: str, config: Path, workdir: Path, probe: str, env: dict, port: int,
                 inspector_port: int, extra_args: tuple = ()):
        self.dir = workdir / name
        super().__init__(name, config, self.dir / "state", self.dir / "wrangler.log", port,
                         inspector_port, repo=REPO, probe=probe, protocol="https", env=env,
                         extra_args=extra_args)
        self.max_body: int | None = None  # the registry's OCI-Chunk-Max-Length, if any

    def wait_ready(self) -> None:
        super().wait_ready(READY_TIMEOUT)

    def ensure_worker(self) -> bool:
        old = self.pid
        changed = super().ensure_worker()
        if changed:
            log(f"{self.name}: worker workerd changed {old} -> {self.pid}")
        return changed


def measure(inst: Instance, fn) -> dict:
    """Run fn once under an RssSampler of the instance's worker workerd; never raises ERRORS."""
    time.sleep(SETTLE)
    inst.ensure_worker()
    sm = RssSampler(inst.pid, inst.others)
    row: dict = {"worker_pid": inst.pid}
    try:
        with sm:
            fn()
    except ERRORS as exc:
        row["error"] = f"{exc.__class__.__name__}: {exc}"
    try:
        restarted = inst.ensure_worker() or sm.lost or not hasattr(sm, "seconds")
    except BenchError as exc:
        row.setdefault("error", str(exc))
        restarted = True
    row["worker_restarted"] = restarted
    if hasattr(sm, "seconds"):
        row.update({"seconds": sm.seconds, "rss_idle": sm.idle, "rss_peak": sm.peak,
                    "rss_growth": sm.growth, "cpu_s": sm.cpu, "other_workerd_cpu_s": sm.other_cpu,
                    "rss_samples": sm.samples})
    return row


def run_workload(img: Image, run: int, baseline: Instance, registry: Instance, skopeo: Skopeo,
                 tmp: Path, results: list) -> None:
    slug = img.name.lower()
    state: dict = {}

    def record(client_: str, op: str, inst: Instance, prepare, needs: dict | None = None,
               skip: str = "") -> dict:
        """prepare(attempt) sets up (outside the timing) and returns the callable to time."""
        row = {"workload": img.name, "client": client_, "op": op, "run": run}
        if skip:
            row.update(error=f"skipped: {skip}", attempts=0)
        elif needs is not None and "error" in needs:
            row.update(error=f"skipped: {needs['client']} {needs['op']} failed", attempts=0)
        else:
            for attempt in range(1, MAX_ATTEMPTS + 1):
                fn = prepare(attempt)
                got = measure(inst, fn)
                if not got["worker_restarted"] or attempt == MAX_ATTEMPTS:
                    break
                log(f"run {run} {img.name} {client_} {op}: the worker's workerd restarted during "
                    f"the measurement (wrangler reload?): measuring again")
            row.update(got, attempts=attempt, bytes=img.total_bytes)
        if "error" in row:
            what = row["error"] if row["error"].startswith("skipped: ") else f"ERROR {row['error']}"
            log(f"run {run} {img.name} {client_} {op}: {what}")
        else:
            row["mib_s"] = img.total_bytes / MiB / row["seconds"]
            log(f"run {run} {img.name:>14} {client_:>6} {op:<13} {row['seconds']:8.3f} s "
                f"{row['mib_s']:8.1f} MiB/s  RSS+ {row['rss_growth'] / MiB:7.1f} MiB  "
                f"cpu {row['cpu_s']:.2f} s"
                + ("  (worker restarted during it!)" if row["worker_restarted"] else ""))
        results.append(row)
        return row

    layout, pulled = tmp / "layout", tmp / "pulled"

    with closing(client(baseline.url)) as raw:
        def raw_put_prep(attempt):
            img.stamp(f"run{run}-raw-{attempt}")
            key = state["raw"] = f"{slug}-{run}-{attempt}"
            return lambda: raw_put(raw, img, key)
        put = record("raw", "put", baseline, raw_put_prep)
        record("raw", "get", baseline, lambda attempt: lambda: raw_get(raw, img, state["raw"]), put)

        def raw_put_multipart_prep(attempt):
            img.stamp(f"run{run}-raw-mp-{attempt}")
            key = state["raw-mp"] = f"{slug}-{run}-{attempt}-mp"
            return lambda: raw_put(raw, img, key, part_mib=MULTIPART_PART_MIB)
        put = record("raw", "put-multipart", baseline, raw_put_multipart_prep)
        record("raw", "get-multipart", baseline,
               lambda attempt: lambda: raw_get(raw, img, state["raw-mp"]), put)

    def skopeo_push_prep(attempt):
        img.stamp(f"run{run}-skopeo-{attempt}")
        img.write_layout(layout, "t")
        ref = state["skopeo"] = f"docker://{registry.host}/bench/{slug}-{run}-{attempt}-skopeo:t"
        # --preserve-digests: the layers go as they are, as already-compressed layers do;
        # without it skopeo gzips these uncompressed ones itself and the row times its gzip.
        return lambda: skopeo.copy("--preserve-digests", "--dest-tls-verify=false", f"oci:{layout}:t", ref)

    def skopeo_pull_prep(attempt):
        shutil.rmtree(pulled, ignore_errors=True)
        return lambda: skopeo.copy("--preserve-digests", "--src-tls-verify=false", state["skopeo"],
                                   f"oci:{pulled}:t")

    biggest = max(b.size for b in img.blobs)
    too_big = registry.max_body is not None and biggest > registry.max_body
    over_limit = (f"a {biggest / MiB:.0f} MiB body is over the registry's OCI-Chunk-Max-Length "
                  f"({registry.max_body / MiB:.0f} MiB)" if too_big else "")
    # skopeo sends each layer in one request (with --preserve-digests, with its length).
    push = record("skopeo", "push", registry, skopeo_push_prep, skip=over_limit)
    shutil.rmtree(layout, ignore_errors=True)
    record("skopeo", "pull", registry, skopeo_pull_prep, push)
    shutil.rmtree(pulled, ignore_errors=True)

    with closing(client(registry.url)) as api:
        def py_push_prep(mode):
            def prep(attempt):
                img.stamp(f"run{run}-{mode}-{attempt}")
                repo = state[mode] = f"bench/{slug}-{run}-{attempt}-{mode}"
                return lambda: py_push(api, img, repo, mode)
            return prep
        push = record("python", "push-chunked", registry, py_push_prep("chunked"))
        record("python", "pull", registry,
               lambda attempt: lambda: py_pull(api, img, state["chunked"]), push)
        record("python", "push-mono", registry, py_push_prep("mono"), skip=over_limit)
