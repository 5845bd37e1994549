"""The network half of OAuth2 sign-in, built on Authlib's RFC 6749 / 7636 parts.

Registered into posta.accounts.oauth by RemoteConfig.ready(): the authorization URL
(code flow with PKCE S256, RFC 7636 §4.2), the code-for-token exchange (RFC 6749
§4.1.3), refresh (§6), revocation (RFC 7009) and the user name from the ID token
(OpenID Connect Core §2) or the userinfo endpoint.

Requests go to the endpoints the administrator configured (on-premise servers
included: an administrator's setting, not a user's, so the address guard for
user-typed hosts does not apply), with POSTA_NETWORK_TIMEOUT and the extra CA file.
Failures are MailErrors, judged by the failure table like any login: a refused
grant (RFC 6749 §5.2 `invalid_grant`, a revoked or expired refresh token) is the
account's (SignInRequired, ACCOUNT: "Sign in again"); an unreachable or failing
server is retried. Tokens are never logged nor put into an error's detail.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.conf import settings

from posta.accounts.models import OAuthProvider
from posta.accounts.oauth import TokenGrant
from posta.core.crypto import unseal
from posta.mailproto import errors

log = logging.getLogger(__name__)

# Google hands out a refresh token only when asked for offline access, and again
# on a second sign-in only with the consent screen shown.
_EXTRA_AUTHORIZE: dict[str, dict[str, str]] = {
    OAuthProvider.Kind.GOOGLE: {"access_type": "offline", "prompt": "consent"},
}
_MAX_ANSWER = 1_000_000


class SignInRequired(errors.SettingsRefused):
    """The provider refused the stored grant (revoked, password changed, consent
    withdrawn, expired): only the user signing in again can fix it."""

    code = "oauth2_signin_required"


class ProviderRefused(errors.SettingsRefused):
    """The provider refused a request for a reason other than the grant (a wrong
    client id or secret, a redirect URI not registered): the administrator's
    settings must change, so the work waits for them (ACCOUNT)."""

    code = "oauth2_refused"


def authorization_url(
    provider: OAuthProvider, *, redirect_uri: str, state: str, code_verifier: str
) -> str:
    """Where to send the browser: RFC 6749 §4.1.1 with the S256 code challenge."""
    uri: str = prepare_grant_uri(
        provider.endpoint(provider.authorization_endpoint),
        provider.client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=provider.scopes,
        state=state,
        code_challenge=create_s256_code_challenge(code_verifier),
        code_challenge_method="S256",
        **_EXTRA_AUTHORIZE.get(provider.kind, {}),
    )
    return uri


def exchange(
    provider: OAuthProvider, *, code: str, code_verifier: str, redirect_uri: str
) -> TokenGrant:
    """The tokens for an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    answer = _token_request(
        provider,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        },
    )
    grant = _grant(answer)
    username = _id_token_username(str(answer.get("id_token", "")))
    if not username and provider.userinfo_endpoint:
        username = _userinfo_username(provider, grant.access_token)
    return TokenGrant(
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_in=grant.expires_in,
        scope=grant.scope,
        username=username,
    )


def refresh(provider: OAuthProvider, refresh_token: str) -> TokenGrant:
    """New tokens for a refresh token (RFC 6749 §6); SignInRequired when refused."""
    if not refresh_token:
        raise SignInRequired(f"{provider.kind}: no refresh token stored")
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if provider.kind == OAuthProvider.Kind.MICROSOFT:
        # Microsoft's v2 endpoint wants the scopes again; RFC 6749 §6 makes them
        # optional (the grant's own by default), so others get none.
        form["scope"] = provider.scopes
    return _grant(_token_request(provider, form))


def revoke(provider: OAuthProvider, token: str) -> bool:
    """Revoke `token` (a refresh token: RFC 7009 §2.1 revokes its access tokens
    too) where the provider offers it; True when it answered 200. Never raises."""
    if not provider.revocation_endpoint or not token:
        return False
    try:
        _post(
            provider,
            provider.endpoint(provider.revocation_endpoint),
            {"token": token, "token_type_hint": "refresh_token"},
        )
    except errors.MailError as exc:
        log.warning("%s: revocation failed (%s)", provider.kind, exc.code)
        return False
    return True


# ------------------------------------------------------------------ internals


class OAuthClient:
    """The object registered into posta.accounts.oauth (its OAuthClient protocol)."""

    authorization_url = staticmethod(authorization_url)
    exchange = staticmethod(exchange)
    revoke = staticmethod(revoke)


