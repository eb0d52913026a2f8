"""A private docker daemon for the e2e suite.

`Dockerd` starts Debian's dockerd as these machines allow it: root, `--storage-driver vfs`,
no iptables and no bridge (images built `FROM scratch` need no network), with its own data
root, exec root, pidfile and unix socket in a fresh directory, so it never touches a docker
the machine may already run. `docker(...)` runs the CLI against it with a private config
directory (so `docker login` writes nowhere else) and no proxies. `stop()` ends the daemon
and its containerd and removes the directory (vfs copies every layer).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 600


class Dockerd:
    def __init__(self, dockerd: str, docker: str, daemon_config: dict | None = None):
        """daemon_config: the daemon's daemon.json (e.g. its registry-mirrors), if any."""
        self.docker_bin = docker
        self.root = Path(tempfile.mkdtemp(prefix="e2e-dockerd-"))
        self.socket = self.root / "sock"
        self.log_path = self.root / "dockerd.log"
        config = self.root / "config"
        config.mkdir()
        self.env = {k: v for k, v in os.environ.items() if k.lower() not in (
            "http_proxy", "https_proxy", "all_proxy", "docker_host", "docker_config")}
        self.env.update(DOCKER_HOST=f"unix://{self.socket}", DOCKER_CONFIG=str(config),
                        DOCKER_BUILDKIT="0", NO_PROXY="*", no_proxy="*")
        args = [dockerd, "--storage-driver", "vfs", "--iptables=false", "--ip6tables=false",
                "--bridge=none", "--data-root", str(self.root / "data"), "--exec-root",
                str(self.root / "exec"), "--pidfile", str(self.root / "pid"), "--host",
                f"unix://{self.socket}"]
        if daemon_config is not None:
            (self.root / "daemon.json").write_text(json.dumps(daemon_config))
            args += ["--config-file", str(self.root / "daemon.json")]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"dockerd did not answer within {START_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def docker(self, *args: str, check: bool | str = True, input: bytes | None = None,
               cwd: Path | None = None, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """Runs `docker args...`; check True asserts success, "fail" asserts failure."""
        proc = subprocess.run([self.docker_bin, *args], env=self.env, capture_output=True,
                              input=input, cwd=cwd, timeout=timeout)
        said = (f"docker {' '.join(args)} -> {proc.returncode}\nstdout: {proc.stdout.decode()[-3000:]}"
                f"\nstderr: {proc.stderr.decode()[-3000:]}")
        if check is True:
            assert proc.returncode == 0, said
        elif check == "fail":
            assert proc.returncode != 0, f"unexpectedly succeeded: {said}"
        return proc

    @property
    def containerd_socket(self) -> Path:
        """The socket of the containerd this dockerd started (for `ctr --address`)."""
        return self.root / "exec" / "containerd" / "containerd.sock"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
