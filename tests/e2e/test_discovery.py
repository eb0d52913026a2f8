"""Content discovery: tag listing (end-8a, end-8b) and the catalog.

Lists are sorted, paged with `n` and `last`, and carry an RFC 5988
`Link: <...>; rel="next"` header exactly while more entries remain.
"""

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import (
    OCI_MANIFEST, assert_error, expect_status, parse_link, push_blob, push_image, push_manifest,
)

TAGS = ["v10", "v2", "latest", "1.0", "_private", "beta-1", "a.b", "z9"]


@pytest.fixture
def tagged(client, repo):
    img = push_image(client, repo, None)
    push_manifest(client, repo, img["digest"], img["manifest"], OCI_MANIFEST,
                  params=[("tag", t) for t in TAGS])
    return sorted(TAGS)


def _tags(client, url):
    resp = expect_status(client.get(url), 200)
    return resp, resp.json()


def test_tags_list_sorted(client, repo, tagged):
    _, body = _tags(client, f"/v2/{repo}/tags/list")
    assert body == {"name": repo, "tags": tagged}
    assert body["tags"] == sorted(body["tags"])


def test_tags_page_link_format(client, repo, tagged):
    resp, body = _tags(client, f"/v2/{repo}/tags/list?n=2")
    assert body["tags"] == tagged[:2]
    link = parse_link(resp)
    assert link is not None, resp.headers
    parts = urlsplit(link)
    assert parts.path == f"/v2/{repo}/tags/list"
    assert parse_qs(parts.query) == {"n": ["2"], "last": [tagged[1]]}


def test_tags_follow_links_to_end(client, repo, tagged):
    url, seen, pages = f"/v2/{repo}/tags/list?n=3", [], 0
    while url:
        pages += 1
        assert pages <= len(tagged) + 1, "pagination does not terminate"
        resp, body = _tags(client, url)
        assert body["name"] == repo and len(body["tags"]) <= 3
        seen += body["tags"]
        url = parse_link(resp)
    assert seen == tagged
    assert pages == 3  # 8 tags: 3 + 3 + 2, and the last page carries no Link


def test_tags_exact_multiple_has_no_trailing_link(client, repo, tagged):
    resp, body = _tags(client, f"/v2/{repo}/tags/list?n=4")
    assert body["tags"] == tagged[:4]
    nxt = parse_link(resp)
    assert nxt is not None
    resp, body = _tags(client, nxt)
    assert body["tags"] == tagged[4:]
    assert parse_link(resp) is None, "the final page (8 tags, n=4) must not link onwards"


def test_tags_last_param(client, repo, tagged):
    _, body = _tags(client, f"/v2/{repo}/tags/list?n=2&last={tagged[2]}")
    assert body["tags"] == tagged[3:5]
    _, body = _tags(client, f"/v2/{repo}/tags/list?last={tagged[5]}")
    assert body["tags"] == tagged[6:]
    resp, body = _tags(client, f"/v2/{repo}/tags/list?n=5&last={tagged[-1]}")
    assert body["tags"] == [] and parse_link(resp) is None
    resp, body = _tags(client, f"/v2/{repo}/tags/list?n=100")
    assert body["tags"] == tagged and parse_link(resp) is None


def test_tags_n_zero(client, repo, tagged):
    resp, body = _tags(client, f"/v2/{repo}/tags/list?n=0")
    assert body["name"] == repo and body["tags"] == []
    assert "Link" not in resp.headers


def test_tags_unknown_repo(client, repo):
    assert_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")


def test_deleted_tag_leaves_list(client, repo, tagged):
    expect_status(client.delete(f"/v2/{repo}/manifests/latest"), 202)
    _, body = _tags(client, f"/v2/{repo}/tags/list")
    assert body["tags"] == [t for t in tagged if t != "latest"]


# ------------------------------------------------------------------------ catalog

@pytest.fixture
def catalog_repos(client):
    base = f"e2e/cat-{secrets.token_hex(4)}"
    names = [f"{base}/c", f"{base}/a", f"{base}/b-x"]
    for n in names:
        push_image(client, n, "t")
    return base, sorted(names)


def test_catalog_lists_repositories(client, catalog_repos):
    _, names = catalog_repos
    resp = expect_status(client.get("/v2/_catalog"), 200)
    repos = resp.json()["repositories"]
    assert repos == sorted(repos) and len(set(repos)) == len(repos)
    assert set(names) <= set(repos)


def test_catalog_paging(client, catalog_repos):
    base, names = catalog_repos
    resp = expect_status(client.get("/v2/_catalog", params={"n": 2, "last": base}), 200)
    assert resp.json()["repositories"] == names[:2]
    link = parse_link(resp)
    assert link is not None, resp.headers
    parts = urlsplit(link)
    assert parts.path == "/v2/_catalog"
    assert parse_qs(parts.query) == {"n": ["2"], "last": [names[1]]}
    resp = expect_status(client.get(link), 200)
    assert resp.json()["repositories"][0] == names[2]


def test_catalog_walk_all_pages(client, catalog_repos):
    _, names = catalog_repos
    url, seen, pages = "/v2/_catalog?n=5", [], 0
    while url:
        pages += 1
        assert pages <= 10_000, "catalog pagination does not terminate"
        resp = expect_status(client.get(url), 200)
        page = resp.json()["repositories"]
        assert len(page) <= 5
        seen += page
        url = parse_link(resp)
    assert seen == sorted(set(seen))
    assert set(names) <= set(seen)


def test_catalog_n_zero(client, catalog_repos):
    resp = expect_status(client.get("/v2/_catalog?n=0"), 200)
    assert resp.json()["repositories"] == []
    assert "Link" not in resp.headers


def test_repo_with_only_blobs_has_no_tags(client, repo):
    """A repository that only holds blobs has no tags: 404 NAME_UNKNOWN or an empty list."""
    push_blob(client, repo, b"only a blob")
    resp = client.get(f"/v2/{repo}/tags/list")
    if resp.status_code == 404:
        assert_error(resp, 404, "NAME_UNKNOWN")
    else:
        assert expect_status(resp, 200).json() == {"name": repo, "tags": []}
