"""Access control over HTTP against the real worker (`auth_registry`, examples/auth.dev.vars).

The 401 challenge (realm = the origin the client used + /token), the token endpoint
(GET with Basic, POST form, anonymous tokens), bearer tokens limited to their scopes,
Basic credentials straight on /v2/, forged tokens, 403 DENIED bodies, access tokens
(create, use, exchange, revoke: the next request is refused, timed), throttled wrong
passwords, mounts that need pull on `from`, and the catalog filtered by pull rights.
"""

import json
import secrets
import time
from urllib.parse import urlsplit

import pytest

from authflow import (
    SERVICE, b64url, basic, bearer_token, challenge, client_as, create_access_token, jwt_parts,
    login, revoke_access_token, sign_jwt, token_response,
)
from helpers import (
    Client, assert_error, describe, expect_status, get_manifest, parse_link, push_blob, push_image,
    random_repo, with_query,
)
from plainfront import PlainHttpFront


@pytest.fixture
def anon(auth_registry):
    c = Client(auth_registry.url)
    yield c
    c.close()


@pytest.fixture
def as_user(auth_registry):
    """as_user(authorization) -> a Client sending that Authorization header; all closed after."""
    made = []

    def make(authorization):
        made.append(client_as(auth_registry.url, authorization))
        return made[-1]

    yield make
    for c in made:
        c.close()


def _repo(request, prefix):
    return random_repo(request.node.name, prefix=prefix)


def test_challenge_names_realm_service_and_scope(auth_registry, anon, request):
    repo = _repo(request, "team")
    resp = anon.get("/v2/")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert resp.headers["WWW-Authenticate"] == (
        f'Bearer realm="{auth_registry.url}/token",service="{SERVICE}"')
    cases = [("GET", f"/v2/{repo}/tags/list", "pull"),
             ("HEAD", f"/v2/{repo}/manifests/v1", "pull"),
             ("POST", f"/v2/{repo}/blobs/uploads/", "pull,push"),
             ("PUT", f"/v2/{repo}/manifests/v1", "pull,push"),
             ("DELETE", f"/v2/{repo}/manifests/v1", "delete")]
    for method, path, actions in cases:
        resp = anon.request(method, path)
        assert resp.status_code == 401, describe(resp)
        assert challenge(resp) == {"realm": f"{auth_registry.url}/token", "service": SERVICE,
                                   "scope": f"repository:{repo}:{actions}", "error": None}, describe(resp)
    # The realm follows the origin the client reached: through another port, that port.
    front = PlainHttpFront(urlsplit(auth_registry.url).port)
    via = Client(f"http://{front.host}")
    try:
        resp = via.get(f"/v2/{repo}/tags/list")
        assert challenge(resp)["realm"] == f"http://{front.host}/token", describe(resp)
    finally:
        via.close()
        front.close()


