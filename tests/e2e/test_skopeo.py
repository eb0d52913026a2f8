"""Round trips with a real client: skopeo (containers/image) over plain HTTP.

Push an OCI layout (single image, and a linux/amd64 + linux/arm64 index) with
`skopeo copy`, compare `skopeo inspect --raw` bytes with what was written,
`skopeo list-tags`, pull back into a new layout and compare every blob, then
`skopeo delete` and check that inspect fails. Skipped when skopeo is missing,
unless E2E_REQUIRE_CLIENTS is set (then missing skopeo is a failure).
skopeo talks to the registry through plainfront.PlainHttpFront (a byte-for-byte
loopback splice that refuses TLS at once) so its HTTPS probe does not cost ~10 s
per command; E2E_SKOPEO_DIRECT=1 points skopeo at the registry port itself.
"""

import json
import os
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest

from plainfront import PlainHttpFront
from helpers import (
    Client, get_manifest, layout_manifest_digest, read_layout_blobs, sha256_digest,
    write_oci_layout_image, write_oci_layout_index,
)

SKOPEO_TIMEOUT = 600


@pytest.fixture(scope="module")
def skopeo(tmp_path_factory):
    exe = shutil.which("skopeo")
    if exe is None:
        if os.environ.get("E2E_REQUIRE_CLIENTS"):
            pytest.fail("skopeo not found and E2E_REQUIRE_CLIENTS is set")
        pytest.skip("skopeo not installed (set E2E_REQUIRE_CLIENTS=1 to make this fail)")
    home = tmp_path_factory.mktemp("skopeo-home")
    auth = home / "auth.json"
    auth.write_text("{}")
    env = dict(os.environ, REGISTRY_AUTH_FILE=str(auth), HOME=str(home),
               XDG_RUNTIME_DIR=str(home), NO_PROXY="*", no_proxy="*")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(var, None)

    def run(*args, check=True, global_args=()):
        cmd = [exe, "--insecure-policy", *global_args, *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=SKOPEO_TIMEOUT)
        if check:
            assert proc.returncode == 0, (
                f"{' '.join(cmd)} -> {proc.returncode}\nstdout: {proc.stdout.decode()[-3000:]}"
                f"\nstderr: {proc.stderr.decode()[-3000:]}")
        return proc

    return run


@pytest.fixture(scope="module")
def host(registry):
    """host:port that skopeo should use for the registry."""
    if os.environ.get("E2E_SKOPEO_DIRECT"):
        yield registry.host
        return
    target = urlsplit(registry.url)
    front = PlainHttpFront(target.port or 80, target.hostname)
    yield front.host
    front.close()


def _ref(host, repo, tag_or_digest):
    sep = "@" if ":" in tag_or_digest else ":"
    return f"docker://{host}/{repo}{sep}{tag_or_digest}"


def _inspect_raw(skopeo, ref) -> bytes:
    return skopeo("inspect", "--raw", "--tls-verify=false", ref).stdout


def _assert_pulled(src, dst_dir, tag):
    assert layout_manifest_digest(dst_dir, tag) == src.digest
    pulled = read_layout_blobs(dst_dir)
    for digest, data in src.blobs.items():
        assert pulled.get(digest) == data, f"blob {digest} differs after the round trip"


def _assert_gone(skopeo, registry, host, repo, *refs):
    for ref in refs:
        proc = skopeo("inspect", "--raw", "--tls-verify=false", _ref(host, repo, ref),
                      check=False)
        assert proc.returncode != 0, f"{ref} still inspectable after delete"
    client = Client(registry.url)
    try:
        for ref in refs:
            assert get_manifest(client, repo, ref).status_code == 404
    finally:
        client.close()


@pytest.mark.parametrize("gzip_layers", [False, True], ids=["tar", "tar-gzip"])
def test_single_image_round_trip(skopeo, registry, host, repo, tmp_path, gzip_layers):
    src = write_oci_layout_image(tmp_path / "src", tag="v1", n_layers=3,
                                 layer_size=300 * 1024, gzip_layers=gzip_layers)
    # Uncompressed layers would be gzipped on push unless digests are preserved.
    keep = ["--preserve-digests"] if not gzip_layers else []
    for tag in ("v1", "v2"):
        skopeo("copy", *keep, "--dest-tls-verify=false", f"oci:{src.path}:v1",
               _ref(host, repo, tag))

    raw = _inspect_raw(skopeo, _ref(host, repo, "v1"))
    assert raw == src.manifest and sha256_digest(raw) == src.digest
    assert _inspect_raw(skopeo, _ref(host, repo, src.digest)) == src.manifest
    info = json.loads(skopeo("inspect", "--tls-verify=false", _ref(host, repo, "v1")).stdout)
    assert info["Digest"] == src.digest and info["Architecture"] == "amd64"
    assert len(info["Layers"]) == 3

    tags = json.loads(skopeo("list-tags", "--tls-verify=false",
                             f"docker://{host}/{repo}").stdout)
    assert sorted(tags["Tags"]) == ["v1", "v2"]

    dst = tmp_path / "dst"
    skopeo("copy", *keep, "--src-tls-verify=false", _ref(host, repo, "v2"), f"oci:{dst}:v2")
    _assert_pulled(src, dst, "v2")

    skopeo("delete", "--tls-verify=false", _ref(host, repo, "v1"))
    _assert_gone(skopeo, registry, host, repo, "v1", "v2", src.digest)


def test_multi_platform_index_round_trip(skopeo, registry, host, repo, tmp_path):
    src = write_oci_layout_index(tmp_path / "src", tag="multi", n_layers=2, layer_size=200 * 1024)
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{src.path}:multi", _ref(host, repo, "multi"))

    raw = _inspect_raw(skopeo, _ref(host, repo, "multi"))
    assert raw == src.manifest and sha256_digest(raw) == src.digest
    for child in src.children:
        assert _inspect_raw(skopeo, _ref(host, repo, child)) == src.blobs[child]
    for arch, child in zip(("amd64", "arm64"), src.children):
        info = json.loads(skopeo("inspect", "--tls-verify=false", _ref(host, repo, "multi"),
                                 global_args=("--override-os=linux", f"--override-arch={arch}")
                                 ).stdout)
        # skopeo reports the index digest, but config and layers of the chosen platform.
        layers = [d["digest"] for d in json.loads(src.blobs[child])["layers"]]
        assert info["Digest"] == src.digest and info["Architecture"] == arch
        assert info["Layers"] == layers

    tags = json.loads(skopeo("list-tags", "--tls-verify=false",
                             f"docker://{host}/{repo}").stdout)
    assert tags["Tags"] == ["multi"]

    dst = tmp_path / "dst"
    skopeo("copy", "--multi-arch", "all", "--preserve-digests", "--src-tls-verify=false",
           _ref(host, repo, "multi"), f"oci:{dst}:multi")
    _assert_pulled(src, dst, "multi")

    skopeo("delete", "--tls-verify=false", _ref(host, repo, src.digest))
    _assert_gone(skopeo, registry, host, repo, "multi", src.digest)
