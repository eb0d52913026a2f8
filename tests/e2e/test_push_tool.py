"""edge-push (tools/push), the tool for layers over the request body limit, end to end.

One image built `FROM scratch` by the private dockerd (tests/e2e/dockerd.py) holds a 300 MiB
layer of random bytes: three times what the `registry` fixture (wrangler.toml's
MAX_REQUEST_BODY_MB=100) takes in one request. `docker save` of it is pushed with the tool
from stdin, stopped mid-chunk by the test knob EDGE_PUSH_TEST_EXIT_AFTER_BYTES (as a kill
would stop it), then run again with `docker-daemon:`: the second run must continue the same
upload session from exactly the offset the registry reports (its status `Range`) and send
only the rest. docker then pulls the image back after `docker rmi`: same image id, and the
digest docker reports is the one the tool printed. An OCI layout holding a two-platform
index is pushed with `oci:` and `--platform`, its manifest served byte for byte; and the
tool survives a connection cut in the middle of a chunk (a proxy closes it), continuing in
the same run from the session's status. The access-controlled instance takes a writer's push (token flow, credentials from the
environment or a docker config file) and refuses a reader's and a wrong password.

The binary is $E2E_PUSH_BIN (scripts/test builds it; default target/tool/edge-push).
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from helpers import Client, random_repo
from layout import write_oci_layout_image, write_oci_layout_index
from test_docker import build, dockerd, front_for, image_id  # noqa: F401 (dockerd is a fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
LAYER_BYTES = 300 * MIB
PULL_TIMEOUT = 150  # seconds; the pull takes 5-7 s here
# What the tool cuts under the 100 MB limit: the largest multiple of the registry's 8 MiB
# OCI-Chunk-Min-Length that fits in its OCI-Chunk-Max-Length of 100,000,000 bytes.
CHUNK = 88 * MIB
# Where the first run stops: 32 MiB into its second chunk.
STOP_AT = CHUNK + 32 * MIB
KNOB_EXIT = 86
TIMEOUT = 600
FINAL_LINE = re.compile(r"pushed in (\d+) chunks?(?:, resumed at byte ([\d, ]+))?, sent (\d+) bytes")
DOCKER_DIGEST = re.compile(r"Digest: (sha256:[0-9a-f]{64})")


def push_bin() -> Path:
    value = os.environ.get("E2E_PUSH_BIN")
    path = Path(value) if value else REPO_ROOT / "target" / "tool" / "edge-push"
    path = path if path.is_absolute() else REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        why = f"edge-push not found at {path} (build it: cargo build -p edge-push --profile tool)"
        if os.environ.get("E2E_REQUIRE_CLIENTS"):
            pytest.fail(f"{why}; E2E_REQUIRE_CLIENTS is set", pytrace=False)
        pytest.skip(why)
    return path


def tool_env(dockerd, **extra) -> dict:
    env = {k: v for k, v in dockerd.env.items() if not k.startswith(("EDGE_PUSH_", "XDG_"))}
    env.update(DOCKER=dockerd.docker_bin, **extra)
    return env


def run_tool(env, *args, stdin=None, expect=0) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(push_bin()), "push", *args], env=env, stdin=stdin or subprocess.DEVNULL,
                          capture_output=True, timeout=TIMEOUT)
    said = (f"edge-push push {' '.join(args)} -> {proc.returncode}\nstdout: {proc.stdout.decode()[-3000:]}"
            f"\nstderr: {proc.stderr.decode()[-5000:]}")
    assert proc.returncode == expect, said
    return proc


def final_line(proc, digest: str) -> tuple[int, list[int], int]:
    """(chunks, offsets resumed at, bytes sent) from the line of the blob `digest`."""
    said = proc.stderr.decode()
    lines = [line for line in said.splitlines() if line.startswith(digest[:19])]
    found = next(filter(None, map(FINAL_LINE.search, lines)), None)
    assert found, said
    resumed = [int(x) for x in found.group(2).split(", ")] if found.group(2) else []
    return int(found.group(1)), resumed, int(found.group(3))


@pytest.fixture(scope="module")
def big_image(dockerd, tmp_path_factory):
    """`e2e-push/big:1`, one 300 MiB layer of random bytes; (ref, image id)."""
    context = tmp_path_factory.mktemp("big-image")
    with open(context / "big.bin", "wb") as f:
        for _ in range(LAYER_BYTES // (4 * MIB)):
            f.write(os.urandom(4 * MIB))
    (context / "Dockerfile").write_text("FROM scratch\nCOPY big.bin /big.bin\n")
    ref = "e2e-push/big:1"
    dockerd.docker("build", "-q", "-t", ref, ".", cwd=context)
    (context / "big.bin").unlink()
    yield ref, image_id(dockerd, ref)
    dockerd.docker("rmi", "-f", ref, check=False)


def expected_chunks(held: int, size: int) -> int:
    """Chunks from `held` to `size`: the first cut short to a multiple of 8 MiB, then 88 MiB."""
    chunks, at, align = 0, held, 8 * MIB
    while at < size:
        reach = at + CHUNK
        aligned = reach - reach % align
        at = min(aligned if aligned > at else reach, size)
        chunks += 1
    return chunks


def settled_offset(client: Client, location: str) -> int:
    """The bytes the registry holds for the session, once two reads a second apart agree
    (the stopped request may still be being stored)."""
    import time

    last = None
    for _ in range(30):
        resp = client.get(location)
        assert resp.status_code == 204, resp.text
        held = int(resp.headers["Range"].split("-")[1]) + 1
        if held == last:
            return held
        last = held
        time.sleep(1)
    raise AssertionError(f"the session's offset kept moving: {last}")


def test_big_layer_push_stopped_resumed_and_pulled_back(dockerd, registry, big_image, tmp_path, measure):
    ref, built = big_image
    layer = dockerd.docker("image", "inspect", "--format", "{{index .RootFS.Layers 0}}", ref).stdout.decode().strip()
    repo = random_repo("push-tool-big")
    dest = f"{registry.host}/{repo}:1"
    state = tmp_path / "state"
    env = tool_env(dockerd)

    # 1. docker save | edge-push push -, stopped mid-chunk.
    save = subprocess.Popen([dockerd.docker_bin, "save", ref], env=dockerd.env, stdout=subprocess.PIPE)
    stopped = run_tool(dict(env, EDGE_PUSH_TEST_EXIT_AFTER_BYTES=str(STOP_AT)), "--state-dir", str(state), "-j", "1",
                       "-", dest, stdin=save.stdout, expect=KNOB_EXIT)
    save.stdout.close()
    assert save.wait(timeout=TIMEOUT) == 0
    assert b"stopping here, mid-chunk" in stopped.stderr
    sessions = list(state.iterdir())
    assert len(sessions) == 1, sessions
    location = json.loads(sessions[0].read_text())["location"]
    client = Client(registry.url)
    held = settled_offset(client, location)
    assert CHUNK <= held <= STOP_AT, f"the first chunk is in, nothing past the stop: {held}"

    # 2. The same push again, from the daemon: it continues at the registry's offset.
    import time

    started = time.monotonic()
    resumed = run_tool(env, "--state-dir", str(state), f"docker-daemon:{ref}", dest)
    measure("second run of edge-push (docker save + the rest of 300 MiB)", f"{time.monotonic() - started:.1f} s")
    digest = resumed.stdout.decode().strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), resumed.stdout
    size = int(client.head(f"/v2/{repo}/blobs/{layer}").headers["Content-Length"])
    assert size > LAYER_BYTES, "the layer tar: the file and its tar headers"
    chunks, resumed_at, sent = final_line(resumed, layer)
    assert resumed_at == [held], resumed.stderr.decode()
    assert sent == size - held, "only the bytes the registry did not hold were sent"
    assert chunks == expected_chunks(held, size), resumed.stderr.decode()
    assert list(state.iterdir()) == [], "the finished session is forgotten"
    served = client.head(f"/v2/{repo}/manifests/1")
    assert served.status_code == 200 and served.headers["Docker-Content-Digest"] == digest

    # 3. docker pulls it back: same image id, same digest.
    dockerd.docker("rmi", ref)
    front = front_for(registry)
    try:
        pulled_ref = f"{front.host}/{repo}:1"
        started = time.monotonic()
        try:
            pulled = dockerd.docker("pull", pulled_ref, timeout=PULL_TIMEOUT).stdout.decode()
        except subprocess.TimeoutExpired:
            # Seen twice in about ten runs of the suite: the 300 MiB layer's GET answered
            # 200 and its body then stalled for good inside `wrangler dev` (the local R2
            # simulator's read of a multipart object; wrangler logged the GET after 600 s).
            # Recorded, then pulled again: the layer must still come back whole.
            measure("docker pull of the 300 MiB image stalled, pulled again", f"after {PULL_TIMEOUT} s")
            started = time.monotonic()
            pulled = dockerd.docker("pull", pulled_ref, timeout=PULL_TIMEOUT).stdout.decode()
        measure("docker pull of the 300 MiB image pushed by edge-push", f"{time.monotonic() - started:.1f} s")
        assert DOCKER_DIGEST.search(pulled).group(1) == digest, pulled
        assert image_id(dockerd, pulled_ref) == built
        dockerd.docker("tag", pulled_ref, ref)
        dockerd.docker("rmi", pulled_ref)
    finally:
        front.close()

    # 4. Pushed again: nothing to send.
    again = run_tool(env, "--state-dir", str(state), f"docker-daemon:{ref}", f"{registry.host}/{repo}:2")
    assert again.stdout.decode().strip() == digest
    assert again.stderr.decode().count("already in the repository, skipped") == 2, again.stderr.decode()


def test_docker_push_of_a_layer_over_the_limit_fails_at_once_saying_what_to_do(dockerd, registry, big_image):
    """docker sends the 300 MiB layer in one PATCH: the registry refuses it with 413 as soon
    as the count passes the 100 MB limit, its first error UNSUPPORTED (docker retries a
    first SIZE_INVALID four more times over a minute), so docker stops after one attempt
    and prints the advice."""
    ref, _ = big_image
    front = front_for(registry)
    try:
        target = f"{front.host}/{random_repo('push-tool-docker-over')}:1"
        dockerd.docker("tag", ref, target)
        failed = dockerd.docker("push", target, check="fail")
        said = failed.stdout.decode() + failed.stderr.decode()
        assert "unsupported: this registry takes at most 100000000 bytes per request" in said, said
        assert "edge-push" in said, said
        assert "Retrying in" not in said, f"one attempt only: {said}"
        dockerd.docker("rmi", target)
    finally:
        front.close()


class CuttingProxy:
    """A loopback TCP proxy to the registry that cuts the connection carrying the client's
    byte number `cut_at` (both directions closed, no answer), once: a network failure in the
    middle of a chunk, while the tool keeps running."""

    def __init__(self, registry, cut_at: int):
        self.target = ("127.0.0.1", int(registry.host.rsplit(":", 1)[1]))
        self.cut_at, self.sent, self.cut = cut_at, 0, False
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(upstream, conn, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(conn, upstream, True), daemon=True).start()

    def _pump(self, src, dst, counted):
        try:
            while data := src.recv(1 << 16):
                if counted:
                    with self.lock:
                        cut = not self.cut and self.sent + len(data) >= self.cut_at
                        self.sent += len(data)
                        self.cut = self.cut or cut
                    if cut:
                        break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


def test_a_connection_cut_mid_chunk_is_resumed_from_the_registry_status(registry, tmp_path):
    """One 24 MiB layer in 8 MiB chunks through a proxy that cuts the connection 12 MiB in:
    the same run asks the session's status and continues from there."""
    layout = write_oci_layout_image(tmp_path / "layout", tag="1", n_layers=1, layer_size=24 * MIB)
    layer = json.loads(layout.manifest)["layers"][0]
    proxy = CuttingProxy(registry, cut_at=12 * MIB)
    repo = random_repo("push-tool-cut")
    try:
        proc = run_tool({"PATH": os.environ["PATH"]}, "--state-dir", str(tmp_path / "s"), "--chunk-size", "8MiB",
                        "-j", "1", f"oci:{layout.path}", f"{proxy.host}/{repo}:1")
    finally:
        proxy.close()
    assert proxy.cut, "the proxy cut the upload"
    said = proc.stderr.decode()
    assert "asking the registry where the upload stands" in said, said
    _, resumed_at, sent = final_line(proc, layer["digest"])
    assert resumed_at and all(8 * MIB <= at <= 12 * MIB for at in resumed_at), said
    assert sent >= layer["size"], said
    assert proc.stdout.decode().strip() == layout.digest
    client = Client(registry.url)
    assert client.get(f"/v2/{repo}/manifests/1").content == layout.manifest
    blob = client.head(f"/v2/{repo}/blobs/{layer['digest']}")
    assert blob.status_code == 200 and int(blob.headers["Content-Length"]) == layer["size"]


