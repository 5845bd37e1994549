"""Opening IMAP connections and listing folders, on top of IMAPClient.

`connect` returns a logged-in `IMAPClient` whose every failure so far has been
turned into a `posta.mailproto.errors.MailError`; `imap_errors` does the same for
the caller's own commands afterwards. The client is created with
`folder_encode = False`: folder names go to and come from the server exactly as on
the wire (modified UTF-7, RFC 3501 §5.1.3), and `FolderInfo.display_name` is decoded
by our own `utf7` module. Pass `FolderInfo.name` to `select_folder` and friends.

Address pinning: `ImapSettings.address` is the IP address the TCP connection goes
to (the one the address guard checked); `host` is still what TLS sends as SNI and
what the certificate must name, for implicit TLS and for STARTTLS alike (imaplib's
STARTTLS wraps the same socket with `server_hostname=self.host`).
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient import exceptions as imapclient_errors

from posta.mailproto import errors, sasl
from posta.mailproto.common import redact
from posta.mailproto.imap import utf7
from posta.mailproto.tls import make_context, pinned_socket

NONE = "none"
STARTTLS = "starttls"
SSL = "ssl"

SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
_SPECIAL_BY_LOWER = {flag.lower(): flag for flag in SPECIAL_USES}
# Gmail's XLIST attributes, still sent by some servers in plain LIST answers.
_SPECIAL_BY_LOWER.update({"\\spam": "\\Junk", "\\allmail": "\\All", "\\starred": "\\Flagged"})


@dataclass(frozen=True)
class ImapSettings:
    """Where and how to log in. `security` is "none", "starttls" or "ssl"."""

    host: str
    port: int
    security: str
    username: str
    password: str = ""
    oauth2_token: str = ""  # XOAUTH2 instead of the password when set
    address: str | None = None  # connect here; `host` still names the certificate
    timeout: float = 15.0
    ca_file: str | None = None

    def __repr__(self) -> str:
        # Never let a password or token reach a log line through repr().
        return (
            f"ImapSettings(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r}, address={self.address!r})"
        )


@dataclass(frozen=True)
class FolderInfo:
    """One LIST answer line (RFC 3501 §7.2.2, RFC 6154)."""

    name: str  # raw IMAP name as on the wire (modified UTF-7): what SELECT needs
    display_name: str  # decoded full path
    delimiter: str  # "" when the server has a flat namespace (NIL)
    flags: tuple[str, ...]  # LIST attributes, e.g. ("\\HasNoChildren", "\\Sent")
    special_use: str  # one of SPECIAL_USES, or ""
    selectable: bool


# ---------------------------------------------------------------------------
# Connections that go to a pinned address but verify the certificate for `host`.


class _PinnedIMAP4(imaplib.IMAP4):
    _implicit_tls: ssl.SSLContext | None = None

    def __init__(self, host: str, port: int, *, address: str | None, timeout: float | None):
        self._pinned_address = address
        self._connect_timeout = timeout
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return pinned_socket(
            self.host, self.port, address=self._pinned_address,
            timeout=timeout if timeout is not None else self._connect_timeout,
            implicit_tls=self._implicit_tls,
        )


class _PinnedIMAP4TLS(_PinnedIMAP4):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        address: str | None,
        timeout: float | None,
        ssl_context: ssl.SSLContext,
    ):
        self.ssl_context = self._implicit_tls = ssl_context
        super().__init__(host, port, address=address, timeout=timeout)


class PlainExpungeRefused(RuntimeError):
    """A plain EXPUNGE or a CLOSE was asked for: a fault in Posta, never sent."""


class _Client(IMAPClient):  # type: ignore[misc]  # IMAPClient is untyped
    """IMAPClient whose socket goes to a pinned address (see module docstring).

    Overrides IMAPClient's `_create_IMAP4` hook (present in 2.x-4.x), which builds
    the underlying imaplib object; everything else is IMAPClient's own.
    """

    def __init__(self, settings: ImapSettings, context: ssl.SSLContext | None) -> None:
        self._posta_settings = settings
        super().__init__(
            settings.host,
            port=settings.port,
            ssl=settings.security == SSL,
            ssl_context=context,
            timeout=settings.timeout,
        )

    def expunge(self, messages: Any = None) -> Any:
        """Only ever UID EXPUNGE of the given UIDs (RFC 4315 §2.1). A plain EXPUNGE
        (RFC 3501 §6.4.3) removes every \\Deleted message of the folder, also those
        another client marked and has not expunged yet: Posta never sends one."""
        if not messages:
            raise PlainExpungeRefused("a plain EXPUNGE would remove other clients' mail")
        return self.uid_expunge(messages)

    def close_folder(self) -> Any:
        """CLOSE expunges every \\Deleted message as a side effect (RFC 3501
        §6.4.2), the same harm as a plain EXPUNGE: refused like it."""
        raise PlainExpungeRefused("CLOSE would expunge other clients' mail")

    def _create_IMAP4(self) -> imaplib.IMAP4:
        settings = self._posta_settings
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _PinnedIMAP4TLS(
                self.host,
                self.port,
                address=settings.address,
                timeout=timeout,
                ssl_context=self.ssl_context,
            )
        return _PinnedIMAP4(self.host, self.port, address=settings.address, timeout=timeout)


# ---------------------------------------------------------------------------
# Failure classification: one table for IMAP (STYLE §5).

_RESPONSE_CODE = re.compile(r"\[([A-Za-z-]+)")
# RFC 5530 response codes (and Gmail's THROTTLED) that mean "not now": the same
# request may succeed later, so the account is not to be disabled for them.
_BUSY_CODES = {"UNAVAILABLE", "THROTTLED", "LIMIT", "INUSE"}


def _response_codes(text: str) -> set[str]:
    return {code.upper() for code in _RESPONSE_CODE.findall(text)}


_BYTES_REPR = re.compile(r"""b(['"])(.*)\1""", re.DOTALL)


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        return arg.decode("utf-8", "replace")
    text = str(arg)
    # imaplib and IMAPClient put the server's bytes into messages as repr(b"...").
    return _BYTES_REPR.sub(lambda m: m.group(2), text)


def classify(exc: BaseException, *, host: str, secrets: tuple[str, ...] = ()) -> errors.MailError:
    """The MailError for an exception raised by IMAPClient, imaplib or the socket.

    `secrets` are removed from the detail text, whatever the server echoed.
    """
    if isinstance(exc, errors.MailError):
        return exc
    if isinstance(exc, OSError):  # includes ssl.SSLError, socket.gaierror, timeouts
        return errors.classify_os_error(exc, host=host)
    text = redact(_text(exc), secrets)
    codes = _response_codes(text)
    if codes & _BUSY_CODES:
        return errors.ServerBusy(f"{host}: {text}")
    if "PRIVACYREQUIRED" in codes:
        return errors.TlsRequired(f"{host}: {text}")
    if isinstance(exc, imapclient_errors.LoginError):
        return errors.AuthenticationFailed(f"{host}: {text}")
    if isinstance(exc, imapclient_errors.CapabilityError):
        return errors.CapabilityMissing(f"{host}: {text}")
    if isinstance(exc, imaplib.IMAP4.abort):
        # imaplib raises abort for EOF, a BYE, and a socket error while sending.
        return errors.TemporaryNetworkError(f"{host}: {text}")
    if isinstance(exc, imaplib.IMAP4.error):
        if text.startswith("* BYE"):  # a greeting of BYE (RFC 3501 §7.1.5)
            return errors.ServerBusy(f"{host}: {text}")
        return errors.ProtocolError(f"{host}: {text}")
    if isinstance(exc, ValueError | TypeError | IndexError | KeyError):
        # IMAPClient's parser raises these on a reply it cannot read.
        return errors.ProtocolError(f"{host}: unreadable reply ({type(exc).__name__})")
    return errors.ProtocolError(f"{host}: {type(exc).__name__}")


def imap_errors(*, host: str, secrets: tuple[str, ...] = ()) -> ContextManager[None]:
    """Turn any exception from IMAPClient/imaplib/sockets inside the block into a
    MailError (see `classify`). MailErrors pass through unchanged."""
    return errors.translated(classify, host=host, secrets=secrets)


# ---------------------------------------------------------------------------
# Public API.


def connect(settings: ImapSettings) -> IMAPClient:
    """Connect, secure the connection as asked, log in; return the client.

    security "ssl": TLS from the first byte (RFC 8314 §3.2). "starttls": the server
    must offer STARTTLS before login, else StartTlsNotOffered; we never fall back to
    plain text (RFC 3501 §6.2.1, RFC 2595 §3.1). "none": plain text.
    With `oauth2_token` set, logs in with the bearer token by SASL OAUTHBEARER
    (RFC 7628) where announced, else XOAUTH2, instead of the password.
    Raises only MailError subclasses; the connection is closed on failure.
    """
    if settings.security not in {NONE, STARTTLS, SSL}:
        raise ValueError(f"unknown security {settings.security!r}")
    secrets = (settings.password, settings.oauth2_token)
    context = make_context(ca_file=settings.ca_file) if settings.security != NONE else None
    client: _Client | None = None
    try:
        with imap_errors(host=settings.host, secrets=secrets):
            client = _Client(settings, context)
            client.folder_encode = False
            if settings.security == STARTTLS:
                if not _has(client, "STARTTLS"):
                    raise errors.StartTlsNotOffered(f"{settings.host}: STARTTLS not offered")
                client.starttls(context)
            _login(client, settings)
        return client
    except BaseException:
        if client is not None:
            close_quietly(client)
        raise


def _has(client: IMAPClient, capability: str) -> bool:
    return capability.upper() in capabilities(client)


def _login(client: IMAPClient, settings: ImapSettings) -> None:
    if settings.oauth2_token:
        _token_login(client, settings)
        return
    if _has(client, "LOGINDISABLED"):
        # RFC 3501 §6.2.3: the server forbids LOGIN on this (unencrypted) connection.
        raise errors.TlsRequired(f"{settings.host}: login disabled without TLS")
    credentials = settings.username + settings.password
    if credentials.isascii():
        client.login(settings.username, settings.password)
    elif _has(client, "AUTH=PLAIN"):
        # LOGIN's strings are 7-bit in practice; SASL PLAIN carries UTF-8 (RFC 4616).
        client.plain_login(settings.username, settings.password)
    else:
        raise errors.AuthenticationFailed(
            f"{settings.host}: the server accepts only ASCII user names and passwords"
        )


def _token_login(client: IMAPClient, settings: ImapSettings) -> None:
    """AUTHENTICATE with the bearer token (RFC 3501 §6.2.2, RFC 7628 §3.1).

    The first continuation gets the initial response; a second one is the server's
    error (a JSON status, RFC 7628 §3.2.2), answered as the mechanism wants so
    that the server ends with NO, which is a refused login.
    """
    offered = [c.removeprefix("AUTH=") for c in capabilities(client) if c.startswith("AUTH=")]
    mechanism = sasl.choose_mechanism(offered)
    if mechanism is None:
        raise errors.CapabilityMissing(f"{settings.host}: neither OAUTHBEARER nor XOAUTH2 offered")
    first = sasl.initial_response(
        mechanism, settings.username, settings.oauth2_token, host=settings.host, port=settings.port
    )
    replies = iter([first])

    def respond(_challenge: bytes) -> bytes:
        return next(replies, sasl.error_reply(mechanism))

    try:
        client._command_and_check("authenticate", mechanism, respond)
    except imapclient_errors.IMAPClientError as exc:
        raise errors.AuthenticationFailed(
            f"{settings.host}: {redact(_text(exc), (settings.oauth2_token,))}"
        ) from exc


def capabilities(client: IMAPClient) -> frozenset[str]:
    """The server's current capabilities, upper-cased (RFC 3501 §7.2.1)."""
    with imap_errors(host=client.host):
        raw = client.capabilities()
    return frozenset(
        (c.decode("ascii", "replace") if isinstance(c, bytes) else str(c)).upper() for c in raw
    )


def list_folders(client: IMAPClient) -> list[FolderInfo]:
    """Every folder of the account: `LIST "" "*"`, with `RETURN (SPECIAL-USE)` when
    the server announces SPECIAL-USE (RFC 6154 §5.1) so that roles come with it.
    XLIST (Gmail's old extension) is never used."""
    with imap_errors(host=client.host):
        if _has(client, "SPECIAL-USE"):
            # IMAPClient has no RETURN options; its own _do_list shows the pattern.
            imap = client._imap
            typ, data = imap._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
            client._checkok("list", typ, data)
            typ, data = imap._untagged_response(typ, data, "LIST")
            rows = client._proc_folder_list(data)
        else:
            rows = client.list_folders()
        return [_folder_info(flags, delimiter, name) for flags, delimiter, name in rows]


def _as_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        # Names are 7-bit modified UTF-7; a server sending raw UTF-8 still gets a
        # readable name.
        return value.decode("utf-8", "replace")
    return str(value)


def _folder_info(flags: Any, delimiter: Any, name: Any) -> FolderInfo:
    flag_names = tuple(_as_str(f) for f in flags)
    lower = {f.lower() for f in flag_names}
    special = next(
        (_SPECIAL_BY_LOWER[f.lower()] for f in flag_names if f.lower() in _SPECIAL_BY_LOWER), ""
    )
    raw_name = _as_str(name)
    return FolderInfo(
        name=raw_name,
        display_name=utf7.decode(raw_name),
        delimiter=_as_str(delimiter),
        flags=flag_names,
        special_use=special,
        # RFC 3501 §7.2.2 \Noselect; RFC 5258 §3 \NonExistent implies \Noselect.
        selectable=not ({"\\noselect", "\\nonexistent"} & lower),
    )


def close_quietly(client: IMAPClient) -> None:
    """LOGOUT if possible, else drop the socket; never raises."""
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - closing never raises, whatever the server did
        with contextlib.suppress(Exception):
            client.shutdown()

