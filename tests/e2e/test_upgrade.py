"""Upgrades lose nothing (issue 9): state written by the previous release, read by this build.

The previous release (previous.py: PREVIOUS_RELEASE, or E2E_PREVIOUS_RELEASE) is built
from git history and started under `wrangler dev` with access control on
(examples/auth.dev.vars) on a fresh state dir. As admin we create an access token, and
with it push an image with two tags and an 11 MiB blob in numbered chunks, then open
upload sessions and leave each in a different state:

    empty     opened, nothing sent
    tail      one PATCH with Content-Range, under a part (only a tail object)
    part      PATCHes past 8 MiB (one multipart part uploaded, plus a tail)
    native    one PATCH without Content-Range, with Content-Length (the native road)
    whole     the whole blob on the native road; only the closing PUT is left
    streamed  one PATCH with chunked transfer encoding, no Content-Length

Then the same state dir is served by this tree's build/. Everything pushed must pull
byte-identical, the tags list, the token and the users still work, and each session either
continues (status reports what was sent; the rest goes in, PUT ?digest= answers 201 and
the blob's bytes hash to the digest) or answers 404 BLOB_UPLOAD_UNKNOWN, after which it
stays unknown and the blob is pushed again in a new session. Never a 5xx, never a 201 with
other bytes. Which session did which is printed and recorded in the summary.
"""

from __future__ import annotations

import hashlib

from authflow import basic, bearer_token, client_as, create_access_token, login
from conftest import AUTH_VARS, REPO_ROOT, Registry
from helpers import (
    MiB, OCI_MANIFEST, Client, assert_error, describe, expect_status, get_manifest, parse_range,
    patch_chunk, pull_blob, push_image, push_manifest, random_bytes, random_repo, sha256_digest,
    start_upload, upload_chunked, with_query,
)
from previous import previous_worker

OCTET = {"Content-Type": "application/octet-stream"}
STREAM_PIECE = 64 * 1024


def streamed(data: bytes):
    """A generator body: requests sends it with Transfer-Encoding: chunked, no length."""
    for i in range(0, len(data), STREAM_PIECE):
        yield data[i:i + STREAM_PIECE]


class Session:
    """One upload session opened on the old worker: its bytes, what was sent, where it is."""

    def __init__(self, name: str, size: int, how: str):
        self.name, self.data, self.how = name, random_bytes(size), how
        self.sent = 0
        self.loc = ""
        self.outcome = ""

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)


def sessions_to_open() -> list[Session]:
    return [
        Session("empty", MiB + 3, "nothing"),
        Session("tail", 3 * MiB + 11, "range"),
        Session("part", 17 * MiB + 77, "range-past-part"),
        Session("native", 5 * MiB + 1, "native"),
        Session("whole", 2 * MiB + 9, "native-whole"),
        Session("streamed", 4 * MiB + 5, "chunked-transfer"),
    ]


