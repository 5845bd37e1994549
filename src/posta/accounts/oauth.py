"""OAuth2 sign-in rules: providers, the pending sign-in, and the tokens it yields.

The network half (building the authorization URL with Authlib, exchanging the
code, refreshing, revoking) is posta.remote's, which this app may not import: it
hands an `OAuthClient` over in RemoteConfig.ready() (`register_oauth_client`), as it
does the connection probe. Everything here is rules and rows.

The flow (RFC 6749 §4.1 with PKCE, RFC 7636): `do_start_signin` makes a state and
a code verifier kept in the user's session, and the URL to send the browser to;
the provider sends the browser back with `code` and `state`; `check_finish_signin`
checks the state against the session's (RFC 6749 §10.12: a state not bound to the
session lets an attacker plant their own account) and exchanges the code.
"""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posta.accounts.errors import connection_error_message
from posta.accounts.models import Account, OAuthProvider, OAuthToken
from posta.core.crypto import seal, unseal
from posta.core.errors import PostaError
from posta.mailproto.errors import MailError

Kind = OAuthProvider.Kind
SESSION_KEY = "posta_oauth_pending"
# How long a sign-in may take, from the click to the provider's answer.
PENDING_FOR = timedelta(minutes=15)

GOOGLE_SCOPES = "https://mail.google.com/ openid email"
MICROSOFT_SCOPES = (
    "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send "
    "offline_access openid email"
)

# The values of the providers' discovery documents
# (accounts.google.com/.well-known/openid-configuration and
# login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration).
DEFAULTS: dict[str, dict[str, str]] = {
    Kind.GOOGLE: {
        "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_endpoint": "https://oauth2.googleapis.com/token",
        "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
        "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
        "scopes": GOOGLE_SCOPES,
        "tenant": "",
    },
    Kind.MICROSOFT: {
        "authorization_endpoint": (
            "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
        ),
        "token_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        # Microsoft's identity platform offers no RFC 7009 revocation endpoint.
        "revocation_endpoint": "",
        "userinfo_endpoint": "",
        "scopes": MICROSOFT_SCOPES,
        "tenant": "common",
    },
    Kind.CUSTOM: {
        "authorization_endpoint": "",
        "token_endpoint": "",
        "revocation_endpoint": "",
        "userinfo_endpoint": "",
        "scopes": "openid email offline_access",
        "tenant": "",
    },
}

# Which provider an account type signs in with; every other type (Custom, an
# administrator's server) uses the custom provider.
PRESET_PROVIDERS = {"gmail": Kind.GOOGLE, "office365": Kind.MICROSOFT}


@dataclass(frozen=True)
class TokenGrant:
    """What a token endpoint answered (RFC 6749 §5.1), plus the user name the ID
    token or the userinfo endpoint gave ("" when neither did)."""

    access_token: str
    refresh_token: str
    expires_in: int | None
    scope: str
    username: str = ""

    def __repr__(self) -> str:
        # Never let a token reach a log line through repr().
        return f"TokenGrant(expires_in={self.expires_in}, username={self.username!r})"


class OAuthClient(Protocol):
    """The network half of sign-in, provided by posta.remote.oauth."""

    def authorization_url(
        self, provider: OAuthProvider, *, redirect_uri: str, state: str, code_verifier: str
    ) -> str: ...

    def exchange(
        self, provider: OAuthProvider, *, code: str, code_verifier: str, redirect_uri: str
    ) -> TokenGrant: ...

    def revoke(self, provider: OAuthProvider, token: str) -> bool: ...


_client: list[OAuthClient] = []


def register_oauth_client(client: OAuthClient) -> None:
    """Make `client` the network half of sign-in (posta.remote does, at start)."""
    _client[:] = [client]


def oauth_client() -> OAuthClient:
    if not _client:
        raise RuntimeError("no OAuth2 client registered (is posta.remote installed?)")
    return _client[0]


# ----------------------------------------------------------------- providers


