"""What the bench times: the clients that move a workload's image.

- raw: every blob PUT into / streamed out of R2 by the baseline worker
  (scripts/bench-baseline), optionally stored as multipart objects (`?part-mib=`), and then
  optionally sent as docker sends a layer (chunked, no Content-Length).
- python: the registry's API over HTTP, a chunked push (POST, a PATCH per PATCH_CHUNK
  streamed from the file with Content-Range, PUT ?digest=), docker's road (POST, one PATCH
  of the whole blob with `Transfer-Encoding: chunked` and no Content-Length, PUT ?digest=
  with an empty body), a monolithic one (one POST ?digest=), and a pull that streams every
  blob into sha256.
- skopeo: `skopeo copy` between an OCI layout and the registry, isolated (private HOME and
  auth file, no proxies) the way the e2e tests run it.

The HTTP client, digests, media types and skopeo's isolation come from tests/e2e. Failures
raise BenchError (with the status in a form report.short_error picks out).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import requests
import urllib3

from clientrun import isolated_env, runner
from helpers import OCI_MANIFEST, Client, patch_chunk, sha256_digest, with_query

from . import MiB, BenchError
from .workloads import IO_BLOCK, Image

PATCH_CHUNK = 64 * MiB
MULTIPART_PART_MIB = 8  # the registry's part size: raw put-multipart stores blobs the same way
HTTP_TIMEOUT = (15.0, 900.0)  # connect, read (per socket operation)
SKOPEO_TIMEOUT = 1800.0
OCTET = {"Content-Type": "application/octet-stream"}

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def client(url: str) -> Client:
    """A client of one `wrangler dev` instance over HTTPS (its certificate is self-signed)."""
    c = Client(url, timeout=HTTP_TIMEOUT)
    c.session.verify = False
    return c


def check(resp: requests.Response, *statuses: int) -> requests.Response:
    if resp.status_code not in statuses:
        body = resp.content[:400] if resp.request.method != "HEAD" else b""
        raise BenchError(f"{resp.request.method} {resp.url} -> {resp.status_code}, "
                         f"expected {statuses}: {body!r}")
    return resp


def stream_digest(resp: requests.Response) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    for block in resp.iter_content(IO_BLOCK):
        h.update(block)
        n += len(block)
    return "sha256:" + h.hexdigest(), n


def verify_pull(resp: requests.Response, blob_digest: str, size: int, what: str) -> None:
    got, n = stream_digest(resp)
    if got != blob_digest or n != size:
        raise BenchError(f"{what}: pulled {n} bytes {got}, expected {size} bytes {blob_digest}")


# ------------------------------------------------------------------------------ raw

def unsized(body) -> Iterator[bytes]:
    """The blocks of a body, as a generator: requests sends it with `Transfer-Encoding:
    chunked` and no Content-Length, as docker sends a layer."""
    if isinstance(body, bytes):
        yield body
    else:
        yield from body


def raw_put(c: Client, img: Image, key: str, part_mib: int = 0, chunked: bool = False,
            hashed: bool = False) -> None:
    """Every blob, then the manifest, into R2 through the baseline worker: as single objects,
    or with part_mib as multipart objects; chunked sends each blob as docker does (no
    Content-Length, `Transfer-Encoding: chunked`; the worker takes that for multipart only);
    hashed has the worker also hash each blob with the runtime's DigestStream (checked here)."""
    query = f"?part-mib={part_mib}" if part_mib else ""
    if hashed:
        query += "&hash=sha256"
    for b in img.blobs:
        if chunked:
            resp = c.put(f"/{key}/{b.digest}{query}", data=unsized(b.body()))
        else:
            resp = c.put(f"/{key}/{b.digest}{query}", data=b.body(), headers={"Content-Length": str(b.size)})
        check(resp, 201)
        if hashed and resp.headers.get("docker-content-digest") != b.digest:
            raise BenchError(f"raw hashed put: the worker hashed {b.digest} to "
                             f"{resp.headers.get('docker-content-digest')}")
    check(c.put(f"/{key}/manifest", data=img.manifest), 201)


