"""Content management (end-9): deleting tags and manifests.

DELETE by tag removes only that tag; DELETE by digest removes the manifest and
every tag pointing to it; unknown references are 404 MANIFEST_UNKNOWN; a
deleted manifest can be pushed again.
"""

from helpers import (
    OCI_MANIFEST, assert_error, expect_status, get_manifest, push_image, push_manifest,
    random_bytes, sha256_digest,
)


def _tag(client, repo, img, *tags):
    push_manifest(client, repo, img["digest"], img["manifest"], OCI_MANIFEST,
                  params=[("tag", t) for t in tags])


def _tags(client, repo):
    return expect_status(client.get(f"/v2/{repo}/tags/list"), 200).json()["tags"]


def test_delete_tag_removes_only_the_tag(client, repo):
    img = push_image(client, repo, None)
    _tag(client, repo, img, "a", "b")
    expect_status(client.delete(f"/v2/{repo}/manifests/a"), 202)
    assert_error(get_manifest(client, repo, "a"), 404, "MANIFEST_UNKNOWN")
    for ref in ("b", img["digest"]):
        resp = expect_status(get_manifest(client, repo, ref), 200)
        assert resp.content == img["manifest"]
    assert _tags(client, repo) == ["b"]
    assert_error(client.delete(f"/v2/{repo}/manifests/a"), 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_by_digest_removes_its_tags(client, repo):
    img = push_image(client, repo, None)
    other = push_image(client, repo, "other")
    _tag(client, repo, img, "a", "b")
    expect_status(client.delete(f"/v2/{repo}/manifests/{img['digest']}"), 202)
    for ref in ("a", "b", img["digest"]):
        assert_error(get_manifest(client, repo, ref), 404, "MANIFEST_UNKNOWN")
        expect_status(client.head(f"/v2/{repo}/manifests/{ref}"), 404)
    assert _tags(client, repo) == ["other"]
    assert expect_status(get_manifest(client, repo, "other"), 200).content == other["manifest"]
    assert_error(client.delete(f"/v2/{repo}/manifests/{img['digest']}"), 404, "MANIFEST_UNKNOWN")


def test_delete_last_manifest(client, repo):
    img = push_image(client, repo, "only")
    expect_status(client.delete(f"/v2/{repo}/manifests/{img['digest']}"), 202)
    assert_error(get_manifest(client, repo, "only"), 404, "MANIFEST_UNKNOWN")
    resp = client.get(f"/v2/{repo}/tags/list")
    if resp.status_code == 404:
        assert_error(resp, 404, "NAME_UNKNOWN")
    else:
        assert expect_status(resp, 200).json()["tags"] in ([], None)


def test_delete_unknown_references(client, repo):
    push_image(client, repo, "present")
    assert_error(client.delete(f"/v2/{repo}/manifests/absent"), 404, "MANIFEST_UNKNOWN")
    missing = sha256_digest(random_bytes(8))
    assert_error(client.delete(f"/v2/{repo}/manifests/{missing}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}-absent/manifests/{missing}"), 404,
                 ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"))
    assert expect_status(get_manifest(client, repo, "present"), 200).content


def test_repush_after_delete(client, repo):
    img = push_image(client, repo, "v1")
    expect_status(client.delete(f"/v2/{repo}/manifests/{img['digest']}"), 202)
    push_manifest(client, repo, "v1", img["manifest"], OCI_MANIFEST)
    resp = expect_status(get_manifest(client, repo, "v1"), 200)
    assert resp.content == img["manifest"]
    assert resp.headers["Docker-Content-Digest"] == img["digest"]


def test_delete_tag_then_digest_of_shared_manifest(client, repo):
    """Tags on the same manifest are independent until the manifest itself goes."""
    img = push_image(client, repo, None)
    _tag(client, repo, img, "x", "y", "z")
    expect_status(client.delete(f"/v2/{repo}/manifests/y"), 202)
    assert _tags(client, repo) == ["x", "z"]
    _tag(client, repo, img, "y")
    assert _tags(client, repo) == ["x", "y", "z"]
    expect_status(client.delete(f"/v2/{repo}/manifests/{img['digest']}"), 202)
    for t in ("x", "y", "z"):
        assert_error(get_manifest(client, repo, t), 404, "MANIFEST_UNKNOWN")
