"""The few failures protocol code reports, each with a stable code.

Every library, socket and TLS exception raised while talking to a mail server is
turned into one of these, so callers decide by class (retry, tell the user, give up)
and show the user a message chosen by `code`. `detail` is a short English text for
logs and for the "details" line of an error message; it never holds a password or a
token (callers build it from server replies and OS errors only).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
from collections.abc import Iterator
from typing import Protocol


class MailError(Exception):
    """A failure talking to a mail server. `code` is stable; `detail` is for humans."""

    code: str = "mail_error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


class HostNotFound(MailError):
    """The server name does not resolve (DNS answered NXDOMAIN or nothing)."""

    code = "host_not_found"


class ConnectionRefused(MailError):
    """Nothing listens on that port (TCP RST), or a firewall rejected the connection."""

    code = "connection_refused"


class ConnectTimeout(MailError):
    """The server did not answer within the time allowed (connect or reply)."""

    code = "timeout"


class TlsError(MailError):
    """The TLS handshake failed (wrong port for the security chosen, no common cipher)."""

    code = "tls_failed"


class CertificateError(TlsError):
    """The server's certificate was refused; `detail` says why (self-signed, expired,
    issued for another name)."""

    code = "certificate_invalid"


class StartTlsNotOffered(MailError):
    """STARTTLS was asked for but the server does not advertise it."""

    code = "starttls_missing"


class AuthenticationFailed(MailError):
    """The server refused the user name and password (or token)."""

    code = "auth_failed"


class TlsRequired(AuthenticationFailed):
    """The server refuses to log in without TLS (IMAP LOGINDISABLED or
    [PRIVACYREQUIRED], RFC 3501 §6.2.3 / RFC 5530; SMTP 530 5.7.0, RFC 3207 §4)."""

    code = "tls_required"


class CapabilityMissing(MailError):
    """The server lacks an extension the operation needs (e.g. SMTP AUTH)."""

    code = "capability_missing"


class ProtocolError(MailError):
    """The server answered something we cannot use (a BAD, a malformed reply)."""

    code = "protocol_error"


class TemporaryNetworkError(MailError):
    """The connection dropped or was reset mid-command; retrying later may work."""

    code = "network_error"


class ServerBusy(MailError):
    """The provider throttles us or is temporarily unavailable: IMAP [THROTTLED],
    [UNAVAILABLE], [LIMIT], [INUSE] (RFC 5530), SMTP 421 and other 4xx replies."""

    code = "throttled"


class SettingsRefused(MailError):
    """The account's own settings stop the attempt before any server is asked: the
    host is an internal address not allowed, or the stored password or token cannot
    be decrypted (the key changed). Only the user can fix it; retrying cannot."""

    code = "settings_refused"


class NumberingChanged(MailError):
    """The folder's UIDVALIDITY is not the one a stored UID belongs to, so that UID
    may name another message now (RFC 3501 §2.3.1.1): nothing was done, and the work
    waits until the copy is paired again with its new UID."""

    code = "uidvalidity_changed"


# Errno values that mean "the path to the host is broken right now": retrying later
# is the right answer, so they are network errors rather than refusals.
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def _ssl_detail(exc: ssl.SSLError) -> str:
    reason = getattr(exc, "reason", None) or ""
    library = getattr(exc, "library", None) or ""
    text = reason or str(exc)
    return f"{library}: {text}" if library and reason else text


def classify_os_error(
    exc: OSError | ssl.SSLError | socket.gaierror, *, host: str
) -> MailError:
    """Turn a socket, DNS or TLS exception into the matching MailError.

    Certificate verification failures keep OpenSSL's reason ("self-signed
    certificate", "certificate has expired", "Hostname mismatch, ...") in `detail`.
    """
    if isinstance(exc, socket.gaierror):
        return HostNotFound(f"{host}: {exc.strerror or exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertificateError(f"{host}: {exc.verify_message or _ssl_detail(exc)}")
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        # The peer closed the connection in the middle of the handshake: most often a
        # plain-text server that gave up on our ClientHello.
        return TlsError(f"{host}: connection closed during the TLS handshake")
    if isinstance(exc, ssl.SSLError):
        return TlsError(f"{host}: {_ssl_detail(exc)}")
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return ConnectTimeout(f"{host}: no answer in time")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefused(f"{host}: connection refused")
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe
        return TemporaryNetworkError(f"{host}: {exc.strerror or type(exc).__name__}")
    if exc.errno in _UNREACHABLE:
        return TemporaryNetworkError(f"{host}: {exc.strerror}")
    return TemporaryNetworkError(f"{host}: {exc.strerror or exc}")


class Classifier(Protocol):
    """A protocol client's `classify`: the MailError for what its library raised."""

    def __call__(
        self, exc: BaseException, *, host: str, secrets: tuple[str, ...] = ()
    ) -> MailError: ...


@contextlib.contextmanager
def translated(
    classify: Classifier, *, host: str, secrets: tuple[str, ...] = ()
) -> Iterator[None]:
    """Turn any exception inside the block into the MailError `classify` names,
    `secrets` removed from its words; MailErrors pass through unchanged."""
    try:
        yield
    except MailError:
        raise
    except Exception as exc:
        raise classify(exc, host=host, secrets=secrets) from exc
