"""The account test: can Posta log in to this account's IMAP and SMTP servers?

Used by the Account form when it is saved (registered by SyncConfig.ready()), the one
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

from django.conf import settings

from posta.accounts.models import Account, CompanySettings
from posta.accounts.presets import PRESETS
from posta.core import netguard
from posta.core.crypto import unseal
from posta.core.errors import PostaError
from posta.mailproto.errors import MailError
from posta.mailproto.imap import client as imap
from posta.mailproto.imap.client import FolderInfo, ImapSettings
from posta.mailproto.imap.roles import detect_roles
from posta.mailproto.smtp import client as smtp
from posta.mailproto.smtp.client import SmtpSettings

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
    allowed = CompanySettings.load().allowed_hosts_list()
    timeout = float(settings.POSTA_NETWORK_TIMEOUT)
    ca_file = settings.POSTA_EXTRA_CA_FILE or None
    result = ProbeResult(imap=None, smtp=None)

    imap_password: str | None = None  # stays None when the stored one is unreadable
    try:
        imap_password = (
            password if password is not None else _unseal(account.password_secret, IMAP)
        )
        _probe_imap(account, imap_password, allowed, timeout, ca_file, result)
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
        _probe_smtp(account, secret, allowed, timeout, ca_file)
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


def _unseal(token: str, protocol: str) -> str:
    try:
        return unseal(token)
    except PostaError as exc:
        raise _Failed(ProbeFailure(protocol, exc.code, "")) from exc


def _pin(protocol: str, host: str, port: int, allowed: list[str]) -> str:
    try:
        return netguard.resolve_allowed(host, port, allowed=allowed)
    except netguard.GuardError as exc:
        raise _Failed(ProbeFailure(protocol, exc.code, exc.detail)) from exc


def _probe_imap(
    account: Account,
    password: str,
    allowed: list[str],
    timeout: float,
    ca_file: str | None,
    result: ProbeResult,
) -> None:
    host = account.imap_host.strip()
    address = _pin(IMAP, host, account.imap_port, allowed)
    imap_settings = ImapSettings(
        host=host,
        port=account.imap_port,
        security=account.imap_security,
        username=account.username,
        password=password,
        address=address,
        timeout=timeout,
        ca_file=ca_file,
    )
    try:
        client = imap.connect(imap_settings)
        try:
            result.capabilities = imap.capabilities(client)
            result.folders = imap.list_folders(client)
        finally:
            imap.close_quietly(client)
    except MailError as exc:
        raise _Failed(ProbeFailure(IMAP, exc.code, exc.detail)) from exc
    result.roles = detect_roles(result.folders)


def smtp_host_of(account: Account) -> str:
    """The SMTP server of an account: its own `smtp_host`, else its administrator-
    defined server's, else its preset's, else the IMAP host (one-box servers)."""
    if account.smtp_host.strip():
        return account.smtp_host.strip()
    if account.server_id is not None and account.server is not None:
        return account.server.smtp_host.strip()
    preset = PRESETS.get(account.preset)
    if preset is not None:
        return preset.smtp_host
    return account.imap_host.strip()


def _probe_smtp(
    account: Account, password: str, allowed: list[str], timeout: float, ca_file: str | None
) -> None:
    host = smtp_host_of(account)
    address = _pin(SMTP, host, account.smtp_port, allowed)
    smtp_settings = SmtpSettings(
        host=host,
        port=account.smtp_port,
        security=account.smtp_security,
        username=account.effective_smtp_username,
        password=password,
        auth_required=account.smtp_auth,
        address=address,
        timeout=timeout,
        ca_file=ca_file,
    )
    try:
        smtp.check_login(smtp_settings)
    except MailError as exc:
        raise _Failed(ProbeFailure(SMTP, exc.code, exc.detail)) from exc
