"""From an account to its connections: IMAP opened, SMTP settings built.

Every connection goes to the address the guard allowed (posta.core.netguard: users
must not aim Posta at internal machines, DESIGN §7), resolved once and pinned, with
the certificate still checked for the host name. Secrets are unsealed here and
nowhere else; an OAuth2 token refresh belongs here too. Raises MailError
subclasses only.
"""

from __future__ import annotations

from django.conf import settings
from imapclient import IMAPClient

from posta.accounts.models import Account, CompanySettings
from posta.accounts.presets import PRESETS
from posta.core.crypto import unseal
from posta.core.errors import PostaError
from posta.core.netguard import GuardError, resolve_allowed
from posta.mailproto import errors
from posta.mailproto.imap.client import ImapSettings, close_quietly, connect
from posta.mailproto.imap.session import Session
from posta.mailproto.smtp.client import SmtpSettings


class HostRefused(errors.SettingsRefused):
    """The account's host is an internal address not in the allow list."""

    code = "host_not_allowed"


class SecretUnreadable(errors.SettingsRefused):
    """The stored password or token cannot be decrypted (the key changed): the
    user must enter it again. Retrying cannot help, so it pauses the account."""

    code = "secret_unreadable"


def unsealed(token: str) -> str:
    """The stored secret `token` in clear; SecretUnreadable when the key changed."""
    try:
        return unseal(token)
    except PostaError as exc:
        if exc.code == "secret_unreadable":
            raise SecretUnreadable("the stored secret cannot be decrypted") from exc
        raise


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


def imap_settings(account: Account, *, password: str, address: str) -> ImapSettings:
    """The IMAP login of `account` with `password` (or, for OAuth2 accounts, the
    stored token), to the pinned `address`."""
    oauth = account.auth_method == Account.AuthMethod.OAUTH2
    return ImapSettings(
        host=account.imap_host.strip(),
        port=account.imap_port,
        security=account.imap_security,
        username=account.username,
        password="" if oauth else password,
        oauth2_token=unsealed(account.oauth_secret) if oauth else "",
        address=address,
        timeout=float(settings.POSTA_NETWORK_TIMEOUT),
        ca_file=settings.POSTA_EXTRA_CA_FILE or None,
    )


def open_account(account: Account) -> IMAPClient:
    """A logged-in IMAPClient for `account`, to the address the guard allowed.

    For the sync, which starts its own Session (with or without CONDSTORE);
    everyone else calls `open_imap`. Raises MailError subclasses only.
    """
    address = pinned_address(account.imap_host.strip(), account.imap_port)
    oauth = account.auth_method == Account.AuthMethod.OAUTH2
    password = "" if oauth else unsealed(account.password_secret)
    client = connect(imap_settings(account, password=password, address=address))
    # Aware datetimes for INTERNALDATE, never the machine's local time.
    client.normalise_times = False
    return client


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
    """
    host = smtp_host_of(account)
    address = pinned_address(host, account.smtp_port)
    oauth = account.auth_method == Account.AuthMethod.OAUTH2
    if oauth:
        password = ""
    elif password is None:
        password = unsealed(account.smtp_password_secret or account.password_secret)
    return SmtpSettings(
        host=host,
        port=account.smtp_port,
        security=account.smtp_security,
        username=account.effective_smtp_username,
        password=password,
        auth_required=account.smtp_auth,
        oauth2_token=unsealed(account.oauth_secret) if oauth else "",
        address=address,
        timeout=float(settings.POSTA_NETWORK_TIMEOUT),
        ca_file=settings.POSTA_EXTRA_CA_FILE or None,
    )