def _token_request(provider: OAuthProvider, form: dict[str, str]) -> dict[str, Any]:
    return _post(provider, provider.endpoint(provider.token_endpoint), form)


def _client_auth(provider: OAuthProvider, form: dict[str, str]) -> dict[str, str]:
    """RFC 6749 §2.3.1: client_secret_basic for confidential clients; a public
    client (no secret, PKCE only) names itself in the body."""
    secret = unseal(provider.client_secret_secret) if provider.client_secret_secret else ""
    if not secret:
        form["client_id"] = provider.client_id
        return {}
    pair = f"{_form_quote(provider.client_id)}:{_form_quote(secret)}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}


def _form_quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@functools.lru_cache(maxsize=4)
def _context(ca_file: str | None) -> ssl.SSLContext:
    # Loading the system's CA store takes a good part of a second: once per file.
    return ssl.create_default_context(cafile=ca_file)


def _post(provider: OAuthProvider, url: str, form: dict[str, str]) -> dict[str, Any]:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        **_client_auth(provider, form),
    }
    body = urllib.parse.urlencode(form).encode()
    return _send(_request(url, data=body, headers=headers))


def _request(
    url: str, *, headers: dict[str, str], data: bytes | None = None
) -> urllib.request.Request:
    """A request to an http(s) endpoint only: never file: or another scheme."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise ProviderRefused(f"{parts.hostname or '?'}: not an http(s) endpoint")
    method = "POST" if data is not None else "GET"
    return urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        url, data=data, headers=headers, method=method
    )


def _send(request: urllib.request.Request) -> dict[str, Any]:
    host = urllib.parse.urlsplit(request.full_url).hostname or "?"
    https = urllib.parse.urlsplit(request.full_url).scheme == "https"
    context = _context(settings.POSTA_EXTRA_CA_FILE or None) if https else None
    try:
        with urllib.request.urlopen(  # noqa: S310 - _request allows http(s) only
            request, timeout=float(settings.POSTA_NETWORK_TIMEOUT), context=context
        ) as response:
            raw = response.read(_MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        raise _http_error(exc, host) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, socket.timeout | TimeoutError):
            raise errors.ConnectTimeout(f"{host}: no answer in time") from None
        raise errors.TemporaryNetworkError(f"{host}: {type(reason).__name__}") from None
    if not raw.strip():
        return {}
    try:
        answer = json.loads(raw)
    except ValueError:
        raise errors.ProtocolError(f"{host}: the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise errors.ProtocolError(f"{host}: the answer is not a JSON object")
    return answer


def _http_error(exc: urllib.error.HTTPError, host: str) -> errors.MailError:
    """RFC 6749 §5.2: the error code decides. invalid_grant means the grant itself
    is gone; a 5xx or 429 is the server's trouble, retried."""
    if exc.code >= 500 or exc.code == 429:
        return errors.ServerBusy(f"{host}: HTTP {exc.code}")
    try:
        error = str(json.loads(exc.read(_MAX_ANSWER) or b"{}").get("error", ""))
    except (ValueError, AttributeError, OSError):
        error = ""
    if error == "invalid_grant":
        return SignInRequired(f"{host}: invalid_grant")
    return ProviderRefused(f"{host}: HTTP {exc.code} {error[:80]}".strip())


def _grant(answer: dict[str, Any]) -> TokenGrant:
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise errors.ProtocolError("the token endpoint sent no access token")
    expires = answer.get("expires_in")
    try:
        expires_in = int(expires) if expires is not None else None
    except (TypeError, ValueError):
        expires_in = None
    return TokenGrant(
        access_token=access,
        refresh_token=str(answer.get("refresh_token") or ""),
        expires_in=expires_in,
        scope=str(answer.get("scope") or ""),
    )


def _claims_username(claims: dict[str, Any]) -> str:
    for name in ("email", "preferred_username", "upn", "username"):
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _id_token_username(id_token: str) -> str:
    """The user name in an ID token. It came straight from the token endpoint over
    TLS, which OpenID Connect Core §3.1.3.7 accepts in place of checking the
    signature; it only fills in the user name, which the mail server checks."""
    parts = id_token.split(".")
    if len(parts) != 3:
        return ""
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:
        return ""
    return _claims_username(claims) if isinstance(claims, dict) else ""


def _userinfo_username(provider: OAuthProvider, access_token: str) -> str:
    try:
        request = _request(
            provider.endpoint(provider.userinfo_endpoint),
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        return _claims_username(_send(request))
    except errors.MailError as exc:
        log.info("%s: userinfo unavailable (%s)", provider.kind, exc.code)
        return ""
