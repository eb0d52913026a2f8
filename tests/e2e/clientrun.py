"""Running real registry clients (skopeo, podman, buildah) in isolation: a private HOME
and auth file, no proxies, and a skip (or, with E2E_REQUIRE_CLIENTS, a failure) when a
client is not installed. scripts/bench runs skopeo through `isolated_env` and `runner` too,
without pytest: pytest is imported only where a missing client skips or fails a test."""

import os
import shutil
import subprocess

TIMEOUT = 600


def require(*names):
    import pytest

    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        if os.environ.get("E2E_REQUIRE_CLIENTS"):
            pytest.fail(f"{missing} not found and E2E_REQUIRE_CLIENTS is set")
        pytest.skip(f"{missing} not installed (set E2E_REQUIRE_CLIENTS=1 to make this fail)")
    return found


def isolated_env(home):
    auth = home / "auth.json"
    auth.write_text("{}")
    env = dict(os.environ, REGISTRY_AUTH_FILE=str(auth), HOME=str(home), XDG_RUNTIME_DIR=str(home),
               NO_PROXY="*", no_proxy="*")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(var, None)
    return env


def runner(env, prefix, timeout=TIMEOUT):
    """run(*args, check=...) -> (returncode, stdout, stderr); check True asserts success,
    "fail" asserts failure, False checks nothing. subprocess.TimeoutExpired after timeout s."""
    def run(*args, check=True):
        cmd = [*prefix, *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
        out, err = proc.stdout.decode(), proc.stderr.decode()
        said = f"{' '.join(cmd)} -> {proc.returncode}\nstdout: {out[-3000:]}\nstderr: {err[-3000:]}"
        if check is True:
            assert proc.returncode == 0, said
        elif check == "fail":
            assert proc.returncode != 0, f"unexpectedly succeeded: {said}"
        return proc.returncode, out, err
    return run
