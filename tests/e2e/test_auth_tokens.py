"""Issue 9 against the real worker (`auth_registry`, examples/auth.dev.vars): a bearer token
presented to /token yields at most its own scopes and never a later expiry; refresh
tokens from an offline login are revocable and only a refresh token works as one; the
admin API refuses bearer tokens but takes an admin's password or an admin access token.
These also exercise the password check in the worker (WebCrypto PBKDF2).
"""

import pytest

from authflow import SERVICE, basic, bearer_token, challenge, jwt_parts, login, token_response
from helpers import Client, expect_status, random_repo


@pytest.fixture
def anon(auth_registry):
    c = Client(auth_registry.url)
    yield c
    c.close()


def _refresh(anon, refresh_token, scope):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "service": SERVICE, "scope": scope}
    return anon.post("/token", data=form)


def test_a_pull_token_cannot_be_traded_for_push_or_a_later_expiry(anon, request):
    repo = random_repo(request.node.name, prefix="team")
    pull = bearer_token(anon, [f"repository:{repo}:pull"], login("writer"))
    resp = expect_status(token_response(anon, [f"repository:{repo}:pull,push,delete"], f"Bearer {pull}"), 200)
    traded = resp.json()["token"]
    _, claims = jwt_parts(traded)
    assert claims["access"] == [{"type": "repository", "name": repo, "actions": ["pull"]}]
    assert claims["exp"] <= jwt_parts(pull)[1]["exp"]
    assert 0 < resp.json()["expires_in"] <= 300
    upload = anon.post(f"/v2/{repo}/blobs/uploads/", headers={"Authorization": f"Bearer {traded}"})
    assert upload.status_code == 401, upload.text
    assert challenge(upload)["error"] == "insufficient_scope"


def test_admin_api_refuses_bearer_tokens_and_takes_admin_credentials(anon):
    admin_bearer = bearer_token(anon, ["repository:team/x:pull"], login("admin"))
    refused = anon.get("/auth/tokens", headers={"Authorization": f"Bearer {admin_bearer}"})
    assert refused.status_code == 401, refused.text
    assert refused.headers["WWW-Authenticate"].startswith("Basic realm=")
    expect_status(anon.get("/auth/tokens", headers={"Authorization": login("admin")}), 200)
    body = {"name": "e2e-admin", "access": [], "expires_in_days": 1, "admin": True}
    created = expect_status(anon.post("/auth/tokens", json=body, headers={"Authorization": login("admin")}), 201)
    token = created.json()["token"]
    try:
        expect_status(anon.get("/auth/tokens", headers={"Authorization": basic("ci", token)}), 200)
    finally:
        expect_status(anon.delete(f"/auth/tokens/{created.json()['id']}", headers={"Authorization": login("admin")}), 204)


def test_refresh_tokens_work_until_revoked_and_a_jwt_is_not_one(anon, request):
    repo = random_repo(request.node.name, prefix="team")
    scope = f"repository:{repo}:pull,push"
    offline = anon.get("/token", params={"service": SERVICE, "offline_token": "true", "client_id": "e2e"},
                       headers={"Authorization": login("writer")})
    refresh = expect_status(offline, 200).json()["refresh_token"]
    renewed = expect_status(_refresh(anon, refresh, scope), 200).json()
    assert jwt_parts(renewed["token"])[1]["access"][0]["actions"] == ["pull", "push"]
    assert "refresh_token" not in renewed
    assert _refresh(anon, renewed["token"], scope).status_code == 401
    assert anon.get("/v2/", headers={"Authorization": basic("writer", refresh)}).status_code == 401
    token_id = refresh.split("_")[1]
    expect_status(anon.delete(f"/auth/tokens/{token_id}", headers={"Authorization": login("admin")}), 204)
    assert _refresh(anon, refresh, scope).status_code == 401
