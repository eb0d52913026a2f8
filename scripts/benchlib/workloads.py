"""The bench's workloads: images of random layer files, re-stamped before every push.

Each workload is an image of one or more layers of os.urandom bytes, written once to the
temp dir. Before every push `Image.stamp` rewrites the first STAMP_LEN bytes of each layer,
so every push sends new digests and nothing is skipped as already present. A layer is sent
as a `FileBody` streamed from its file (never held in memory); `Image.write_layout` gives
skopeo an OCI image layout with the layers hard-linked into it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from helpers import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, image_manifest, random_bytes, sha256_digest
from layout import finish_layout, put_blob

from . import MiB, BenchError

IO_BLOCK = 1 * MiB
STAMP_LEN = 64

WORKLOADS = [  # name, layer sizes
    ("1MiB", [1 * MiB]),
    ("50MiB-3layers", [50 * MiB // 3 + (1 if i < (50 * MiB) % 3 else 0) for i in range(3)]),
    ("200MiB", [200 * MiB]),
    ("1GiB", [1024 * MiB]),
]


class FileBody:
    """A request body streamed from length bytes of a file at offset (known Content-Length)."""

    def __init__(self, path: Path, offset: int = 0, length: int | None = None):
        self.path, self.offset = path, offset
        self.length = path.stat().st_size - offset if length is None else length

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        left = self.length
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            while left > 0:
                block = fh.read(min(IO_BLOCK, left))
                if not block:
                    raise BenchError(f"{self.path} ended early")
                left -= len(block)
                yield block


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            n = min(16 * MiB, left)
            fh.write(random_bytes(n))
            left -= n


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(8 * MiB):
            h.update(block)
    return "sha256:" + h.hexdigest()


class Blob:
    """One blob of an image: a layer file (`path`) or small bytes in memory (`data`)."""

    def __init__(self, media_type: str, digest_: str, size: int, path: Path | None = None,
                 data: bytes | None = None):
        self.media_type, self.digest, self.size, self.path, self.data = media_type, digest_, size, path, data

    def body(self, offset: int = 0, length: int | None = None):
        if self.data is not None:
            end = len(self.data) if length is None else offset + length
            return self.data[offset:end]
        return FileBody(self.path, offset, length)

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class Image:
    """One workload's bytes: layer files (re-stamped per push), config and manifest."""

    def __init__(self, name: str, sizes: list[int], datadir: Path):
        self.name = name
        self.dir = datadir / name
        self.dir.mkdir(parents=True)
        self.layer_paths = []
        for i, size in enumerate(sizes):
            path = self.dir / f"layer{i}.bin"
            write_random(path, size)
            self.layer_paths.append(path)
        self.stamp("initial")

    def stamp(self, tag: str) -> None:
        """Rewrite the first bytes of every layer: new digests, same sizes."""
        self.tag = tag
        self.layers = []
        for i, path in enumerate(self.layer_paths):
            mark = f"edge-registry-bench\0{self.name}\0layer{i}\0{tag}\0".encode()
            with open(path, "r+b") as fh:
                fh.write(mark[:STAMP_LEN].ljust(STAMP_LEN, b"\0"))
            self.layers.append(Blob(OCI_LAYER, file_digest(path), path.stat().st_size, path=path))
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [b.digest for b in self.layers]},
            "history": [{"created_by": f"edge-registry bench {tag}"} for _ in self.layers],
        }, sort_keys=True).encode()
        self.config = Blob(OCI_CONFIG, sha256_digest(config), len(config), data=config)
        self.manifest = image_manifest(self.config.descriptor(), [b.descriptor() for b in self.layers])
        self.manifest_digest = sha256_digest(self.manifest)

    @property
    def blobs(self) -> list[Blob]:
        return [self.config, *self.layers]

    @property
    def total_bytes(self) -> int:
        return sum(b.size for b in self.blobs) + len(self.manifest)

    def write_layout(self, root: Path, ref: str) -> None:
        """An OCI image layout at root for skopeo (layers hard-linked, not copied)."""
        shutil.rmtree(root, ignore_errors=True)
        blobs = root / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        for b in self.layers:
            target = blobs / b.digest.split(":", 1)[1]
            try:
                os.link(b.path, target)
            except OSError:
                shutil.copyfile(b.path, target)
        put_blob(root, {}, self.config.data)
        put_blob(root, {}, self.manifest)
        finish_layout(root, ref, OCI_MANIFEST, self.manifest, self.manifest_digest)
