"""`wrangler dev` instances and the memory of the workerd process that runs their worker.

Shared by tests/e2e/test_memory.py and scripts/bench (which imports this file). Linux only
(/proc); stdlib + requests.

wrangler dev runs two `workerd serve` children: a proxy that listens on the public port
(`--socket-addr=entry=127.0.0.1:<port>`) and the runtime that runs the worker and the local
R2/KV simulators, which keep their files under the --persist-to state dir open. That second
one is "the worker's workerd" (`find_worker_workerd`). `RssSampler` samples its VmRSS every
50 ms in a thread, and resets its VmHWM (/proc/PID/clear_refs, "5") at the start of each
phase and reads it at the end, so that short spikes count too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

MiB = 1024 * 1024
SAMPLE_INTERVAL = 0.05
STOP_TIMEOUT = 15.0


def stop_process_group(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """Stops a process started in its own group (wrangler and its workerd children):
    SIGTERM, then SIGKILL, then one more SIGKILL sweep for children that outlived it."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
CLK_TCK = os.sysconf("SC_CLK_TCK")


class WranglerError(Exception):
    """wrangler did not start or answer, or its worker's workerd cannot be found."""


# ------------------------------------------------------------------------ /proc helpers

def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    f = _stat_fields(pid)
    return (int(f[11]) + int(f[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def status_kib(pid: int, key: str) -> int:
    """A `kB` line of /proc/PID/status; ProcessLookupError (an OSError) once it is gone."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise ProcessLookupError(f"no {key} in /proc/{pid}/status (exited?)")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def is_workerd(pid: int) -> bool:
    args = cmdline(pid)
    return bool(args) and os.path.basename(args[0]) == "workerd" and "serve" in args[1:3]


def holds_files_under(pid: int, directory: Path) -> bool:
    prefix = str(Path(directory).resolve()) + os.sep
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                return True
        except OSError:
            continue
    return False


def find_worker_workerd(root: int, port: int, state_dir: Path, timeout: float = 15.0):
    """(worker pid, other workerd pids, how) for the wrangler process led by `root`.

    The worker's workerd is the one holding files under `state_dir` open (it opens them once
    the worker has touched R2 or KV); failing that, the one that is not the proxy on `port`.
    """
    deadline = time.monotonic() + timeout
    workerds: list[int] = []
    while time.monotonic() < deadline:
        workerds = [p for p in descendants(root) if is_workerd(p)]
        by_state = [p for p in workerds if holds_files_under(p, state_dir)]
        if len(by_state) == 1:
            return by_state[0], [p for p in workerds if p != by_state[0]], "holds state-dir files open"
        time.sleep(0.2)
    entry = f"entry=127.0.0.1:{port}"
    not_proxy = [p for p in workerds if not any(entry in a for a in cmdline(p))]
    if len(not_proxy) == 1:
        return not_proxy[0], [p for p in workerds if p != not_proxy[0]], f"not the proxy on {entry}"
    raise WranglerError(f"cannot tell the worker's workerd apart: workerd pids {workerds}")


# ---------------------------------------------------------------------------- sampling

class RssSampler:
    """Peak RSS and CPU time of one process over a window, optionally split into phases.

        with RssSampler(pid, others) as s: ...          # one phase, "all"
        s = RssSampler(pid); s.start("push"); ...; s.phase("pull"); ...; s.stop()

    After stop(): `idle` (VmRSS at start), `peak` (largest of the sampled VmRSS and, when the
    reset worked, VmHWM), `growth` = peak - idle, `phase_peaks`, `seconds`, `cpu` (utime +
    stime of pid), `other_cpu` (of `others`), `samples`, `lost` (the process went away: the
    numbers are then incomplete), `hwm_reset`. Sizes are in bytes.
    """

    def __init__(self, pid: int, others=(), interval: float = SAMPLE_INTERVAL):
        self.pid, self.others, self.interval = pid, list(others), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()
        self.lost = False
        self.hwm_reset = True
        self.samples = 0
        self.phase_peaks: dict[str, int] = {}
        self.current = ""

    def _rss(self) -> int:
        return status_kib(self.pid, "VmRSS") * 1024

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                rss = self._rss()
            except OSError:
                self.lost = True
                return
            with self._lock:
                self.samples += 1
                self.phase_peaks[self.current] = max(self.phase_peaks[self.current], rss)

    def _other_cpu(self) -> float:
        total = 0.0
        for p in self.others:
            try:
                total += cpu_seconds(p)
            except OSError:
                pass
        return total

    def _begin(self, name: str) -> None:
        try:  # VmHWM := VmRSS, so VmHWM at the end of the phase is its true peak
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            self.hwm_reset = False
        self._hwm0 = status_kib(self.pid, "VmHWM") * 1024
        rss = self._rss()
        with self._lock:
            self.current = name
            self.phase_peaks[name] = rss

    def _end(self) -> None:
        try:
            hwm = status_kib(self.pid, "VmHWM") * 1024
            rss = self._rss()
        except OSError:
            self.lost = True
            return
        with self._lock:
            peak = max(self.phase_peaks[self.current], rss)
            if self.hwm_reset or hwm > self._hwm0:
                peak = max(peak, hwm)
            self.phase_peaks[self.current] = peak

    def start(self, name: str = "all") -> None:
        """Raises OSError if the process is gone."""
        self._begin(name)
        self.idle = self.phase_peaks[name]
        self._cpu0 = cpu_seconds(self.pid)
        self._other_cpu0 = self._other_cpu()
        self._thread.start()
        self._t0 = time.perf_counter()

    def phase(self, name: str) -> None:
        """Close the current phase and open `name`. Raises OSError if the process is gone."""
        self._end()
        self._begin(name)

    def stop(self) -> None:
        """Close the window; safe to call more than once and after a failed phase()."""
        started = hasattr(self, "_t0") and not self._stop.is_set()
        self._stop.set()
        if not started:
            return
        self.seconds = time.perf_counter() - self._t0
        self._thread.join(timeout=5)
        self._end()
        try:
            self.cpu = cpu_seconds(self.pid) - self._cpu0
        except OSError:
            self.lost = True
            self.cpu = float("nan")
        self.other_cpu = self._other_cpu() - self._other_cpu0
        self.peak = max(self.phase_peaks.values())
        self.growth = self.peak - self.idle

    def __enter__(self) -> "RssSampler":
        self.start()
        return self

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False

    def numbers(self) -> dict:
        """The window in MiB, for printing and recording."""
        out = {"workerd_pid": self.pid, "idle_rss_mib": self.idle / MiB,
               "peak_rss_mib": self.peak / MiB, "growth_mib": self.growth / MiB}
        for name, peak in self.phase_peaks.items():
            out[f"{name}_growth_mib"] = (peak - self.idle) / MiB
        out.update(cpu_s=self.cpu, vmhwm_reset=self.hwm_reset, rss_samples=self.samples)
        return out


# --------------------------------------------------------------------- wrangler instances

def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (all bound at once, so never the same twice)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def loopback_session(protocol: str = "http") -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only: never a proxy
    s.verify = protocol != "https"  # wrangler's local certificate is self-signed
    s.headers["Accept-Encoding"] = "identity"
    return s


class WranglerDev:
    """`npx --no-install wrangler dev --config CONFIG` on 127.0.0.1 in its own process group.

    Fresh `--persist-to state_dir` (local R2/KV), output to `log_path`. `start()`,
    `wait_ready()` (GET `probe` answers 200), `locate_worker()` (sets `pid`, `others`, `how`),
    `ensure_worker()`, and `stop()`: SIGTERM then SIGKILL to the whole group, every wait
    bounded, safe to call twice.
    """

    def __init__(self, name: str, config: Path, state_dir: Path, log_path: Path, port: int,
                 inspector_port: int, *, repo: Path, probe: str = "/", protocol: str = "http",
                 env: dict | None = None, extra_args: tuple = ()):
        self.name, self.config, self.repo, self.probe = name, Path(config), Path(repo), probe
        self.state_dir, self.log_path = Path(state_dir), Path(log_path)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port, self.inspector_port, self.protocol = port, inspector_port, protocol
        self.url = f"{protocol}://127.0.0.1:{port}"
        self.host = f"127.0.0.1:{port}"
        self.env, self.extra_args = dict(env or {}), tuple(extra_args)
        self.proc: subprocess.Popen | None = None
        self.log_file = None
        self.pid: int | None = None
        self.others: list[int] = []
        self.how = ""

    def command(self) -> list[str]:
        cmd = ["npx", "--no-install", "wrangler", "dev",
               "--config", str(self.config),
               "--ip", "127.0.0.1", "--port", str(self.port),
               "--inspector-port", str(self.inspector_port),
               "--persist-to", str(self.state_dir),
               "--show-interactive-dev-session=false"]
        if self.protocol == "https":
            cmd += ["--local-protocol", "https"]
        return cmd + list(self.extra_args)

    def start(self) -> None:
        env = dict(os.environ, WRANGLER_SEND_METRICS="false", NO_COLOR="1", FORCE_COLOR="0",
                   CI="1", **self.env)
        cmd = self.command()
        self.log_file = open(self.log_path, "ab")
        self.log_file.write(f"\n===== start {time.ctime()}: {' '.join(cmd)}\n".encode())
        self.log_file.flush()
        self.proc = subprocess.Popen(cmd, cwd=self.repo, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with loopback_session(self.protocol) as probe:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    raise WranglerError(f"{self.name}: wrangler exited early\n{self.log_tail()}")
                try:
                    resp = probe.get(self.url + self.probe, timeout=5)
                    if resp.status_code == 200:
                        return
                    last = f"GET {self.probe} -> {resp.status_code}"
                except requests.RequestException as exc:
                    last = f"GET {self.probe} failed: {exc.__class__.__name__}"
                time.sleep(0.5)
        raise WranglerError(f"{self.name}: not ready after {timeout:.0f}s ({last})\n{self.log_tail()}")

    def locate_worker(self) -> None:
        if self.proc is None:
            raise WranglerError(f"{self.name}: wrangler is not running")
        self.pid, self.others, self.how = find_worker_workerd(self.proc.pid, self.port, self.state_dir)

    def ensure_worker(self) -> bool:
        """Re-find the worker's workerd if it went away (wrangler reloads); True if it changed."""
        if self.pid is not None and is_workerd(self.pid):
            return False
        if self.proc is None or self.proc.poll() is not None:
            raise WranglerError(f"{self.name}: wrangler is not running any more\n{self.log_tail()}")
        self.locate_worker()
        return True

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process_group(proc)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
        if proc is not None:
            deadline = time.monotonic() + 20
            while port_open(self.port) and time.monotonic() < deadline:
                time.sleep(0.2)
