"""Measuring: the two `wrangler dev` instances, one measured operation, one workload's run.

`Instance` is a tests/e2e `WranglerDev` over HTTPS with its state and log under the temp
dir. `measure` runs one operation under an `RssSampler` of the instance's worker workerd
(wall clock, peak RSS over the RSS just before, CPU time), after SETTLE seconds of quiet.
`WorkloadRun` times every row of one workload for one run (raw, skopeo, python, docker):
each push on new digests (the image is re-stamped), each pull of what the push before it
stored, and an operation during which wrangler restarted workerd is measured again, at
most MAX_ATTEMPTS times. Setting up (stamping, building docker's image) and checking the
outcome (digests) are outside the timing.
"""

from __future__ import annotations

import shutil
import time
from contextlib import closing
from pathlib import Path

import requests

from helpers import DOCKER_MANIFEST
from workerd_proc import RssSampler, WranglerDev

from . import REPO, MiB, BenchError, log
from .clients import MULTIPART_PART_MIB, Skopeo, check, client, py_pull, py_push, raw_get, raw_put
from .docker_client import DOCKER_WORKLOADS, Docker
from .workloads import Image

READY_TIMEOUT = 180.0
SETTLE = 0.5  # seconds of quiet before each measured operation
MAX_ATTEMPTS = 3  # a measurement is taken again when wrangler restarted workerd during it
# What wrangler's proxy answers a non-GET request whose fetch to the worker's workerd failed
# (its ProxyWorker says so for any failed fetch to a path other than "/", restart or not).
# Such a measurement is taken again too, and the row counts these answers (`proxy_503s`).
PROXY_503 = "Your worker restarted mid-request"
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


