"""The account test: can Posta log in to this account's IMAP and SMTP servers?

Used by the Account form when it is saved (registered by RemoteConfig.ready()), the one
place where a web request talks to a mail server (DESIGN §2). It reports, never
raises, for anything a server or the network does; the screen turns the codes into
sentences in the user's language:

    host_not_allowed     the host is an internal address not in the company allow list
    host_not_found       the server name does not exist (DNS)
    connection_refused   nothing answers on that port
    timeout              the server did not answer in time
    tls_failed           the TLS handshake failed (wrong port for the security chosen)
    certificate_invalid  the certificate is not trusted (detail: self-signed, expired...)
    starttls_missing     STARTTLS chosen but the server does not offer it
    tls_required         the server refuses to log in without encryption
    auth_failed          user name or password refused
    capability_missing   the server lacks something needed (e.g. SMTP AUTH)
    protocol_error       the server answered something unusable
    network_error        the connection dropped mid-way
    throttled            the provider is limiting connections; try again later
    secret_unreadable    the stored password cannot be decrypted any more
    unexpected_error     a fault in Posta itself (logged)

Passwords are neither logged nor returned: details come from server replies and OS
errors, with the password removed from anything a server echoed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from posta.accounts.models import Account
from posta.core.crypto import unseal
from posta.core.errors import PostaError
from posta.mailproto.errors import MailError
from posta.mailproto.imap import client as imap
from posta.mailproto.imap.client import FolderInfo
from posta.mailproto.imap.roles import detect_roles
from posta.mailproto.smtp import client as smtp
from posta.remote.connect import imap_settings, is_oauth, pinned_address, smtp_settings
from posta.remote.tokens import access_token

logger = logging.getLogger(__name__)

IMAP = "imap"
SMTP = "smtp"


@dataclass
class ProbeFailure:
    """What went wrong with one protocol: a stable `code` (module docstring) and an
    English `detail` for the "details" line."""

    protocol: str  # "imap" | "smtp"
    code: str
    detail: str


@dataclass
class ProbeResult:
    imap: ProbeFailure | None
    smtp: ProbeFailure | None
    folders: list[FolderInfo] = field(default_factory=list)  # when IMAP login worked
    roles: dict[str, str] = field(default_factory=dict)  # detect_roles(folders)
    capabilities: frozenset[str] = frozenset()  # IMAP, after login

    @property
    def ok(self) -> bool:
        return self.imap is None and self.smtp is None


class _Failed(Exception):
    def __init__(self, failure: ProbeFailure) -> None:
        super().__init__(failure.code)
        self.failure = failure


def probe_account(
    account: Account, *, password: str | None = None, smtp_password: str | None = None
) -> ProbeResult:
    """Log in to the account's IMAP server and list its folders, then log in to its
    SMTP server, and report. Both are tried even when one fails.

    `password` / `smtp_password` override the stored secrets (the form's unsaved
    input). The SMTP user name defaults to the IMAP one and the SMTP password to the
    IMAP password when empty. Hosts go through the address guard with the company's
    allow list; connections use POSTA_NETWORK_TIMEOUT and POSTA_EXTRA_CA_FILE.
    """
    result = ProbeResult(imap=None, smtp=None)

    imap_password: str | None = None  # stays None when the stored one is unreadable
    try:
        imap_password = password if password is not None else _stored_login(account)
        _probe_imap(account, imap_password, result)
    except _Failed as failed:
        result.imap = failed.failure
    except Exception:
        logger.exception("account %s: IMAP test failed unexpectedly", account.pk)
        result.imap = ProbeFailure(IMAP, "unexpected_error", "")

    try:
        secret = (
            smtp_password
            if smtp_password is not None
            else _unseal(account.smtp_password_secret, SMTP)
        )
        if not secret:
            if imap_password is None and account.smtp_auth:
                raise _Failed(ProbeFailure(SMTP, "secret_unreadable", ""))
            secret = imap_password or ""
        _probe_smtp(account, secret)
    except _Failed as failed:
        result.smtp = failed.failure
    except Exception:
        logger.exception("account %s: SMTP test failed unexpectedly", account.pk)
        result.smtp = ProbeFailure(SMTP, "unexpected_error", "")

    logger.info(
        "account %s tested: imap=%s smtp=%s",
        account.pk,
        result.imap.code if result.imap else "ok",
        result.smtp.code if result.smtp else "ok",
    )
    return result


def _stored_login(account: Account) -> str:
    """The stored password, or for an OAuth2 account a current access token."""
    if not is_oauth(account):
        return _unseal(account.password_secret, IMAP)
    try:
        return access_token(account)
    except MailError as exc:
        raise _Failed(ProbeFailure(IMAP, exc.code, exc.detail)) from exc


def _unseal(token: str, protocol: str) -> str:
    try:
        return unseal(token)
    except PostaError as exc:
        raise _Failed(ProbeFailure(protocol, exc.code, "")) from exc


def _probe_imap(account: Account, password: str, result: ProbeResult) -> None:
    try:
        address = pinned_address(account.imap_host.strip(), account.imap_port)
        client = imap.connect(imap_settings(account, password=password, address=address))
        try:
            result.capabilities = imap.capabilities(client)
            result.folders = imap.list_folders(client)
        finally:
            imap.close_quietly(client)
    except MailError as exc:
        raise _Failed(ProbeFailure(IMAP, exc.code, exc.detail)) from exc
    result.roles = detect_roles(result.folders)


def _probe_smtp(account: Account, password: str) -> None:
    try:
        smtp.check_login(smtp_settings(account, password=password))
    except MailError as exc:
        raise _Failed(ProbeFailure(SMTP, exc.code, exc.detail)) from exc