def load_provider(kind: str) -> OAuthProvider:
    """The provider row of `kind`, or one with its defaults, unsaved (reading the
    settings never writes)."""
    found = OAuthProvider.objects.filter(kind=kind).first()
    if found is not None:
        return found
    return OAuthProvider(kind=kind, **DEFAULTS[kind])


def provider_kind_for(account: Account) -> str:
    return PRESET_PROVIDERS.get(account.preset, Kind.CUSTOM)


def configured_providers() -> dict[str, OAuthProvider]:
    """The providers an administrator has set up, by kind."""
    return {p.kind: p for p in OAuthProvider.objects.all() if p.configured}


def signin_origins() -> list[str]:
    """The origins (scheme://host[:port]) of the configured authorization
    endpoints: where a sign-in sends the browser."""
    origins = []
    for provider in configured_providers().values():
        parts = urlsplit(provider.endpoint(provider.authorization_endpoint))
        if parts.scheme in {"http", "https"} and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins


def do_save_provider(provider: OAuthProvider, *, client_secret: str | None) -> None:
    """Save the provider; `client_secret` None keeps the stored one, "" removes it."""
    if client_secret is not None:
        provider.client_secret_secret = seal(client_secret) if client_secret else ""
    provider.save()


# -------------------------------------------------------------------- sign-in


def not_configured(kind: str) -> PostaError:
    return PostaError(
        "oauth2_not_configured",
        _("Sign-in with %(provider)s has not been set up: an administrator must set it up first.")
        % {"provider": load_provider(kind).display_name},
        field="auth_method",
    )


def do_start_signin(
    session: MutableMapping[str, Any],
    *,
    kind: str,
    redirect_uri: str,
    account_id: int | None,
    form_data: dict[str, str] | None,
) -> str:
    """Remember a sign-in in the user's session and return the provider's URL.

    `account_id` is the account signing in again (None for a new one);
    `form_data` the Account tab's fields to save once signed in (None: keep the
    account's settings as they are).
    """
    provider = load_provider(kind)
    if not provider.configured:
        raise not_configured(kind)
    state = secrets.token_urlsafe(32)
    # RFC 7636 §4.1: 43 to 128 characters of [A-Z a-z 0-9 - . _ ~].
    verifier = secrets.token_urlsafe(64)
    session[SESSION_KEY] = {
        "state": state,
        "verifier": verifier,
        "kind": kind,
        "account_id": account_id,
        "form": form_data,
        "redirect_uri": redirect_uri,
        "started": timezone.now().isoformat(),
    }
    return oauth_client().authorization_url(
        provider, redirect_uri=redirect_uri, state=state, code_verifier=verifier
    )


@dataclass(frozen=True)
class FinishedSignin:
    """A sign-in the provider confirmed: the tokens, and what it was started for."""

    grant: TokenGrant
    kind: str
    account_id: int | None
    form_data: dict[str, str] | None


def check_finish_signin(
    session: MutableMapping[str, Any], *, state: str, code: str, error: str
) -> FinishedSignin:
    """Check the provider's answer against the session's sign-in and exchange the
    code for tokens (a network call, through the registered client). The pending
    sign-in is used up whatever happens: a state works once."""
    pending = session.pop(SESSION_KEY, None)
    if not isinstance(pending, dict) or not state or not secrets.compare_digest(
        str(pending.get("state", "")), state
    ):
        raise PostaError(
            "oauth2_state",
            _("This sign-in was not started here, or it was already used: start it again."),
        )
    started = datetime.fromisoformat(str(pending["started"]))
    if timezone.now() - started > PENDING_FOR:
        raise PostaError("oauth2_expired", _("The sign-in took too long: start it again."))
    if error or not code:
        raise PostaError(
            "oauth2_denied",
            _("The provider did not grant access (%(error)s): nothing was changed.")
            % {"error": error[:100] or "no code"},
        )
    provider = load_provider(str(pending["kind"]))
    try:
        grant = oauth_client().exchange(
            provider,
            code=code,
            code_verifier=str(pending["verifier"]),
            redirect_uri=str(pending["redirect_uri"]),
        )
    except MailError as exc:
        raise PostaError(
            "oauth2_exchange_failed",
            _("Signing in with %(provider)s did not finish: %(reason)s")
            % {
                "provider": provider.display_name,
                "reason": connection_error_message(
                    exc.code, protocol="https", host=provider.display_name
                ),
            },
        ) from exc
    if not grant.access_token:
        raise PostaError("oauth2_denied", _("The provider answered without an access token."))
    account_id = pending.get("account_id")
    return FinishedSignin(
        grant=grant,
        kind=provider.kind,
        account_id=int(account_id) if account_id is not None else None,
        form_data=pending.get("form"),
    )


