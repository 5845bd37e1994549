"""Opening an account's IMAP connection: the address guard, the stored secret,
the login. Raises MailError subclasses only."""

from __future__ import annotations

from django.conf import settings
from imapclient import IMAPClient

from posta.accounts.models import Account, CompanySettings
from posta.core.crypto import unseal
from posta.core.errors import PostaError
from posta.core.netguard import GuardError, resolve_allowed
from posta.mailproto import errors
from posta.mailproto.imap.client import ImapSettings, connect


class HostRefused(errors.SettingsRefused):
    """The account's host is an internal address not in the allow list."""

    code = "host_not_allowed"


class SecretUnreadable(errors.SettingsRefused):
    """The stored password or token cannot be decrypted (the key changed): the
    user must enter it again. Retrying cannot help, so it pauses the account."""

    code = "secret_unreadable"


def unseal_secret(token: str) -> str:
    """The stored secret in clear; SecretUnreadable when the keys cannot open it."""
    try:
        return unseal(token)
    except PostaError as exc:
        if exc.code == "secret_unreadable":
            raise SecretUnreadable("the stored secret cannot be decrypted") from exc
        raise


def open_account(account: Account) -> IMAPClient:
    """A logged-in IMAPClient for `account`, to the address the guard allowed.

    The host is resolved once through posta.core.netguard (users must not aim Posta
    at internal machines) and the connection pinned to that address. Raises
    MailError subclasses only.
    """
    allowed = CompanySettings.load().allowed_hosts_list()
    try:
        address = resolve_allowed(account.imap_host, account.imap_port, allowed=allowed)
    except GuardError as exc:
        if exc.code == "host_not_found":
            raise errors.HostNotFound(exc.detail) from exc
        raise HostRefused(exc.detail) from exc
    oauth = account.auth_method == Account.AuthMethod.OAUTH2
    client = connect(
        ImapSettings(
            host=account.imap_host,
            port=account.imap_port,
            security=account.imap_security,
            username=account.username,
            password="" if oauth else unseal_secret(account.password_secret),
            oauth2_token=unseal_secret(account.oauth_secret) if oauth else "",
            address=address,
            timeout=settings.POSTA_NETWORK_TIMEOUT,
            ca_file=settings.POSTA_EXTRA_CA_FILE or None,
        )
    )
    # Aware datetimes for INTERNALDATE, never the machine's local time.
    client.normalise_times = False
    return client
