"""Round trips with a real Rust client: the `oci-client` crate, via tests/e2e-client.

The driver binary (built by `cargo build --release` in tests/e2e-client) pushes images whose
layers (1 B, 3 MiB, 9 MiB + 17 B, 21 MiB, 13 MiB + 5 B) go up through oci-client's chunked
upload path (POST, PATCH per chunk, PUT ?digest=) with 4 MiB, 1 MiB + 7 B and mixed chunk
sizes, also with 16 concurrent uploads, checks that no upload fell back to a monolithic PUT,
pulls everything back (manifest by tag and digest, `pull`, `pull_blob`) comparing bytes and
digests, and lists the tags (also paginated). See tests/e2e-client/src/main.rs.

The binary is taken from $E2E_CLIENT_BIN (a relative path is relative to the repo root),
default tests/e2e-client/target/release/e2e-client. If it is missing the test is skipped,
unless E2E_REQUIRE_CLIENTS is set (then it fails).
"""

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "tests" / "e2e-client" / "target" / "release" / "e2e-client"
CLIENT_TIMEOUT = 900
OUTPUT_TAIL = 12000


def _client_bin() -> Path:
    value = os.environ.get("E2E_CLIENT_BIN")
    path = Path(value).expanduser() if value else DEFAULT_BIN
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        why = (f"oci-client driver not found at {path} "
               "(build it: cd tests/e2e-client && cargo build --release)")
        if os.environ.get("E2E_REQUIRE_CLIENTS"):
            pytest.fail(f"{why}; E2E_REQUIRE_CLIENTS is set", pytrace=False)
        pytest.skip(f"{why}; set E2E_REQUIRE_CLIENTS=1 to make this fail")
    return path


def _tail(data: bytes | str | None) -> str:
    if not data:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text[-OUTPUT_TAIL:]


def test_oci_client_chunked_push_pull_tags(registry):
    exe = _client_bin()
    cmd = [str(exe), "--registry", registry.host]
    env = dict(os.environ, NO_PROXY="*", no_proxy="*")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(var, None)
    try:
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        print(_tail(exc.stdout))
        print(_tail(exc.stderr))
        pytest.fail(f"{' '.join(cmd)} timed out after {CLIENT_TIMEOUT}s\n"
                    f"stdout: {_tail(exc.stdout)}\nstderr: {_tail(exc.stderr)}", pytrace=False)
    stdout, stderr = _tail(proc.stdout), _tail(proc.stderr)
    # Shown by pytest for a failing test (and with -s always).
    print(stdout)
    print(stderr)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {proc.returncode}\n"
                    f"----- stdout -----\n{stdout}\n----- stderr -----\n{stderr}", pytrace=False)
    assert "e2e-client: OK" in stdout, f"no OK line in the driver's output:\n{stdout}"
