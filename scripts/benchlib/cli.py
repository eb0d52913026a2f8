"""The bench's flags and its whole run (README.md, "Benchmark").

`main` parses the flags, runs `scripts/setup --test` and `scripts/build` (unless
--skip-setup), starts the baseline and the registry under `wrangler dev` on free ports,
writes the workloads, warms both workers up (which also reads the registry's
OCI-Chunk-Max-Length and lets each instance's worker workerd be found), starts a private
dockerd for the docker rows (unless --no-docker, or docker is not installed: those rows
are then skipped), measures every workload --runs times, and always stops both instances
and the dockerd (on errors, Ctrl-C and SIGTERM too) before it prints the report. Exit status: 0, 1 if a measurement failed, 2 on a
BenchError, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import closing
from pathlib import Path

from helpers import sha256_digest
from workerd_proc import free_ports, status_kib

from . import REPO, BenchError, log
from .clients import OCTET, Skopeo, check, client
from .docker_client import Docker
from .measure import Instance, WorkloadRun
from .report import git_info, loads, print_report, summarize, write_json
from .workloads import WORKLOADS, Image

DESCRIPTION = "Benchmark: the registry under `wrangler dev` against a raw R2 worker on the same machine."
SETUP_TIMEOUT = 3600.0


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per workload (median reported)")
    ap.add_argument("--quick", action="store_true", help="skip the 1 GiB workload")
    ap.add_argument("--json", type=Path, help="save every measurement and the summary here")
    ap.add_argument("--max-body-mb", type=int, default=None,
                    help="start the registry with MAX_REQUEST_BODY_MB set to this (0: no limit); "
                         "default: wrangler.toml's (100, the Free plan's)")
    ap.add_argument("--only", action="append", default=[],
                    help="run only this workload (repeatable): " + ", ".join(n for n, _ in WORKLOADS))
    ap.add_argument("--skip-setup", action="store_true",
                    help="do not run scripts/setup --test and scripts/build (use build/ as it is)")
    ap.add_argument("--no-docker", action="store_true",
                    help="skip the docker rows (no private dockerd is started)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, state, logs)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    args.workloads = [(n, s) for n, s in WORKLOADS
                      if (not args.only or n in args.only) and not (args.quick and n == "1GiB")]
    unknown = set(args.only) - {n for n, _ in WORKLOADS}
    if unknown:
        ap.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    if not Path("/proc/self/status").exists():
        ap.error("needs Linux /proc")
    return args


def build_fingerprint() -> tuple:
    out = []
    for name in ("index.js", "index_bg.wasm"):
        try:
            st = (REPO / "build" / name).stat()
            out.append((name, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


def run_step(cmd: list[str]) -> None:
    log("$ " + " ".join(cmd))
    try:
        subprocess.run(cmd, cwd=REPO, check=True, timeout=SETUP_TIMEOUT)
    except subprocess.CalledProcessError as exc:
        raise BenchError(f"{' '.join(cmd)} failed with {exc.returncode}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(cmd)} timed out") from exc


def warm_up(baseline: Instance, registry: Instance) -> None:
    """Touch storage once so each worker's workerd opens its state files, and read the
    largest request body the registry takes (the Cloudflare plan's limit): a single-request
    push of a bigger blob is refused, so it is skipped, not timed."""
    x_digest = sha256_digest(b"x")
    with closing(client(baseline.url)) as raw:
        check(raw.put("/warmup", data=b"x"), 201)
        check(raw.get("/warmup"), 200)
    with closing(client(registry.url)) as api:
        check(api.get("/v2/bench/warmup/tags/list"), 200, 404)
        check(api.post(f"/v2/bench/warmup/blobs/uploads/?digest={x_digest}", data=b"x",
                       headers=OCTET), 201)
        resp = check(api.post("/v2/bench/warmup/blobs/uploads/", headers={"Content-Length": "0"}), 202)
        limit = resp.headers.get("OCI-Chunk-Max-Length", "")
        registry.max_body = int(limit) if limit.isdigit() and int(limit) > 0 else None
        api.delete(resp.headers["Location"])
    log(f"registry: OCI-Chunk-Max-Length {limit or '(none)'}")


def main(argv=None) -> int:
    args = parse_args(argv)
    workloads = args.workloads

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)

    load_start = os.getloadavg()
    info = git_info()
    log(f"commit {info['commit']} ({info['describe']}), {info['dirty_files']} uncommitted files")
    log(f"load average at start: {loads(load_start)}; {os.cpu_count()} cpus")

    if not args.skip_setup:
        run_step([str(REPO / "scripts" / "setup"), "--test"])
        run_step([str(REPO / "scripts" / "build")])
    if not (REPO / "build" / "index.js").exists():
        raise BenchError("build/index.js is missing: run scripts/build")

    build_stamp = build_fingerprint()
    tmp = Path(tempfile.mkdtemp(prefix="edge-registry-bench-"))
    instances: list[Instance] = []
    docker = Docker("--no-docker was given" if args.no_docker else "")
    results: list = []
    failed = True
    try:
        p = free_ports(4)
        baseline = Instance("baseline", REPO / "scripts" / "bench-baseline" / "wrangler.toml", tmp,
                            "/", {}, p[0], p[1])
        limit_args = () if args.max_body_mb is None else ("--var", f"MAX_REQUEST_BODY_MB:{args.max_body_mb}")
        registry = Instance("registry", REPO / "wrangler.toml", tmp, "/v2/",
                            {"EDGE_REGISTRY_SKIP_BUILD": "1"}, p[2], p[3], limit_args)
        instances = [baseline, registry]
        for inst in instances:
            inst.start()
        log("generating test data (os.urandom)")
        images = [Image(name, sizes, tmp / "data") for name, sizes in workloads]
        skopeo = Skopeo(tmp / "skopeo-home")
        docker.start()
        for inst in instances:
            inst.wait_ready()
        warm_up(baseline, registry)
        for inst in instances:
            inst.locate_worker()
            log(f"{inst.name}: {inst.url}, worker workerd pid {inst.pid} ({inst.how}); "
                f"other workerd {inst.others}; idle RSS {status_kib(inst.pid, 'VmRSS') / 1024:.1f} MiB")

        for run in range(1, args.runs + 1):
            for img in images:
                WorkloadRun(img, run, baseline, registry, skopeo, docker, tmp, results).all_rows()
        failed = False
    except KeyboardInterrupt:
        log("interrupted: stopping wrangler")
        failed = True
        raise
    finally:
        try:
            docker.stop()
        except Exception as exc:  # keep stopping wrangler
            log(f"docker: stop failed: {exc}")
        for inst in instances:
            try:
                inst.stop()
            except Exception as exc:  # keep stopping the others
                log(f"{inst.name}: stop failed: {exc}")
        if failed and instances:
            for inst in instances:
                log(f"----- {inst.name} wrangler log tail ({inst.log_path})\n{inst.log_tail(20)}")
        if args.keep or (failed and os.environ.get("BENCH_KEEP_ON_FAILURE")):
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    load_end = os.getloadavg()
    build_changed = build_fingerprint() != build_stamp
    rows = summarize(results, [n for n, _ in workloads])
    print_report(info, args.runs, load_start, load_end, baseline, registry, build_changed, results, rows)
    if args.json:
        write_json(args, info, load_start, load_end, instances, build_changed, rows, results)
        log(f"wrote {args.json}")
    return 1 if any("error" in r and not r["error"].startswith("skipped: ") for r in results) else 0


def entry() -> None:
    """sys.exit(main()), with a BenchError logged (exit 2) and Ctrl-C as exit 130."""
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