def raw_get(c: Client, img: Image, key: str) -> None:
    for b in img.blobs:
        with c.get(f"/{key}/{b.digest}", stream=True) as resp:
            check(resp, 200)
            verify_pull(resp, b.digest, b.size, "raw get")
    with c.get(f"/{key}/manifest") as resp:
        if check(resp, 200).content != img.manifest:
            raise BenchError("raw get: manifest bytes differ")


# --------------------------------------------------------------------------- python

PUSH_MODES = ("chunked", "docker-road", "mono")


def py_push(c: Client, img: Image, repo: str, mode: str) -> None:
    """Push img to repo, every blob "chunked" (POST, numbered PATCHes, PUT), "docker-road"
    (POST, one unsized PATCH, PUT) or "mono" (one POST)."""
    if mode not in PUSH_MODES:
        raise ValueError(f"push mode {mode!r}, not one of {PUSH_MODES}")
    for b in img.blobs:
        uploads = f"/v2/{repo}/blobs/uploads/"
        if mode == "mono":
            resp = c.post(with_query(uploads, {"digest": b.digest}), data=b.body(),
                          headers={**OCTET, "Content-Length": str(b.size)})
        else:
            resp = check(c.post(uploads, headers={"Content-Length": "0"}), 202)
            loc = c.url(resp.headers["Location"])
            if mode == "docker-road":
                resp = check(c.patch(loc, data=unsized(b.body()), headers=OCTET), 202)
                loc = c.url(resp.headers["Location"])
            else:
                for off in range(0, b.size, PATCH_CHUNK):
                    n = min(PATCH_CHUNK, b.size - off)
                    resp = check(patch_chunk(c, loc, b.body(off, n), off), 202)
                    loc = c.url(resp.headers["Location"])
            resp = c.put(with_query(loc, {"digest": b.digest}), headers={"Content-Length": "0"})
        check(resp, 201)
        if resp.headers.get("Docker-Content-Digest") != b.digest:
            raise BenchError(f"push {b.digest}: Docker-Content-Digest "
                             f"{resp.headers.get('Docker-Content-Digest')}")
    check(c.put(f"/v2/{repo}/manifests/t", data=img.manifest,
                headers={"Content-Type": OCI_MANIFEST}), 201)


def py_pull(c: Client, img: Image, repo: str) -> None:
    resp = check(c.get(f"/v2/{repo}/manifests/t", headers={"Accept": OCI_MANIFEST}), 200)
    if sha256_digest(resp.content) != img.manifest_digest:
        raise BenchError("pull: manifest digest differs")
    doc = resp.json()
    for d in [doc["config"], *doc["layers"]]:
        with c.get(f"/v2/{repo}/blobs/{d['digest']}", stream=True) as blob:
            check(blob, 200)
            verify_pull(blob, d["digest"], d["size"], "pull")


# --------------------------------------------------------------------------- skopeo

class Skopeo:
    """`skopeo --insecure-policy copy --quiet ...` with its own HOME and auth file."""

    def __init__(self, home: Path):
        exe = shutil.which("skopeo")
        if exe is None:
            raise BenchError("skopeo not found (scripts/setup --test installs it)")
        home.mkdir(parents=True, exist_ok=True)
        self.prefix = [exe, "--insecure-policy", "copy", "--quiet"]
        self.run = runner(isolated_env(home), self.prefix, timeout=SKOPEO_TIMEOUT)

    def copy(self, *args: str) -> None:
        cmd = " ".join([*self.prefix, *args])
        try:
            code, _, err = self.run(*args, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{cmd} timed out after {SKOPEO_TIMEOUT:.0f}s") from exc
        if code != 0:
            raise BenchError(f"{cmd} -> {code}: {err[-1500:]}")
