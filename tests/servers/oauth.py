"""A local OAuth2 authorization server on 127.0.0.1, built with Authlib's server parts.

It stands in for Google's and Microsoft's servers, the one edge that cannot run here:
an authorization endpoint with a login and consent page (``/authorize``), a token
endpoint with the authorization code grant (PKCE required, RFC 7636) and refresh
(rotating refresh tokens), introspection (RFC 7662, ``/introspect``, which the test
Dovecot and the test SMTP server ask), revocation (RFC 7009, ``/revoke``) and a
userinfo endpoint (``/userinfo``). Served by the standard library's HTTP server in a
thread; state lives in memory.

Test hooks: ``add_user``, ``add_client``, ``issue``, ``expire_access_tokens``,
``revoke_access_tokens``, ``revoke_refresh_tokens``, ``refresh_delay``, and the
records ``grants`` (every token request's grant type) and ``revoked`` (tokens revoked
through the endpoint).
"""

from __future__ import annotations

import html
import json
import os
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Loopback only, so plain http is fine; Authlib refuses it without this.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from . import net

TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


@dataclass
class User:
    name: str

    def get_user_id(self) -> str:
        return self.name


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        return scope  # every scope asked for (the test provider grants all)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.client_secret) and secrets.compare_digest(
            self.client_secret, client_secret
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == "none":
            return not self.client_secret
        return bool(self.client_secret)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in {"authorization_code", "refresh_token"}