class WorkloadRun:
    """One run of one workload: every row, each push on new digests (the image is
    re-stamped), each pull of what the push before it stored."""

    def __init__(self, img: Image, run: int, baseline: Instance, registry: Instance,
                 skopeo: Skopeo, docker: Docker, tmp: Path, results: list):
        self.img, self.run, self.baseline, self.registry = img, run, baseline, registry
        self.skopeo, self.docker, self.tmp, self.results = skopeo, docker, tmp, results
        self.slug = img.name.lower()
        self.state: dict = {}
        biggest = max(b.size for b in img.blobs)
        too_big = registry.max_body is not None and biggest > registry.max_body
        self.over_limit = (f"a {biggest / MiB:.0f} MiB body is over the registry's "
                           f"OCI-Chunk-Max-Length ({registry.max_body / MiB:.0f} MiB)"
                           if too_big else "")

    def all_rows(self) -> None:
        self.raw_rows()
        self.skopeo_rows()
        self.python_rows()
        self.docker_rows()

    def record(self, client_: str, op: str, inst: Instance, prepare, needs: dict | None = None,
               skip: str = "", after=None) -> dict:
        """prepare(attempt) sets up (outside the timing) and returns the callable to time;
        after(), if given, checks the outcome (outside the timing too) and may return more
        fields for the row."""
        img, run = self.img, self.run
        row = {"workload": img.name, "client": client_, "op": op, "run": run}
        if skip:
            row.update(error=f"skipped: {skip}", attempts=0)
        elif needs is not None and "error" in needs:
            row.update(error=f"skipped: {needs['client']} {needs['op']} failed", attempts=0)
        else:
            row["proxy_503s"] = 0
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    fn = prepare(attempt)
                except ERRORS as exc:
                    got = {"error": f"preparing: {exc.__class__.__name__}: {exc}"}
                    break
                got = measure(inst, fn)
                proxy_503 = PROXY_503 in got.get("error", "")
                row["proxy_503s"] += proxy_503
                if not (got["worker_restarted"] or proxy_503) or attempt == MAX_ATTEMPTS:
                    break
                why = ("a 503 from wrangler's proxy (its fetch to the worker failed)" if proxy_503 else
                       "the worker's workerd restarted during the measurement (wrangler reload?)")
                log(f"run {run} {img.name} {client_} {op}: {why}: measuring again")
            if "error" not in got and after is not None:
                try:
                    got.update(after() or {})
                except ERRORS as exc:
                    got["error"] = f"checking: {exc.__class__.__name__}: {exc}"
            row.update(got, attempts=attempt, bytes=img.total_bytes)
        if "error" in row:
            what = row["error"] if row["error"].startswith("skipped: ") else f"ERROR {row['error']}"
            log(f"run {run} {img.name} {client_} {op}: {what}")
        else:
            row["mib_s"] = img.total_bytes / MiB / row["seconds"]
            log(f"run {run} {img.name:>14} {client_:>6} {op:<21} {row['seconds']:8.3f} s "
                f"{row['mib_s']:8.1f} MiB/s  RSS+ {row['rss_growth'] / MiB:7.1f} MiB  "
                f"cpu {row['cpu_s']:.2f} s"
                + ("  (worker restarted during it!)" if row["worker_restarted"] else ""))
        self.results.append(row)
        return row

    def raw_rows(self) -> None:
        img, run, slug, state = self.img, self.run, self.slug, self.state
        # op, part size, sent chunked, then read back as: the chunked multipart put is docker's
        # road's own limit (its object reads like any multipart one, so it is not read again).
        # The hashed one also hashes with the runtime's DigestStream, as any road of ours must.
        puts = (("put", 0, False, False, "get"), ("put-multipart", MULTIPART_PART_MIB, False, False, "get-multipart"),
                ("put-multipart-chunked", MULTIPART_PART_MIB, True, False, ""),
                ("put-multipart-chunked-hashed", MULTIPART_PART_MIB, True, True, ""))
        with closing(client(self.baseline.url)) as raw:
            for op, part_mib, chunked, hashed, get_op in puts:
                def prep(attempt, op=op, part_mib=part_mib, chunked=chunked, hashed=hashed):
                    img.stamp(f"run{run}-raw-{op}-{attempt}")
                    key = state[op] = f"{slug}-{run}-{attempt}-{op}"
                    return lambda: raw_put(raw, img, key, part_mib=part_mib, chunked=chunked, hashed=hashed)
                put = self.record("raw", op, self.baseline, prep)
                if get_op:
                    self.record("raw", get_op, self.baseline,
                                lambda attempt, op=op: lambda: raw_get(raw, img, state[op]), put)

    def skopeo_rows(self) -> None:
        img, run, state = self.img, self.run, self.state
        layout, pulled = self.tmp / "layout", self.tmp / "pulled"

        def push_prep(attempt):
            img.stamp(f"run{run}-skopeo-{attempt}")
            img.write_layout(layout, "t")
            ref = state["skopeo"] = f"docker://{self.registry.host}/bench/{self.slug}-{run}-{attempt}-skopeo:t"
            # --preserve-digests: the layers go as they are, as already-compressed layers do;
            # without it skopeo gzips these uncompressed ones itself and the row times its gzip.
            return lambda: self.skopeo.copy("--preserve-digests", "--dest-tls-verify=false",
                                            f"oci:{layout}:t", ref)

        def pull_prep(attempt):
            shutil.rmtree(pulled, ignore_errors=True)
            return lambda: self.skopeo.copy("--preserve-digests", "--src-tls-verify=false",
                                            state["skopeo"], f"oci:{pulled}:t")

        # skopeo sends each layer in one request (with --preserve-digests, with its length).
        push = self.record("skopeo", "push", self.registry, push_prep, skip=self.over_limit)
        shutil.rmtree(layout, ignore_errors=True)
        self.record("skopeo", "pull", self.registry, pull_prep, push)
        shutil.rmtree(pulled, ignore_errors=True)

    def python_rows(self) -> None:
        img, run, state = self.img, self.run, self.state
        with closing(client(self.registry.url)) as api:
            def push_prep(mode):
                def prep(attempt):
                    img.stamp(f"run{run}-{mode}-{attempt}")
                    repo = state[mode] = f"bench/{self.slug}-{run}-{attempt}-{mode}"
                    return lambda: py_push(api, img, repo, mode)
                return prep

            def pull_prep(mode):
                return lambda attempt: lambda: py_pull(api, img, state[mode])

            push = self.record("python", "push-chunked", self.registry, push_prep("chunked"))
            self.record("python", "pull", self.registry, pull_prep("chunked"), push)
            # docker's road has no length to check against the limit before the bytes come.
            push = self.record("python", "push-docker-road", self.registry, push_prep("docker-road"),
                               skip=self.over_limit)
            self.record("python", "pull-docker-road", self.registry, pull_prep("docker-road"), push)
            self.record("python", "push-mono", self.registry, push_prep("mono"), skip=self.over_limit)

    def docker_rows(self) -> None:
        img, run, state, docker = self.img, self.run, self.state, self.docker
        skip = docker.unavailable or self.over_limit
        if not skip and img.name not in DOCKER_WORKLOADS:
            skip = f"docker rows cover {', '.join(DOCKER_WORKLOADS)}"

        def push_prep(attempt):
            img.stamp(f"run{run}-docker-{attempt}")
            repo = state["docker-repo"] = f"bench/{self.slug}-{run}-{attempt}-docker"
            ref = state["docker"] = f"{self.registry.host}/{repo}:t"
            state["docker-id"] = docker.build(img, ref, self.tmp / "docker-context")

            def push():
                state["docker-digest"] = docker.push(ref)
                state["push-retries"] = docker.retries
            return push

        def pushed_as_printed():
            with closing(client(self.registry.url)) as api:
                resp = check(api.head(f"/v2/{state['docker-repo']}/manifests/t",
                                      headers={"Accept": DOCKER_MANIFEST}), 200)
            if resp.headers.get("Docker-Content-Digest") != state["docker-digest"]:
                raise BenchError(f"docker push printed {state['docker-digest']}, the registry serves "
                                 f"{resp.headers.get('Docker-Content-Digest')}")
            return {"docker_retries": state["push-retries"]}

        def pull_prep(attempt):
            docker.remove(state["docker"])

            def pull():
                state["docker-pulled"] = docker.pull(state["docker"])
                state["pull-retries"] = docker.retries
            return pull

        def pulled_the_same():
            ref = state["docker"]
            if state["docker-pulled"] != state["docker-digest"]:
                raise BenchError(f"docker pull {ref}: digest {state['docker-pulled']}, "
                                 f"pushed {state['docker-digest']}")
            if docker.image_id(ref) != state["docker-id"]:
                raise BenchError(f"docker pull {ref}: image id differs from the built one")
            docker.remove(ref)
            return {"docker_retries": state["pull-retries"]}

        push = self.record("docker", "push", self.registry, push_prep, skip=skip,
                           after=pushed_as_printed)
        self.record("docker", "pull", self.registry, pull_prep, push, skip=skip, after=pulled_the_same)