def open_session(client: Client, repo: str, s: Session) -> None:
    """Leaves s in its state on the old worker and checks what the old worker reports."""
    _, s.loc = start_upload(client, repo)
    if s.how == "range":
        resp = patch_chunk(client, s.loc, s.data[:2 * MiB + 5], 0)
    elif s.how == "range-past-part":
        resp = expect_status(patch_chunk(client, s.loc, s.data[:4 * MiB + MiB // 2], 0), 202)
        s.loc = client.url(resp.headers["Location"])
        resp = patch_chunk(client, s.loc, s.data[4 * MiB + MiB // 2:9 * MiB], 4 * MiB + MiB // 2)
    elif s.how == "native":
        resp = patch_chunk(client, s.loc, s.data[:3 * MiB + 7], None)
    elif s.how == "native-whole":
        resp = patch_chunk(client, s.loc, s.data, None)
    elif s.how == "chunked-transfer":
        resp = client.patch(s.loc, data=streamed(s.data[:3 * MiB + 1]), headers=OCTET)
        assert "Content-Length" not in resp.request.headers, resp.request.headers
        assert resp.request.headers.get("Transfer-Encoding") == "chunked", resp.request.headers
    else:
        assert s.how == "nothing"
        resp = None
    if resp is not None:
        expect_status(resp, 202)
        s.loc = client.url(resp.headers["Location"])
        s.sent = parse_range(resp.headers.get("Range"))[1] + 1
    status = expect_status(client.get(s.loc), 204)
    assert parse_range(status.headers.get("Range")) == (0, max(s.sent - 1, 0)), describe(status)


def unknown(resp) -> bool:
    """True for 404 BLOB_UPLOAD_UNKNOWN; fails the test on a 5xx or any other error."""
    assert resp.status_code < 500, f"server error across the upgrade: {describe(resp)}"
    if resp.status_code == 404:
        assert_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")
        return True
    return False


def finish_session(client: Client, repo: str, s: Session) -> None:
    """Continues s on the new build, or sees it unknown and pushes the blob afresh."""
    step = "GET-status"
    resp = client.get(s.loc)
    if not unknown(resp):
        expect_status(resp, 204)
        assert parse_range(resp.headers.get("Range")) == (0, max(s.sent - 1, 0)), \
            f"{s.name}: the new build reports another offset than was sent: {describe(resp)}"
        rest = s.data[s.sent:]
        # "tail" closes with the rest in the PUT itself; the others PATCH it first.
        if rest and s.name != "tail":
            step = "PATCH"
            resp = patch_chunk(client, s.loc, rest, s.sent)
            if not unknown(resp):
                expect_status(resp, 202)
                assert parse_range(resp.headers.get("Range")) == (0, len(s.data) - 1), describe(resp)
                s.loc = client.url(resp.headers["Location"])
                rest = b""
        if resp.status_code != 404:
            step = "PUT"
            headers = dict(OCTET)
            if rest:
                headers["Content-Range"] = f"{s.sent}-{len(s.data) - 1}"
            resp = client.put(with_query(s.loc, {"digest": s.digest}), data=rest, headers=headers)
            if not unknown(resp):
                expect_status(resp, 201)
                assert resp.headers.get("Docker-Content-Digest") == s.digest, describe(resp)
                got = pull_blob(client, repo, s.digest)
                assert len(got) == len(s.data) and hashlib.sha256(got).digest() == \
                    hashlib.sha256(s.data).digest(), f"{s.name}: 201 but the blob holds other bytes"
                s.outcome = "continued"
                return
    # Unknown: it must stay unknown (a client restarting must not find it half alive), and
    # the blob goes up again in a new session.
    again = client.get(s.loc)
    assert unknown(again), f"{s.name}: 404 on {step}, then the session answers {describe(again)}"
    head = client.head(f"/v2/{repo}/blobs/{s.digest}")
    assert head.status_code == 404, f"{s.name}: a blob appeared without its PUT: {describe(head)}"
    digest = upload_chunked(client, repo, s.data, [3 * MiB, MiB])
    assert pull_blob(client, repo, digest) == s.data
    s.outcome = f"404@{step}"  # and restarted


def test_upgrade_from_previous_release(request, measure):
    with previous_worker() as (old_tree, sha, build_seconds):
        measure(f"previous release {sha[:12]} build", f"{build_seconds:.1f} s")
        reg = Registry(extra_args=["--env-file", str(AUTH_VARS)], ready_status=401,
                       config=old_tree / "wrangler.toml")
        failed = True
        try:
            run_upgrade(reg, sha, measure, request)
            failed = False
        finally:
            if failed:
                print(f"\n----- wrangler log tail ({reg.log_path}) -----\n{reg.log_tail()}")
            reg.cleanup(keep=failed)


def run_upgrade(reg: Registry, sha: str, measure, request) -> None:
    repo = random_repo(request.node.name, prefix="team")

    # ---------------------------------------------------------- the previous release
    reg.start()
    admin = client_as(reg.url, login("admin"))
    created = create_access_token(admin, [{"repository": "team/*", "actions": ["pull", "push"]}],
                                  name="upgrade-ci")
    token = created["token"]
    ci = client_as(reg.url, basic("ci", token))
    img = push_image(ci, repo, "v1", n_layers=2, layer_size=300 * 1024)
    push_manifest(ci, repo, img["digest"], img["manifest"], OCI_MANIFEST, params=[("tag", "stable")])
    big = random_bytes(11 * MiB + 333)
    big_digest = upload_chunked(ci, repo, big, [5 * MiB, 1, 3 * MiB])
    sessions = sessions_to_open()
    for s in sessions:
        open_session(ci, repo, s)
    ci.close()
    admin.close()

    # ------------------------------------------------------------ this tree's build
    reg.stop()
    reg.config = REPO_ROOT / "wrangler.toml"
    reg.start()

    ci = client_as(reg.url, basic("ci", token))
    admin = client_as(reg.url, login("admin"))
    anonymous = Client(reg.url)
    try:
        for ref in ("v1", "stable", img["digest"]):
            resp = expect_status(get_manifest(ci, repo, ref), 200)
            assert resp.content == img["manifest"], ref
            assert resp.headers.get("Docker-Content-Digest") == img["digest"], describe(resp)
        for digest, data in img["blobs"].items():
            assert pull_blob(ci, repo, digest) == data
        assert pull_blob(ci, repo, big_digest) == big
        tags = expect_status(ci.get(f"/v2/{repo}/tags/list"), 200).json()
        assert tags == {"name": repo, "tags": ["stable", "v1"]}, tags

        # The token, a bearer token obtained with it, and the users of the vars file.
        bearer = bearer_token(anonymous, [f"repository:{repo}:pull"], basic("ci", token))
        resp = anonymous.get(f"/v2/{repo}/manifests/v1",
                             headers={"Authorization": f"Bearer {bearer}", "Accept": OCI_MANIFEST})
        assert expect_status(resp, 200).content == img["manifest"]
        listed = expect_status(admin.get("/auth/tokens"), 200).json()["tokens"]
        assert [t["id"] for t in listed] == [created["id"]], listed
        assert expect_status(admin.get("/v2/_catalog"), 200).json()["repositories"].count(repo) == 1
        assert_error(anonymous.get(f"/v2/{repo}/manifests/v1"), 401, "UNAUTHORIZED")
        assert_error(ci.get("/v2/elsewhere/app/tags/list"), 403, "DENIED")

        for s in sessions:
            finish_session(ci, repo, s)

        # And the upgraded registry takes new content with the old token.
        fresh = push_image(ci, repo, "after-upgrade")
        assert expect_status(get_manifest(ci, repo, "after-upgrade"), 200).content == fresh["manifest"]
    finally:
        for c in (ci, admin, anonymous):
            c.close()

    outcomes = " ".join(f"{s.name}={s.outcome}" for s in sessions)
    continued = sum(s.outcome == "continued" for s in sessions)
    line = (f"upgrade {sha[:12]} -> working tree: {continued}/{len(sessions)} sessions continued, "
            f"{len(sessions) - continued} answered 404 BLOB_UPLOAD_UNKNOWN and were pushed again "
            f"({outcomes})")
    print("\n" + line)
    measure("upgrade sessions", line)
