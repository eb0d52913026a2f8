"""docker as a bench client: `docker push` and `docker pull` of a workload's layers.

The daemon is the e2e suite's private one (tests/e2e/dockerd.py: vfs, its own data root,
exec root and socket, stopped at the end), never the machine's. Before each push the
workload's (re-stamped) layer files are built into an image `FROM scratch`, one `COPY` per
layer, so the image has as many layers as the workload; the build is not timed. docker
sends each layer as a gzip-compressed tar (it compresses on push even what does not
compress, as these random bytes do): the push row includes that gzip, the pull row the
gunzip and the unpacking into vfs, which is what a docker user waits for.

The registry instance speaks HTTPS with wrangler's self-signed certificate. docker treats
127.0.0.0/8 as an insecure registry by default, which means HTTPS without verifying the
certificate, so docker talks to the registry port directly as skopeo does here, and there
is no TLS attempt that times out (the 10 s wait of a plain-HTTP port, which
tests/e2e/plainfront.py and scripts/plain-front.mjs exist for, does not arise).

`Docker.unavailable` says why docker rows are skipped (not installed, not root); a daemon
that is installed but does not start is an error (BenchError), as a failed client is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from dockerd import COMMAND_TIMEOUT, Dockerd

from . import BenchError, log
from .workloads import Image

PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64}) size:")
PULLED_DIGEST = re.compile(r"Digest: (sha256:[0-9a-f]{64})")
# dockerd's log line for a layer it sends or fetches again after a failed attempt.
RETRIED = re.compile(r"(Upload|Download) failed, retrying")
# The images the issue names (1 MiB as the small case); 1 GiB through vfs (build context,
# layer, push, pull and unpack each copy it) would add minutes per run for no new road.
DOCKER_WORKLOADS = ("1MiB", "50MiB-3layers", "200MiB")


def why_unavailable() -> str:
    """Why docker rows cannot run here ("" when they can)."""
    missing = [n for n in ("docker", "dockerd") if shutil.which(n) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (scripts/setup --test installs docker.io)"
    if os.geteuid() != 0:
        return "a private dockerd needs root here"
    return ""


class Docker:
    """A private dockerd and the CLI against it; `stop()` ends it and removes its files."""

    def __init__(self, disabled: str = ""):
        self.daemon: Dockerd | None = None
        self.retries = 0  # of the last push or pull
        self.unavailable = disabled or why_unavailable()
        if self.unavailable:
            log(f"docker rows skipped: {self.unavailable}")

    def start(self) -> None:
        if self.unavailable:
            return
        try:
            self.daemon = Dockerd(shutil.which("dockerd"), shutil.which("docker"))
        except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as exc:
            raise BenchError(f"the private dockerd did not start: {exc}") from exc
        log(f"docker: private dockerd in {self.daemon.root}")

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def run(self, *args: str, cwd: Path | None = None) -> str:
        """`docker args...`; its stdout, or BenchError with its output."""
        if self.daemon is None:
            raise BenchError("docker: the private dockerd is not running")
        try:
            proc = self.daemon.docker(*args, check=False, cwd=cwd)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"docker {' '.join(args)} timed out after {COMMAND_TIMEOUT}s") from exc
        out = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")
            raise BenchError(f"docker {' '.join(args)} -> {proc.returncode}: {(out + err)[-1500:]}")
        return out

    def build(self, img: Image, ref: str, context: Path) -> str:
        """Builds img's layer files `FROM scratch` as ref (one COPY per layer); the image id."""
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        lines = ["FROM scratch"]
        for i, path in enumerate(img.layer_paths):
            target = context / f"layer{i}.bin"
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
            lines.append(f"COPY layer{i}.bin /layer{i}.bin")
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        try:
            self.run("build", "-q", "-t", ref, ".", cwd=context)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        return self.image_id(ref)

    def image_id(self, ref: str) -> str:
        return self.run("image", "inspect", "--format", "{{.Id}}", ref).strip()

    def push(self, ref: str) -> str:
        """`docker push ref`; the manifest digest docker printed."""
        return self.digest_said(PUSHED_DIGEST, "push", ref)

    def pull(self, ref: str) -> str:
        """`docker pull ref`; the manifest digest docker printed."""
        return self.digest_said(PULLED_DIGEST, "pull", ref)

    def digest_said(self, pattern: re.Pattern, command: str, ref: str) -> str:
        """Runs `docker command ref`: the digest it printed; `retries` the layer transfers
        dockerd retried meanwhile (docker retries a failed layer itself, up to 5 times)."""
        start = self.log_size()
        out = self.run(command, ref)
        self.retries = len(RETRIED.findall(self.log_since(start)))
        found = pattern.search(out)
        if not found:
            raise BenchError(f"docker {command} {ref}: no digest in its output: {out[-800:]}")
        return found.group(1)

    def log_size(self) -> int:
        try:
            return self.daemon.log_path.stat().st_size
        except (OSError, AttributeError):
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.daemon.log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def remove(self, ref: str) -> None:
        """`docker rmi ref`, then checks the image is gone, so a pull fetches every layer."""
        self.run("rmi", ref)
        try:
            self.run("image", "inspect", ref)
        except BenchError:
            return
        raise BenchError(f"docker rmi {ref}: the image is still there")