def test_token_get_with_basic_grants_only_what_the_user_holds(anon, request):
    repo = _repo(request, "team")
    before = int(time.time())
    resp = expect_status(token_response(anon, [f"repository:{repo}:pull,push,delete"],
                                        login("writer")), 200)
    body = resp.json()
    assert resp.headers.get("Cache-Control") == "no-store"
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    head, claims = jwt_parts(body["token"])
    assert body["issued_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["iat"]))
    assert head["alg"] == "HS256"
    assert claims["sub"] == "writer" and claims["aud"] == SERVICE
    assert claims["exp"] - claims["iat"] == 300 and abs(claims["iat"] - before) <= 5
    assert claims["access"] == [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]
    # A reader asking for push gets pull only; outside team/* the writer gets nothing.
    reader = jwt_parts(bearer_token(anon, [f"repository:{repo}:pull,push"], login("reader")))[1]
    assert reader["access"][0]["actions"] == ["pull"]
    other = jwt_parts(bearer_token(anon, ["repository:other/x:pull,push"], login("writer")))[1]
    assert other["access"] == [{"type": "repository", "name": "other/x", "actions": []}]
    # Wrong password: 401 with a Basic challenge; a bad scope: 400.
    bad = token_response(anon, [f"repository:{repo}:pull"], basic("writer", "nope"))
    assert_error(bad, 401, "UNAUTHORIZED")
    assert bad.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert_error(token_response(anon, ["repository:team/../x:pull"], login("writer")), 400, None)


def test_token_post_form_password_grant(anon, as_user, request):
    repo = _repo(request, "team")
    form = {"grant_type": "password", "username": "writer", "password": "writer-pass",
            "service": SERVICE, "scope": f"repository:{repo}:pull,push"}
    resp = expect_status(anon.post("/token", data=form), 200)
    token = resp.json()["access_token"]
    assert jwt_parts(token)[1]["access"][0]["actions"] == ["pull", "push"]
    push_image(as_user(f"Bearer {token}"), repo, "form")
    wrong = anon.post("/token", data={**form, "password": "writer-pas"})
    assert_error(wrong, 401, "UNAUTHORIZED")
    assert_error(anon.post("/token", data={**form, "grant_type": "client_credentials"}), 400, None)


def test_anonymous_token_pulls_public_only(anon, as_user, request):
    public, team = _repo(request, "public"), _repo(request, "team")
    admin = as_user(login("admin"))
    pub_img = push_image(admin, public, "v1")
    push_image(admin, team, "v1")
    # Anonymous pulls of public/* need no token at all...
    assert expect_status(get_manifest(anon, public, "v1"), 200).content == pub_img["manifest"]
    # ...and an anonymous token carries pull on public/* and nothing on team/*.
    token = bearer_token(anon, [f"repository:{public}:pull,push", f"repository:{team}:pull"])
    assert jwt_parts(token)[1]["sub"] == ""
    assert [e["actions"] for e in jwt_parts(token)[1]["access"]] == [["pull"], []]
    bearer = as_user(f"Bearer {token}")
    assert expect_status(get_manifest(bearer, public, "v1"), 200).content == pub_img["manifest"]
    assert_error(get_manifest(bearer, team, "v1"), 401, "UNAUTHORIZED")
    assert_error(bearer.post(f"/v2/{public}/blobs/uploads/"), 401, "UNAUTHORIZED")


def test_bearer_tokens_are_limited_to_their_scope(anon, as_user, request):
    repo_a, repo_b = _repo(request, "team"), _repo(request, "team") + "-b"
    other = _repo(request, "other")
    token = bearer_token(anon, [f"repository:{repo_a}:pull,push", f"repository:{other}:pull,push"],
                         login("writer"))
    bearer = as_user(f"Bearer {token}")
    img = push_image(bearer, repo_a, "v1")
    assert expect_status(get_manifest(bearer, repo_a, "v1"), 200).content == img["manifest"]
    # other/*: the writer may never push there, whatever the token says: 403 DENIED.
    assert_error(bearer.post(f"/v2/{other}/blobs/uploads/"), 403, "DENIED")
    # team/b with a token for team/a: the writer could, so 401 naming the scope to ask for.
    resp = bearer.post(f"/v2/{repo_b}/blobs/uploads/")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert challenge(resp)["scope"] == f"repository:{repo_b}:pull,push"
    assert challenge(resp)["error"] == "insufficient_scope"
    # No delete in the token (and the writer holds none): 403.
    assert_error(bearer.delete(f"/v2/{repo_a}/manifests/v1"), 403, "DENIED")


def test_basic_credentials_work_on_v2(anon, as_user, request):
    repo = _repo(request, "team")
    reader, writer = as_user(login("reader")), as_user(login("writer"))
    resp = expect_status(reader.get("/v2/"), 200)
    assert resp.json() == {}
    img = push_image(writer, repo, "v1")
    assert expect_status(get_manifest(reader, repo, "v1"), 200).content == img["manifest"]
    tags = expect_status(reader.get(f"/v2/{repo}/tags/list"), 200).json()
    assert tags == {"name": repo, "tags": ["v1"]}
    assert_error(as_user(basic("reader", "wrong")).get(f"/v2/{repo}/tags/list"), 401, "UNAUTHORIZED")
    assert_error(as_user(basic("nobody", "reader-pass")).get("/v2/"), 401, "UNAUTHORIZED")
    assert_error(get_manifest(anon, repo, "v1"), 401, "UNAUTHORIZED")


def test_denied_answers_with_spec_error_body(as_user, request):
    repo = _repo(request, "team")
    resp = as_user(login("reader")).post(f"/v2/{repo}/blobs/uploads/")
    assert_error(resp, 403, "DENIED")
    assert "WWW-Authenticate" not in resp.headers, describe(resp)
    err = resp.json()["errors"][0]
    assert err["code"] == "DENIED"
    assert err["message"] == f"push access to repository {repo} is denied"
    # A manifest PUT by a reader: denied as well, and no tag appears.
    writer = as_user(login("writer"))
    img = push_image(writer, repo, "v1")
    reader = as_user(login("reader"))
    resp = reader.put(f"/v2/{repo}/manifests/v2", data=img["manifest"],
                      headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert_error(resp, 403, "DENIED")
    assert expect_status(reader.get(f"/v2/{repo}/tags/list"), 200).json()["tags"] == ["v1"]


def test_forged_tokens_are_refused(anon, as_user, request):
    repo = _repo(request, "other")
    push_image(as_user(login("admin")), repo, "v1")
    genuine = bearer_token(anon, [f"repository:{repo}:pull"], login("reader"))
    _, claims = jwt_parts(genuine)
    # Control: a token we sign with the instance's key and the same claims works, so each
    # forgery below fails for its one difference only.
    expect_status(as_user(f"Bearer {sign_jwt(claims)}").get(f"/v2/{repo}/tags/list"), 200)
    pushy = {**claims, "access": [{"type": "repository", "name": repo,
                                   "actions": ["pull", "push", "delete"]}], "sub": "admin"}
    h, p, s = genuine.split(".")
    none_head = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    now = int(time.time())
    forged = {
        "altered claims, old signature": f"{h}.{b64url(json.dumps(pushy).encode())}.{s}",
        "alg none": f"{none_head}.{b64url(json.dumps(pushy).encode())}.",
        "alg none, genuine claims": f"{none_head}.{p}.",
        "alg none, genuine signature": f"{none_head}.{p}.{s}",
        "another key": sign_jwt(pushy, key=b"not-the-key-0123456789abcdef-0123456789"),
        "expired": sign_jwt({**claims, "iat": now - 900, "nbf": now - 900, "exp": now - 600}),
        "other audience": sign_jwt({**claims, "aud": "another-registry"}),
        "unknown user": sign_jwt({**claims, "sub": "mallory"}),
        "two parts": f"{h}.{p}",
        "garbage": "garbage",
    }
    for why, token in forged.items():
        resp = as_user(f"Bearer {token}").get(f"/v2/{repo}/tags/list")
        assert resp.status_code == 401, f"{why}: {describe(resp)}"
        assert_error(resp, 401, "UNAUTHORIZED")
        assert challenge(resp)["scope"] == f"repository:{repo}:pull", why
    # The alg-none token with delete rights did not delete anything either.
    none = forged["alg none"]
    assert as_user(f"Bearer {none}").delete(f"/v2/{repo}/manifests/v1").status_code == 401
    assert expect_status(as_user(login("reader")).get(f"/v2/{repo}/tags/list"), 200).json()["tags"] == ["v1"]


def test_access_token_create_use_exchange_and_revoke(anon, as_user, request):
    repo, other = _repo(request, "team"), _repo(request, "other")
    access = [{"repository": "team/*", "actions": ["pull", "push"]}]
    body = {"name": "ci", "access": access, "expires_in_days": 7}
    assert_error(anon.post("/auth/tokens", json=body), 401, "UNAUTHORIZED")
    assert_error(as_user(login("writer")).post("/auth/tokens", json=body), 403, "DENIED")
    assert_error(as_user(login("admin")).post("/auth/tokens", json={**body, "expires_in_days": 0}),
                 400, None)
    created = create_access_token(anon, access, name=f"ci-{secrets.token_hex(3)}")
    assert created["access"] == access and created["expires_at"] - created["created_at"] == 7 * 86400
    listed = expect_status(as_user(login("admin")).get("/auth/tokens"), 200)
    mine = [t for t in listed.json()["tokens"] if t["id"] == created["id"]]
    assert mine and mine[0]["name"] == created["name"] and "token" not in mine[0]
    assert created["token"].split("_")[2] not in listed.text, "a secret leaked into the listing"

    ci = as_user(basic("any-name", created["token"]))
    img = push_image(ci, repo, "v1")
    assert_error(ci.post(f"/v2/{other}/blobs/uploads/"), 403, "DENIED")
    exchanged = bearer_token(anon, [f"repository:{repo}:pull,push"], basic("ci", created["token"]))
    assert jwt_parts(exchanged)[1]["sub"] == f"token:{created['id']}"
    bearer = as_user(f"Bearer {exchanged}")
    assert expect_status(get_manifest(bearer, repo, "v1"), 200).content == img["manifest"]
    wrong = created["token"][:-1] + ("0" if created["token"][-1] != "0" else "1")
    assert_error(as_user(basic("ci", wrong)).get(f"/v2/{repo}/tags/list"), 401, "UNAUTHORIZED")

    resp = revoke_access_token(anon, created["id"])
    revoked_at = time.monotonic()
    expect_status(resp, 204)
    tries, refused_after = 0, None
    while refused_after is None and time.monotonic() - revoked_at < 30:
        tries += 1
        if ci.get(f"/v2/{repo}/tags/list").status_code == 401:
            refused_after = time.monotonic() - revoked_at
    print(f"\naccess token revoked: first refused request after {refused_after:.3f} s "
          f"(attempt {tries})")
    assert tries == 1, f"revoked token still accepted {tries - 1} time(s)"
    assert_error(bearer.get(f"/v2/{repo}/tags/list"), 401, "UNAUTHORIZED")
    assert_error(token_response(anon, [f"repository:{repo}:pull"], basic("ci", created["token"])),
                 401, "UNAUTHORIZED")
    assert_error(revoke_access_token(anon, created["id"]), 404, None)


def test_wrong_passwords_are_throttled(anon, as_user):
    user = f"nobody{secrets.token_hex(4)}"  # throttling counts per user name, known or not
    for i in range(10):
        assert_error(as_user(basic(user, f"guess-{i}")).get("/v2/"), 401, "UNAUTHORIZED")
    resp = as_user(basic(user, "guess-10")).get("/v2/")
    assert_error(resp, 429, "TOOMANYREQUESTS")
    assert 0 < int(resp.headers["Retry-After"]) <= 60
    # Other users are not affected.
    expect_status(as_user(login("reader")).get("/v2/"), 200)


def test_mount_needs_pull_on_from(as_user, request):
    public, other, target = _repo(request, "public"), _repo(request, "other"), _repo(request, "team")
    admin, writer = as_user(login("admin")), as_user(login("writer"))
    pub_blob, other_blob = push_blob(admin, public, b"pub" * 100), push_blob(admin, other, b"oth" * 100)
    url = f"/v2/{target}/blobs/uploads/"
    resp = expect_status(writer.post(with_query(url, {"mount": pub_blob, "from": public})), 201)
    assert resp.headers["Docker-Content-Digest"] == pub_blob
    # From a repository the writer may not pull: a plain session, the blob stays hidden.
    resp = expect_status(writer.post(with_query(url, {"mount": other_blob, "from": other})), 202)
    assert f"/v2/{target}/blobs/uploads/" in resp.headers["Location"]
    expect_status(writer.head(f"/v2/{target}/blobs/{other_blob}"), 404)


def _catalog(client: Client) -> list[str]:
    names, url = [], "/v2/_catalog?n=100"
    while url:
        resp = expect_status(client.get(url), 200)
        names += resp.json()["repositories"]
        url = parse_link(resp)
    return names


def test_catalog_lists_only_pullable_repositories(anon, as_user, request):
    repos = {p: _repo(request, p) for p in ("public", "team", "other")}
    admin = as_user(login("admin"))
    for repo in repos.values():
        push_image(admin, repo, "v1", n_layers=1)
    seen = {"anonymous": _catalog(anon), "reader": _catalog(as_user(login("reader"))),
            "writer": _catalog(as_user(login("writer"))), "admin": _catalog(admin)}
    assert repos["public"] in seen["anonymous"]
    assert all(n.startswith("public/") for n in seen["anonymous"]), seen["anonymous"]
    assert all(n.startswith(("public/", "team/")) for n in seen["writer"]), seen["writer"]
    assert {repos["public"], repos["team"]} <= set(seen["writer"]) and repos["other"] not in seen["writer"]
    assert set(repos.values()) <= set(seen["reader"]) and seen["reader"] == seen["admin"]
    for who, names in seen.items():
        assert names == sorted(names), who