@dataclass
class AuthCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class Token(TokenMixin):  # type: ignore[misc]
    client_id: str
    user: User
    access_token: str
    refresh_token: str
    scope: str
    expires_in: int
    issued_at: float = field(default_factory=time.time)
    access_revoked: bool = False
    refresh_revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.access_revoked

    def get_user(self) -> User:
        return self.user

    def get_client(self) -> Any:
        return None


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, uri: str, headers: dict[str, str], form: dict[str, str],
                 args: dict[str, str]) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._form = form
        self._args = args
        self.payload = BasicOAuth2Payload({**args, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    """The running server; see the module docstring. Stop it with ``stop()``."""

    host = net.HOST

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.users: dict[str, str] = {}
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthCode] = {}
        self.by_access: dict[str, Token] = {}
        self.by_refresh: dict[str, Token] = {}
        self.grants: list[str] = []
        self.revoked: list[str] = []
        self.access_token_lifetime = 3600
        self.refresh_delay = 0.0  # seconds a refresh takes (for the concurrency test)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                lambda *a, **k: generate_token(40),
                lambda *a, **k: generate_token(48),
                lambda client, grant_type: self.access_token_lifetime,
            ),
        )
        self.register_grant(_CodeGrant, [CodeChallenge(required=True)])
        self.register_grant(_RefreshGrant)
        self.register_endpoint(_Introspection)
        self.register_endpoint(_Revocation)
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------- test hooks

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_user(self, name: str, password: str) -> None:
        with self.lock:
            self.users[name] = password

    def add_client(self, client_id: str, client_secret: str = "",
                   redirect_uris: list[str] | None = None) -> Client:
        """Register a client; ``client_secret`` "" makes it public (PKCE only)."""
        with self.lock:
            client = Client(client_id, client_secret, list(redirect_uris or []))
            self.clients[client_id] = client
            return client

    def issue(self, client_id: str, user: str, *, expires_in: int | None = None) -> Token:
        """Tokens for ``user`` as if they had signed in (for tests that start signed in)."""
        with self.lock:
            token = Token(
                client_id=client_id,
                user=User(user),
                access_token=generate_token(40),
                refresh_token=generate_token(48),
                scope="",
                expires_in=self.access_token_lifetime if expires_in is None else expires_in,
            )
            self._store(token)
            return token

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on."""
        with self.lock:
            for token in self.by_access.values():
                token.issued_at = time.time() - token.expires_in - 1

    def revoke_access_tokens(self, user: str | None = None) -> None:
        """Access tokens (of ``user``, or everyone's) stop working before their time;
        refresh tokens keep working."""
        with self.lock:
            for token in self.by_access.values():
                if user is None or token.user.name == user:
                    token.access_revoked = True

    def revoke_refresh_tokens(self, user: str | None = None) -> None:
        """Withdraw the grants (of ``user``, or everyone's): refresh and access tokens
        stop working, as when consent is withdrawn or the password is changed."""
        with self.lock:
            for token in self.by_refresh.values():
                if user is None or token.user.name == user:
                    token.refresh_revoked = token.access_revoked = True

    def refresh_count(self) -> int:
        with self.lock:
            return self.grants.count("refresh_token")

    # ---------------------------------------------------- Authlib's server hooks

    def query_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self._store(Token(
            client_id=request.client.client_id,
            user=request.user,
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token", ""),
            scope=token.get("scope", ""),
            expires_in=int(token["expires_in"]),
        ))

    def _store(self, token: Token) -> None:
        self.by_access[token.access_token] = token
        if token.refresh_token:
            self.by_refresh[token.refresh_token] = token

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    # ---------------------------------------------------------------- serving

    def start(self) -> None:
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class _CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        self.server.codes[code] = AuthCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=data.get("redirect_uri", ""),
            scope=data.get("scope", ""),
            user=request.user,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
        found = self.server.codes.get(code)
        return found if found is not None and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        self.server.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthCode) -> User:
        return authorization_code.user


class _RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: each refresh token works once

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        token = self.server.by_refresh.get(refresh_token)
        return token if token is not None and not token.refresh_revoked else None

    def authenticate_user(self, refresh_token: Token) -> User:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.refresh_revoked = True


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.server.by_access.get(token_string)

    def check_permission(self, token: Token, client: Client, request: OAuth2Request) -> bool:
        return True  # any registered client (the mail servers) may introspect

    def introspect_token(self, token: Token) -> dict[str, Any]:
        return {
            "active": True,
            "client_id": token.client_id,
            "token_type": "Bearer",
            "username": token.user.name,
            "email": token.user.name,
            "scope": token.scope,
            "exp": int(token.issued_at + token.expires_in),
            "iat": int(token.issued_at),
        }


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.server.by_refresh.get(token_string) or self.server.by_access.get(token_string)

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        # RFC 7009 §2.1: revoking a refresh token revokes the access tokens of its grant.
        token.refresh_revoked = token.access_revoked = True
        self.server.revoked.append(request.form["token"])


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Test sign-in</title></head><body><h1>Sign in to the test provider</h1>
<p>{client} asks for access to your mail ({scope}).</p>{error}
<form method="post" action="/authorize">{hidden}
<label>User name <input name="username" id="username"></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    server_owner: OAuthServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _request(self) -> _Request:
        parts = urllib.parse.urlsplit(self.path)
        args = dict(urllib.parse.parse_qsl(parts.query))
        form: dict[str, str] = {}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        uri = f"{self.server_owner.url}{self.path}"
        return _Request(self.command, uri, dict(self.headers.items()), form, args)

    def _answer(self, status: int, body: Any, headers: Any) -> None:
        self.send_response(status)
        for name, value in headers or []:
            self.send_header(name, value)
        data = body if isinstance(body, bytes) else (
            json.dumps(body) if isinstance(body, dict) else str(body or "")
        ).encode()
        if not any(name.lower() == "content-type" for name, _v in headers or []):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        owner = self.server_owner
        request = self._request()
        path = urllib.parse.urlsplit(self.path).path
        with owner.lock:
            if path == "/authorize":
                self._consent_page(request, error="")
            elif path == "/userinfo":
                bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
                token = owner.by_access.get(bearer)
                if token is None or token.is_expired() or token.is_revoked():
                    self._answer(401, {"error": "invalid_token"}, [])
                else:
                    self._answer(200, {"sub": token.user.name, "email": token.user.name}, [])
            else:
                self._answer(404, {"error": "not_found"}, [])

    def _consent_page(self, request: _Request, *, error: str) -> None:
        owner = self.server_owner
        try:
            owner.get_consent_grant(request)
        except OAuth2Error as exc:
            self._answer(400, {"error": exc.error, "error_description": exc.description}, [])
            return
        params = {**request.args, **{k: v for k, v in request.form.items()
                                       if k not in {"username", "password", "decision"}}}
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        page = _PAGE.format(
            client=html.escape(params.get("client_id", "")),
            scope=html.escape(params.get("scope", "")),
            hidden=hidden,
            error=f'<p id="error">{html.escape(error)}</p>' if error else "",
        )
        self._answer(200, page.encode(), [("Content-Type", "text/html; charset=utf-8")])

    def do_POST(self) -> None:
        owner = self.server_owner
        request = self._request()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/token" and owner.refresh_delay and request.form.get(
            "grant_type"
        ) == "refresh_token":
            time.sleep(owner.refresh_delay)  # outside the lock: requests may overlap
        with owner.lock:
            if path == "/authorize":
                self._decide(request)
            elif path == "/token":
                owner.grants.append(request.form.get("grant_type", ""))
                self._answer(*owner.create_token_response(request))
            elif path == "/introspect":
                self._answer(*owner.create_endpoint_response("introspection", request))
            elif path == "/revoke":
                self._answer(*owner.create_endpoint_response("revocation", request))
            else:
                self._answer(404, {"error": "not_found"}, [])

    def _decide(self, request: _Request) -> None:
        owner = self.server_owner
        grant_user = None
        if request.form.get("decision") == "allow":
            name = request.form.get("username", "")
            if owner.users.get(name) != request.form.get("password") or not name:
                self._consent_page(request, error="Wrong user name or password.")
                return
            grant_user = User(name)
        grant = owner.get_consent_grant(request)
        self._answer(*owner.create_authorization_response(request, grant_user=grant_user,
                                                          grant=grant))


def start_oauth_server() -> OAuthServer:
    """Start the authorization server and return it running; the caller must ``stop()`` it."""
    server = OAuthServer()
    server.start()
    return server
