"""Durability across a worker restart on the same --persist-to state dir.

Push an image with several tags, a chunked multi-MiB blob, a referrer and a
half-finished upload; restart wrangler; everything must come back byte-identical,
the half-finished upload must resume, and new pushes must work. conftest.py
sorts this module to the very end of the run, and it uses its own repositories.
"""

import json

from helpers import (
    EMPTY_DESCRIPTOR, MiB, OCI_MANIFEST, Client, expect_status, get_manifest, parse_range,
    patch_chunk, pull_blob, push_blob, push_image, push_manifest, random_bytes, sha256_digest,
    upload_chunked, with_query,
)


def test_state_survives_restart(registry, repo, repo2):
    client = Client(registry.url)
    img = push_image(client, repo, "v1", n_layers=3, layer_size=256 * 1024)
    push_manifest(client, repo, img["digest"], img["manifest"], OCI_MANIFEST,
                  params=[("tag", "v2"), ("tag", "latest")])
    other = push_image(client, repo2, "solo")

    big = random_bytes(11 * MiB + 333)
    big_digest = upload_chunked(client, repo, big, [5 * MiB, 1, 3 * MiB])

    push_blob(client, repo, b"{}")
    subject = {"mediaType": OCI_MANIFEST, "digest": img["digest"], "size": len(img["manifest"])}
    ref_body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "artifactType": "application/vnd.e2e.restart", "config": EMPTY_DESCRIPTOR,
                           "layers": [], "subject": subject}).encode()
    push_manifest(client, repo, sha256_digest(ref_body), ref_body, OCI_MANIFEST)

    half = random_bytes(2 * MiB + 5)
    resp = expect_status(client.post(f"/v2/{repo}/blobs/uploads/"), 202)
    loc = client.url(resp.headers["Location"])
    resp = expect_status(patch_chunk(client, loc, half[:MiB], 0), 202)
    loc = client.url(resp.headers["Location"])
    client.close()

    registry.restart()

    client = Client(registry.url)
    try:
        for tag in ("v1", "v2", "latest", img["digest"]):
            resp = expect_status(get_manifest(client, repo, tag), 200)
            assert resp.content == img["manifest"]
            assert resp.headers["Docker-Content-Digest"] == img["digest"]
        for digest, data in img["blobs"].items():
            assert pull_blob(client, repo, digest) == data
        got = pull_blob(client, repo, big_digest)
        assert len(got) == len(big) and got == big
        assert expect_status(get_manifest(client, repo2, "solo"), 200).content == other["manifest"]

        tags = expect_status(client.get(f"/v2/{repo}/tags/list"), 200).json()
        assert tags == {"name": repo, "tags": ["latest", "v1", "v2"]}
        catalog = expect_status(client.get("/v2/_catalog"), 200).json()["repositories"]
        assert {repo, repo2} <= set(catalog)

        refs = expect_status(client.get(f"/v2/{repo}/referrers/{img['digest']}"), 200).json()
        assert [d["digest"] for d in refs["manifests"]] == [sha256_digest(ref_body)]

        # The half-finished upload resumes where it stopped.
        status = expect_status(client.get(loc), 204)
        assert parse_range(status.headers["Range"]) == (0, MiB - 1)
        resp = expect_status(patch_chunk(client, loc, half[MiB:], MiB), 202)
        loc = client.url(resp.headers["Location"])
        done = client.put(with_query(loc, {"digest": sha256_digest(half)}))
        expect_status(done, 201)
        assert pull_blob(client, repo, sha256_digest(half)) == half

        # And the restarted registry still takes new content.
        fresh = push_image(client, repo, "after-restart")
        assert expect_status(get_manifest(client, repo, "after-restart"), 200).content == \
            fresh["manifest"]
    finally:
        client.close()
