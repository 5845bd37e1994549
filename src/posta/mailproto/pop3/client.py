"""A POP3 client on top of poplib: STAT, UIDL, RETR, DELE, QUIT (RFC 1939), with
STLS (RFC 2595) or implicit TLS (RFC 8314 §3.2) under the rules of
posta.mailproto.tls, and every failure turned into a posta.mailproto.errors
MailError.

Address pinning, as for IMAP and SMTP: `Pop3Settings.address` is where the TCP
connection goes (the address the guard allowed); `host` is what TLS sends as SNI
and what the certificate must name, for implicit TLS and for STLS alike (poplib's
`stls` wraps the socket with `server_hostname=self.host`).

RFC 1939 §6: DELE only marks a message; the server removes it when the session
ends with QUIT (the UPDATE state). A connection that drops, or a client killed,
before QUIT deletes nothing. Callers rely on that: they DELE only what is safely
stored elsewhere and learn that the deletions took effect from `quit()` alone.

No Django here.
"""

from __future__ import annotations

import contextlib
import poplib
import re
import socket
import ssl
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass

from posta.mailproto import errors
from posta.mailproto.common import redact
from posta.mailproto.tls import make_context, pinned_socket

NONE = "none"
STARTTLS = "starttls"
SSL = "ssl"

# poplib refuses lines over 2,048 octets; RFC 5322 §2.1.1 allows 998, and real mail
# (long HTML lines, unfolded headers) has longer ones. A line longer than this still
# fails: it is no mail any client could show.
MAX_LINE = 1 << 20

# RFC 2449 §8 / RFC 3206 response codes in a -ERR reply.
_RESP_CODE = re.compile(r"^-ERR\s+\[([A-Z/-]+)\]", re.I)
_BUSY_CODES = {"IN-USE", "LOGIN-DELAY", "SYS/TEMP"}
# Dovecot and others answer a plain-text login this way (there is no response code
# for it): "-ERR [AUTH] Plaintext authentication disallowed on non-secure ..."
_TLS_WORDS = ("plaintext authentication disallowed", "ssl required", "tls required")


@dataclass(frozen=True)
class Pop3Settings:
    """Where and how to log in. `security` is "none", "starttls" or "ssl"."""

    host: str
    port: int
    security: str
    username: str
    password: str = ""
    address: str | None = None  # connect here; `host` still names the certificate
    timeout: float = 15.0
    ca_file: str | None = None

    def __repr__(self) -> str:
        # Never let a password reach a log line through repr().
        return (
            f"Pop3Settings(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r}, address={self.address!r})"
        )


class ConnectionDropped(poplib.error_proto):
    """The server closed the connection (EOF) in the middle of a reply."""