def test_oci_layout_index_pushes_the_platform_asked_for(registry, tmp_path):
    layout = write_oci_layout_index(tmp_path / "layout", tag="multi", layer_size=256 * 1024)
    repo = random_repo("push-tool-oci")
    proc = run_tool({"PATH": os.environ["PATH"]}, "--state-dir", str(tmp_path / "s"), "--platform", "linux/arm64",
                    f"oci:{layout.path}:multi", f"{registry.host}/{repo}:arm")
    arm64 = layout.children[1]
    assert proc.stdout.decode().strip() == arm64
    client = Client(registry.url)
    served = client.get(f"/v2/{repo}/manifests/arm", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert served.status_code == 200 and served.content == layout.blobs[arm64], "byte for byte"
    missing = run_tool({"PATH": os.environ["PATH"]}, "--platform", "linux/s390x", f"oci:{layout.path}",
                       f"{registry.host}/{repo}:x", expect=1)
    assert b"no image for linux/s390x" in missing.stderr, missing.stderr


def test_access_control_writer_pushes_reader_is_refused(dockerd, auth_registry, tmp_path):
    ref = f"e2e-push/small:{os.getpid()}"
    built = build(dockerd, tmp_path, ref, layer_bytes=MIB)
    archive = tmp_path / "small.tar"
    dockerd.docker("save", "-o", str(archive), ref)
    dest = f"{auth_registry.host}/team/push-tool:1"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    state = ["--state-dir", str(tmp_path / "state")]

    reader = run_tool(env, *state, "-u", "reader", "-p", "reader-pass", str(archive), dest, expect=1)
    assert re.search(rb"DENIED|denied", reader.stderr), reader.stderr
    wrong = run_tool(dict(env, EDGE_PUSH_USERNAME="writer", EDGE_PUSH_PASSWORD="nope"), *state, str(archive), dest,
                     expect=1)
    assert b"refused the credentials of writer" in wrong.stderr, wrong.stderr
    anonymous = run_tool(env, *state, str(archive), dest, expect=1)
    assert re.search(rb"unauthorized", anonymous.stderr, re.I), anonymous.stderr

    writer = run_tool(dict(env, EDGE_PUSH_USERNAME="writer", EDGE_PUSH_PASSWORD="writer-pass"), *state, str(archive),
                      dest)
    digest = writer.stdout.decode().strip()
    # The same credentials from a docker config file, as `docker login` leaves them.
    config = tmp_path / "docker-config"
    config.mkdir()
    auth = base64.b64encode(b"writer:writer-pass").decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": auth}}}))
    again = run_tool(dict(env, DOCKER_CONFIG=str(config)), *state, str(archive), f"{auth_registry.host}/team/push-tool:2")
    assert again.stdout.decode().strip() == digest

    front = front_for(auth_registry)
    try:
        pulled_ref = f"{front.host}/team/push-tool:1"
        dockerd.docker("login", "-u", "reader", "--password-stdin", front.host, input=b"reader-pass")
        pulled = dockerd.docker("pull", pulled_ref).stdout.decode()
        assert DOCKER_DIGEST.search(pulled).group(1) == digest, pulled
        assert image_id(dockerd, pulled_ref) == built
        dockerd.docker("logout", front.host)
        dockerd.docker("rmi", pulled_ref, ref)
    finally:
        front.close()
