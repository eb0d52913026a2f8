"""Access-control helpers for the e2e tests against `auth_registry` (conftest.py).

The users, passwords and signing key are those of examples/auth.dev.vars, which the
instance is started with: reader (pull on *), writer (pull, push on team/*), admin
(everything, token admin), anonymous pull on public/*. Helpers build Basic headers,
fetch bearer tokens from /token, decode and sign JWTs (HS256 with the dev key, to
forge tokens that differ from genuine ones in exactly one way), and create/revoke
access tokens through /auth/tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shlex
from pathlib import Path

import requests

from helpers import Client, expect_status

SERVICE = "edge-registry"
AUTH_VARS = Path(__file__).resolve().parents[2] / "examples" / "auth.dev.vars"
PASSWORDS = {"reader": "reader-pass", "writer": "writer-pass", "admin": "admin-pass"}


def dev_var(name: str) -> str:
    """A value from examples/auth.dev.vars (shell-style NAME='value' lines)."""
    for line in AUTH_VARS.read_text().splitlines():
        if line.startswith(name + "="):
            return shlex.split(line[len(name) + 1:])[0]
    raise KeyError(name)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def login(user: str) -> str:
    """Basic header with the user's right password."""
    return basic(user, PASSWORDS[user])


def client_as(url: str, authorization: str | None) -> Client:
    """A Client that sends `authorization` on every request (None: anonymous)."""
    c = Client(url)
    if authorization:
        c.session.headers["Authorization"] = authorization
    return c


def token_response(client: Client, scopes, authorization: str | None = None) -> requests.Response:
    """GET /token?service=edge-registry&scope=... with the given Authorization (or none)."""
    params = [("service", SERVICE)] + [("scope", s) for s in scopes]
    headers = {"Authorization": authorization} if authorization else {}
    return client.get("/token", params=params, headers=headers)


def bearer_token(client: Client, scopes, authorization: str | None = None) -> str:
    resp = expect_status(token_response(client, scopes, authorization), 200)
    body = resp.json()
    assert body["token"] == body["access_token"], body
    return body["token"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token: str) -> tuple[dict, dict]:
    """(header, claims) of a compact JWT, unverified."""
    head, payload, _sig = token.split(".")
    return json.loads(unb64url(head)), json.loads(unb64url(payload))


def sign_jwt(claims: dict, key: bytes | None = None, header: dict | None = None) -> str:
    """An HS256 JWT over claims, by default with the instance's own signing key."""
    key = dev_var("AUTH_TOKEN_SECRET").encode() if key is None else key
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{head}.{b64url(json.dumps(claims).encode())}"
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


CHALLENGE_RE = re.compile(
    r'Bearer realm="(?P<realm>[^"]+)",service="(?P<service>[^"]+)"(?:,scope="(?P<scope>[^"]+)")?'
    r'(?:,error="(?P<error>[a-z_]+)")?')


def challenge(resp: requests.Response) -> dict:
    """The parsed `WWW-Authenticate: Bearer ...` of a 401 (realm, service, scope, error)."""
    value = resp.headers.get("WWW-Authenticate", "")
    m = CHALLENGE_RE.fullmatch(value)
    assert m, f"malformed challenge {value!r} ({resp.status_code} {resp.url})"
    return m.groupdict()


def create_access_token(client: Client, access: list, name: str = "ci", days: int = 7) -> dict:
    """POST /auth/tokens as admin; returns the 201 body (id, token, name, access, ...)."""
    body = {"name": name, "access": access, "expires_in_days": days}
    resp = client.post("/auth/tokens", json=body, headers={"Authorization": login("admin")})
    expect_status(resp, 201)
    created = resp.json()
    assert re.fullmatch(rf"ert_{re.escape(created['id'])}_[0-9a-f]+", created["token"]), created
    return created


def revoke_access_token(client: Client, token_id: str) -> requests.Response:
    return client.delete(f"/auth/tokens/{token_id}", headers={"Authorization": login("admin")})