class _PinnedPOP3(poplib.POP3):
    """poplib.POP3 to a pinned address, optionally TLS from the first byte, with
    a line limit fit for real mail."""

    def __init__(self, settings: Pop3Settings, context: ssl.SSLContext | None) -> None:
        self._pinned_address = settings.address
        self._implicit_tls = context if settings.security == SSL else None
        super().__init__(settings.host, settings.port, timeout=settings.timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = pinned_socket(
            self.host, self.port, address=self._pinned_address, timeout=timeout,
            implicit_tls=self._implicit_tls,
        )
        self._tls_established = self._implicit_tls is not None
        return sock

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise poplib.error_proto("-ERR line too long")
        if not line:
            raise ConnectionDropped("-ERR connection closed by the server")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        return arg.decode("utf-8", "replace")
    return str(arg)


def classify(exc: BaseException, *, host: str, secrets: tuple[str, ...] = ()) -> errors.MailError:
    """The MailError for an exception raised by poplib or the socket."""
    if isinstance(exc, errors.MailError):
        return exc
    if isinstance(exc, ConnectionDropped):
        return errors.TemporaryNetworkError(f"{host}: connection closed by the server")
    if isinstance(exc, OSError):  # ssl.SSLError, socket.gaierror, timeouts included
        return errors.classify_os_error(exc, host=host)
    text = redact(_text(exc), secrets)
    code = _RESP_CODE.match(text)
    codes = {code.group(1).upper()} if code else set()
    if codes & _BUSY_CODES:
        return errors.ServerBusy(f"{host}: {text}")
    if any(words in text.lower() for words in _TLS_WORDS):
        return errors.TlsRequired(f"{host}: {text}")
    if "AUTH" in codes:
        return errors.AuthenticationFailed(f"{host}: {text}")
    return errors.ProtocolError(f"{host}: {text}")


def pop3_errors(*, host: str, secrets: tuple[str, ...] = ()) -> ContextManager[None]:
    """Turn any exception from poplib or the socket inside the block into a
    MailError (see `classify`). MailErrors pass through unchanged."""
    return errors.translated(classify, host=host, secrets=secrets)


class Pop3Session:
    """One logged-in POP3 connection (the TRANSACTION state of RFC 1939 §5)."""

    def __init__(self, pop: poplib.POP3, host: str) -> None:
        self._pop = pop
        self.host = host

    def stat(self) -> tuple[int, int]:
        """How many messages the mailbox holds and their size in octets (STAT)."""
        with pop3_errors(host=self.host):
            count, size = self._pop.stat()
        return int(count), int(size)

    def uidl(self) -> dict[int, str] | None:
        """Message number to unique id (UIDL, RFC 1939 §7); None when the server
        has no UIDL (an optional command: -ERR to it means "not offered")."""
        try:
            with pop3_errors(host=self.host):
                _resp, lines, _octets = self._pop.uidl()
        except errors.ProtocolError:
            return None
        listing: dict[int, str] = {}
        for line in lines:
            number, _sep, unique = line.decode("ascii", "replace").strip().partition(" ")
            if number.isdigit() and unique:
                listing[int(number)] = unique.strip()
        return listing

    def numbers(self) -> list[int]:
        """The numbers of the messages not marked deleted (LIST)."""
        with pop3_errors(host=self.host):
            _resp, lines, _octets = self._pop.list()
        found = []
        for line in lines:
            number = line.split(b" ", 1)[0]
            if number.isdigit():
                found.append(int(number))
        return found

    def retr(self, number: int) -> bytes:
        """Message `number` whole, CRLF line ends, dot-stuffing undone (RETR).
        RFC 1939 §7 lets servers mark a retrieved message seen; it changes
        nothing else."""
        with pop3_errors(host=self.host):
            _resp, lines, _octets = self._pop.retr(number)
        return b"\r\n".join(lines) + b"\r\n"

    def dele(self, number: int) -> None:
        """Mark message `number` deleted; it goes at QUIT only (RFC 1939 §6)."""
        with pop3_errors(host=self.host):
            self._pop.dele(number)

    def quit(self) -> None:
        """QUIT: end the session, the server removes what DELE marked (RFC 1939
        §6). Returns once the server said +OK; raises when it did not, in which
        case nothing may have been removed."""
        with pop3_errors(host=self.host):
            self._pop.quit()

    def close(self) -> None:
        """Drop the socket without QUIT: every DELE of this session is undone by
        the server (RFC 1939 §6). Never raises."""
        with contextlib.suppress(Exception):
            self._pop.close()


def connect(settings: Pop3Settings) -> Pop3Session:
    """Connect, secure the connection as asked, log in with USER/PASS.

    "ssl": TLS from the first byte. "starttls": the server must list STLS in CAPA
    (RFC 2449), else StartTlsNotOffered; never a fall-back to plain text (RFC 2595
    §2.2). "none": plain text. Raises only MailError; closes the socket on failure.
    """
    if settings.security not in {NONE, STARTTLS, SSL}:
        raise ValueError(f"unknown security {settings.security!r}")
    secrets = (settings.password,)
    context = make_context(ca_file=settings.ca_file) if settings.security != NONE else None
    pop: _PinnedPOP3 | None = None
    try:
        with pop3_errors(host=settings.host, secrets=secrets):
            pop = _PinnedPOP3(settings, context)
            if settings.security == STARTTLS:
                _starttls(pop, settings.host, context)
            pop.user(settings.username)
            pop.pass_(settings.password)
        return Pop3Session(pop, settings.host)
    except BaseException:
        if pop is not None:
            with contextlib.suppress(Exception):
                pop.close()
        raise


def _starttls(pop: _PinnedPOP3, host: str, context: ssl.SSLContext | None) -> None:
    try:
        caps = pop.capa()
    except poplib.error_proto:
        caps = {}  # no CAPA: no STLS either (RFC 2595 §4 advertises it there)
    if "STLS" not in caps:
        raise errors.StartTlsNotOffered(f"{host}: STLS not offered")
    pop.stls(context)


def check_login(settings: Pop3Settings) -> tuple[int, bool]:
    """Log in, STAT, ask for UIDL, QUIT: the test of a source. Returns the number
    of messages and whether the server offers UIDL."""
    session = connect(settings)
    try:
        count, _size = session.stat()
        has_uidl = session.uidl() is not None
        session.quit()
    finally:
        session.close()
    return count, has_uidl
