"""From an account to its connections: IMAP opened, SMTP settings built.

Every connection goes to the address the guard allowed (posta.core.netguard: users
must not aim Posta at internal machines, DESIGN §7), resolved once and pinned, with
the certificate still checked for the host name. Secrets are unsealed here and
nowhere else; an OAuth2 token refresh belongs here too. Raises MailError
subclasses only.
"""

from __future__ import annotations

import smtplib
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from imapclient import IMAPClient

from posta.accounts.models import Account, CompanySettings
from posta.accounts.presets import PRESETS
from posta.core.netguard import GuardError, resolve_allowed
from posta.mailproto import errors
from posta.mailproto.imap.client import ImapSettings, close_quietly, connect
from posta.mailproto.imap.session import Session
from posta.mailproto.smtp.client import SmtpSettings
from posta.mailproto.smtp.client import connect as smtp_connect
from posta.remote.sealed import SecretUnreadable, unsealed
from posta.remote.tokens import access_token, expire_access_token

__all__ = ["Endpoint", "HostRefused", "SecretUnreadable", "endpoint", "unsealed"]


class HostRefused(errors.SettingsRefused):
    """The account's host is an internal address not in the allow list."""

    code = "host_not_allowed"


def pinned_address(host: str, port: int) -> str:
    """The address `host` resolves to, if the guard allows it with the company's
    allow list: HostNotFound or HostRefused otherwise."""
    allowed = CompanySettings.load().allowed_hosts_list()
    try:
        return resolve_allowed(host, port, allowed=allowed)
    except GuardError as exc:
        if exc.code == "host_not_found":
            raise errors.HostNotFound(exc.detail) from exc
        raise HostRefused(exc.detail) from exc


@dataclass(frozen=True)
class Endpoint:
    """Where a protocol client connects, as its settings dataclass names it: the
    host as typed (TLS's SNI and the certificate's name), the port, the address
    the guard allowed, and the company's timeout and extra CA file."""

    host: str
    port: int
    address: str
    timeout: float
    ca_file: str | None

    def fields(self) -> dict[str, Any]:
        """Keyword arguments for ImapSettings, SmtpSettings, Pop3Settings,
        SieveSettings."""
        return asdict(self)


def endpoint(host: str, port: int, *, address: str | None = None) -> Endpoint:
    """The guarded endpoint of `host`:`port` (pinned_address: HostNotFound or
    HostRefused when the guard says no); `address` when the caller pinned it
    already (a login tried twice connects to the same address)."""
    host = host.strip()
    return Endpoint(
        host=host,
        port=port,
        address=address or pinned_address(host, port),
        timeout=float(settings.POSTA_NETWORK_TIMEOUT),
        ca_file=settings.POSTA_EXTRA_CA_FILE or None,
    )


def is_oauth(account: Account) -> bool:
    return account.auth_method == Account.AuthMethod.OAUTH2


def imap_settings(account: Account, *, password: str, address: str) -> ImapSettings:
    """The IMAP login of `account` with `password`, which for OAuth2 accounts is
    the access token (posta.remote.tokens.access_token), to the pinned `address`."""
    oauth = is_oauth(account)
    return ImapSettings(
        security=account.imap_security,
        username=account.username,
        password="" if oauth else password,
        oauth2_token=password if oauth else "",
        **endpoint(account.imap_host, account.imap_port, address=address).fields(),
    )


def open_account(account: Account) -> IMAPClient:
    """A logged-in IMAPClient for `account`, to the address the guard allowed.

    For the sync, which starts its own Session (with or without CONDSTORE);
    everyone else calls `open_imap`. Raises MailError subclasses only.
    """
    address = pinned_address(account.imap_host.strip(), account.imap_port)
    if is_oauth(account):
        client = _token_login(account, address)
    else:
        password = unsealed(account.password_secret)
        client = connect(imap_settings(account, password=password, address=address))
    # Aware datetimes for INTERNALDATE, never the machine's local time.
    client.normalise_times = False
    return client


def _token_login(account: Account, address: str) -> IMAPClient:
    """Log in with a current access token. A token refused while it should still
    be good (revoked early, a clock off) is refreshed once and tried again; a
    refused refresh is SignInRequired (posta.remote.tokens)."""
    try:
        return connect(imap_settings(account, password=access_token(account), address=address))
    except errors.AuthenticationFailed:
        expire_access_token(account.pk)
    return connect(imap_settings(account, password=access_token(account), address=address))


def open_imap(account: Account) -> Session:
    """The IMAP session of `account`: logged in, extensions enabled, capability
    flags known. The caller closes it with `close(session)`."""
    return Session.start(open_account(account))


def close(session: Session) -> None:
    """LOGOUT, or drop the socket; never raises."""
    close_quietly(session.client)


def smtp_host_of(account: Account) -> str:
    """The SMTP server of an account, the one rule for sending and the test: its
    own `smtp_host`, else its administrator-defined server's, else its preset's,
    else the IMAP host (one-box servers)."""
    if account.smtp_host.strip():
        return account.smtp_host.strip()
    if account.server_id is not None and account.server is not None:
        return account.server.smtp_host.strip()
    preset = PRESETS.get(account.preset)
    if preset is not None:
        return preset.smtp_host
    return account.imap_host.strip()


def smtp_settings(account: Account, *, password: str | None = None) -> SmtpSettings:
    """How to reach the account's SMTP server (a shared sender: its own).

    `password` overrides the stored secret (the account form's unsaved input);
    by default the SMTP password, or the IMAP one when no SMTP password is stored.
    For OAuth2 accounts it is the access token, by default a current one.
    """
    where = endpoint(smtp_host_of(account), account.smtp_port)
    oauth = is_oauth(account)
    if password is None:
        if oauth:
            password = access_token(account)
        else:
            password = unsealed(account.smtp_password_secret or account.password_secret)
    return SmtpSettings(
        security=account.smtp_security,
        username=account.effective_smtp_username,
        password="" if oauth else password,
        auth_required=account.smtp_auth,
        oauth2_token=password if oauth else "",
        **where.fields(),
    )


def open_smtp(account: Account) -> tuple[smtplib.SMTP, SmtpSettings]:
    """A logged-in SMTP session of `account`, and the settings it used. For an
    OAuth2 account, a token refused while it should still be good is refreshed
    once and tried again, as for IMAP. Raises MailError subclasses only."""
    config = smtp_settings(account)
    try:
        return smtp_connect(config), config
    except errors.AuthenticationFailed:
        if not is_oauth(account) or not config.auth_required:
            raise
        expire_access_token(account.pk)
    config = smtp_settings(account)
    return smtp_connect(config), config
