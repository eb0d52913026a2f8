"""OCI image-layout writer for the skopeo tests (re-exported by helpers.py) and scripts/bench.

Builds a directory that `skopeo copy oci:DIR:TAG ...` understands: `oci-layout`,
`index.json` and `blobs/sha256/<hex>`, for a single image (config + N random
layers) or for a multi-platform OCI index of linux/amd64 and linux/arm64 images.
Layers are random bytes with an uncompressed tar media type by default; each
starts with a fixed prefix so no compression sniffer mistakes it for gzip/zstd.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class LayoutImage:
    """What was written: the top-level manifest (image or index) and every blob."""

    path: Path
    tag: str
    media_type: str
    manifest: bytes
    digest: str
    blobs: dict = field(default_factory=dict)  # digest -> bytes (includes manifests)
    children: list = field(default_factory=list)  # per-platform manifest digests


def put_blob(root: Path, blobs: dict, data: bytes) -> str:
    """Write data as root/blobs/sha256/<hex>, record it in blobs, return its digest."""
    d = _digest(data)
    p = root / "blobs" / "sha256" / d.split(":", 1)[1]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    blobs[d] = data
    return d


def _image(root: Path, blobs: dict, arch: str, n_layers: int, layer_size: int,
           gzip_layers: bool) -> tuple[bytes, str]:
    raw = [b"e2e-layer\0" + arch.encode() + b"\0" + os.urandom(layer_size) for _ in range(n_layers)]
    stored = [gzip.compress(x, mtime=0) for x in raw] if gzip_layers else raw
    layer_type = OCI_LAYER_GZIP if gzip_layers else OCI_LAYER
    config = json.dumps({
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["E2E=1"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(x) for x in raw]},
        "history": [{"created_by": "edge-registry e2e"} for _ in raw],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": put_blob(root, blobs, config),
                   "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": put_blob(root, blobs, x), "size": len(x)}
                   for x in stored],
    }, indent=2).encode()
    return manifest, put_blob(root, blobs, manifest)


def finish_layout(root: Path, tag: str, media_type: str, manifest: bytes, digest: str) -> None:
    """Write `oci-layout` and an `index.json` naming the one manifest `digest` as `tag`."""
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": media_type, "digest": digest, "size": len(manifest),
         "annotations": {REF_NAME: tag}}]}
    (root / "index.json").write_text(json.dumps(index, indent=2))


def write_oci_layout_image(path, tag: str = "latest", n_layers: int = 3,
                           layer_size: int = 64 * 1024, arch: str = "amd64",
                           gzip_layers: bool = False) -> LayoutImage:
    """Write one linux/<arch> image tagged `tag` into a fresh layout at path."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    blobs: dict = {}
    manifest, digest = _image(root, blobs, arch, n_layers, layer_size, gzip_layers)
    finish_layout(root, tag, OCI_MANIFEST, manifest, digest)
    return LayoutImage(root, tag, OCI_MANIFEST, manifest, digest, blobs)


def write_oci_layout_index(path, tag: str = "latest", n_layers: int = 2,
                           layer_size: int = 32 * 1024, gzip_layers: bool = False,
                           arches=("amd64", "arm64")) -> LayoutImage:
    """Write a multi-platform OCI index (one image per arch) tagged `tag`."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    blobs: dict = {}
    entries, children = [], []
    for arch in arches:
        manifest, digest = _image(root, blobs, arch, n_layers, layer_size, gzip_layers)
        children.append(digest)
        entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
                        "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
                       indent=2).encode()
    digest = put_blob(root, blobs, index)
    finish_layout(root, tag, OCI_INDEX, index, digest)
    return LayoutImage(root, tag, OCI_INDEX, index, digest, blobs, children)


def read_layout_blobs(path) -> dict:
    """Map digest -> bytes for every blob under path/blobs/sha256, verifying each."""
    out = {}
    for p in sorted((Path(path) / "blobs" / "sha256").iterdir()):
        data = p.read_bytes()
        assert _digest(data) == "sha256:" + p.name, f"corrupt blob {p}"
        out["sha256:" + p.name] = data
    return out


def layout_manifest_digest(path, tag: str) -> str:
    """Digest that the layout's index.json points to for tag."""
    index = json.loads((Path(path) / "index.json").read_text())
    for m in index["manifests"]:
        if m.get("annotations", {}).get(REF_NAME) == tag:
            return m["digest"]
    raise AssertionError(f"tag {tag} not in {path}/index.json: {index}")
