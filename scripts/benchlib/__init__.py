"""scripts/bench, the benchmark of README.md's "Benchmark" section, as a package.

- `workloads`: the images to move (random layer files, re-stamped before each push).
- `clients`: what moves them: raw PUT/GET through the baseline worker, the registry API
  from Python (numbered chunks, docker's road, one request), skopeo.
- `docker_client`: docker itself, against a private dockerd: build, push, remove, pull.
- `measure`: the two `wrangler dev` instances, one measurement under an RSS sampler, and
  the rows of one workload's run.
- `report`: medians, the table, the notes under it, the JSON file, the git commit.
- `cli`: the flags and the whole run (setup, start, warm up, measure, always stop).

What tests/e2e already has is imported from there, not written again: `workerd_proc`
(wrangler instances, finding and sampling the worker's workerd), `helpers` (digests, media
types, the HTTP client), `layout` (OCI image layouts), `clientrun` (running skopeo in
isolation), `dockerd` (a private docker daemon). Importing this package puts tests/e2e on sys.path. Only stdlib + requests (and the skopeo and docker commands).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from workerd_proc import WranglerError  # noqa: E402

MiB = 1024 * 1024

# One error type for the bench's own failures and wrangler/workerd ones, caught alike.
BenchError = WranglerError


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)