# --------------------------------------------------------------------- tokens


def do_store_tokens(account: Account, kind: str, grant: TokenGrant) -> OAuthToken:
    """Seal and store the tokens of `account` (saved); a grant without a refresh
    token keeps the one stored (RFC 6749 §6: the server may not issue a new one)."""
    token, _created = OAuthToken.objects.get_or_create(account=account, defaults={"provider": kind})
    token.provider = kind
    token.access_secret = seal(grant.access_token)
    if grant.refresh_token:
        token.refresh_secret = seal(grant.refresh_token)
    token.expires_at = (
        timezone.now() + timedelta(seconds=grant.expires_in) if grant.expires_in else None
    )
    token.scope = grant.scope[:1000]
    token.refreshed_at = timezone.now()
    token.refresh_owner = ""
    token.refresh_until = None
    token.save()
    return token


def check_resume_after_signin(account: Account, finished: FinishedSignin) -> None:
    """Signed in again: the same mailbox (when the provider named the user), then
    new tokens, the error gone and the account synced again."""
    named = finished.grant.username
    if named and named.lower() != account.username.lower():
        raise PostaError(
            "oauth2_other_user",
            _("You signed in as %(named)s, but this account is %(account)s: nothing was changed.")
            % {"named": named, "account": account.username},
        )
    do_resume_after_signin(account, finished.kind, finished.grant)


@transaction.atomic
def do_resume_after_signin(account: Account, kind: str, grant: TokenGrant) -> None:
    """New tokens, the error gone, the account synced again (its waiting mail
    leaves with the next sweep)."""
    do_store_tokens(account, kind, grant)
    Account.objects.filter(pk=account.pk).update(
        auth_method=Account.AuthMethod.OAUTH2,
        sync_state=Account.SyncState.NEW,
        last_error_code="",
        last_error_detail="",
        last_error_at=None,
        sync_requested_at=timezone.now(),
    )


def signin_needed(edited: Account, stored: Account | None) -> bool:
    """Whether saving `edited` (the form's account; `stored` its row, None when
    new) must go through the provider first: an OAuth2 account not signed in yet,
    or signed in with another provider than its type now uses."""
    if edited.auth_method != Account.AuthMethod.OAUTH2:
        return False
    if stored is None or stored.auth_method != Account.AuthMethod.OAUTH2:
        return True
    token = OAuthToken.objects.filter(account=stored).first()
    return (
        token is None
        or token.provider != provider_kind_for(edited)
        or needs_signin_again(stored)
    )


def needs_signin_again(account: Account) -> bool:
    return account.auth_method == Account.AuthMethod.OAUTH2 and (
        account.last_error_code in {"oauth2_signin_required", "auth_failed"}
        or not OAuthToken.objects.filter(account=account).exists()
    )


def do_revoke_signin(account: Account) -> bool:
    """Revoke the account's refresh token at its provider (RFC 7009), where the
    provider has a revocation endpoint; True when it confirmed. Never raises."""
    token = OAuthToken.objects.filter(account_id=account.pk).first()
    if token is None or not token.refresh_secret:
        return False
    provider = load_provider(token.provider)
    if not provider.revocation_endpoint:
        return False
    try:
        refresh_token = unseal(token.refresh_secret)
    except PostaError:
        return False
    return oauth_client().revoke(provider, refresh_token)
