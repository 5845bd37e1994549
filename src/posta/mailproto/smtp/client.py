"""Opening authenticated SMTP submission connections, on top of smtplib.

`connect` returns an `smtplib.SMTP` that has greeted the server (EHLO), secured the
connection as asked and logged in; every failure is a
`posta.mailproto.errors.MailError`. `smtp_errors` classifies the caller's own
commands (MAIL, RCPT, DATA) the same way, with one table (`classify_reply`).

Address pinning: `SmtpSettings.address` is the IP address the TCP connection goes
to; `host` is what TLS sends as SNI and what the certificate must name, for implicit
TLS (RFC 8314 §3.3) and for STARTTLS (RFC 3207) alike.
"""

from __future__ import annotations

import base64
import contextlib
import smtplib
import socket
import ssl
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass

from posta.mailproto import errors, sasl
from posta.mailproto.common import redact, reply_text
from posta.mailproto.tls import make_context, pinned_socket

NONE = "none"
STARTTLS = "starttls"
SSL = "ssl"

# EHLO argument until the socket's own address is known (see _address_literal);
# passing it keeps smtplib from calling socket.getfqdn(), a DNS lookup.
_PLACEHOLDER_HOSTNAME = "localhost"


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to submit mail. `security` is "none", "starttls" or "ssl"."""

    host: str
    port: int
    security: str
    username: str = ""
    password: str = ""
    auth_required: bool = True
    oauth2_token: str = ""  # XOAUTH2 instead of the password when set
    address: str | None = None  # connect here; `host` still names the certificate
    timeout: float = 15.0
    ca_file: str | None = None
    local_hostname: str | None = None  # EHLO name; default: our address literal

    def __repr__(self) -> str:
        # Never let a password or token reach a log line through repr().
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r}, address={self.address!r})"
        )


class _PinnedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose socket goes to the pinned address, optionally TLS-wrapped
    from the start (implicit TLS) with `server_hostname` = the configured host."""

    def __init__(self, settings: SmtpSettings, context: ssl.SSLContext | None) -> None:
        self._pinned_address = settings.address
        self._implicit_tls_context = context if settings.security == SSL else None
        super().__init__(local_hostname=_PLACEHOLDER_HOSTNAME, timeout=settings.timeout)
        # smtplib reads _host for STARTTLS's server_hostname; it is set only by
        # __init__, which we call without a host so as to classify the greeting ourselves.
        self._host = settings.host

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # The same as smtplib's own, with the pinned address as the target.
        return pinned_socket(
            self._host, port, address=self._pinned_address or host, timeout=timeout,
            implicit_tls=self._implicit_tls_context, source_address=self.source_address,
        )


# ---------------------------------------------------------------------------
# Failure classification: one table for SMTP replies (RFC 5321 §4.2.1).


def classify_reply(
    code: int, message: bytes | str, *, host: str, secrets: tuple[str, ...] = ()
) -> errors.MailError:
    """The MailError for an SMTP reply that was not the one expected.

    4xx is temporary: throttled, busy, greylisted (RFC 5321 §4.2.1) - ServerBusy.
    530/538 with an encryption hint: TlsRequired (RFC 3207 §4, RFC 4954 §6).
    535/534/530: AuthenticationFailed (RFC 4954 §6). 504: CapabilityMissing.
    Any other 5xx: ProtocolError (the server refused what we did).
    """
    text = redact(reply_text(message), secrets)
    detail = f"{host}: {code} {text}".strip()
    lowered = text.lower()
    if 400 <= code < 500:
        return errors.ServerBusy(detail)
    if code == 538 or (code == 530 and ("starttls" in lowered or "5.7.11" in lowered)):
        return errors.TlsRequired(detail)
    if code in {530, 534, 535}:
        return errors.AuthenticationFailed(detail)
    if code == 504:
        return errors.CapabilityMissing(detail)
    return errors.ProtocolError(detail)


def classify(exc: BaseException, *, host: str, secrets: tuple[str, ...] = ()) -> errors.MailError:
    """The MailError for an exception raised by smtplib or the socket."""
    if isinstance(exc, errors.MailError):
        return exc
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return errors.TemporaryNetworkError(f"{host}: connection closed by the server")
    if isinstance(exc, smtplib.SMTPResponseException):
        return classify_reply(exc.smtp_code, exc.smtp_error, host=host, secrets=secrets)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        if codes and all(400 <= c < 500 for c in codes):
            return errors.ServerBusy(f"{host}: recipients refused for now")
        return errors.ProtocolError(f"{host}: recipients refused")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return errors.CapabilityMissing(f"{host}: {exc}")
    if isinstance(exc, smtplib.SMTPException):
        text = redact(str(exc), secrets)
        if "authentication method" in text:  # "No suitable authentication method found."
            return errors.CapabilityMissing(f"{host}: {text}")
        return errors.ProtocolError(f"{host}: {text}")
    if isinstance(exc, OSError):
        return errors.classify_os_error(exc, host=host)
    if isinstance(exc, UnicodeError):
        return errors.ProtocolError(f"{host}: text not encodable for this server")
    return errors.ProtocolError(f"{host}: {type(exc).__name__}")


def smtp_errors(*, host: str, secrets: tuple[str, ...] = ()) -> ContextManager[None]:
    """Turn any exception from smtplib/sockets inside the block into a MailError."""
    return errors.translated(classify, host=host, secrets=secrets)


# ---------------------------------------------------------------------------
# Public API.


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """Connect, EHLO, STARTTLS when asked, AUTH when `auth_required`; return the
    session ready for MAIL FROM.

    security "ssl": implicit TLS (RFC 8314 §3.3, port 465). "starttls": the server
    must advertise STARTTLS, else StartTlsNotOffered; never a silent fallback to
    plain text. Raises only MailError subclasses; the connection is closed on failure.
    """
    if settings.security not in {NONE, STARTTLS, SSL}:
        raise ValueError(f"unknown security {settings.security!r}")
    secrets = (settings.password, settings.oauth2_token)
    context = make_context(ca_file=settings.ca_file) if settings.security != NONE else None
    smtp: _PinnedSMTP | None = None
    try:
        with smtp_errors(host=settings.host, secrets=secrets):
            smtp = _PinnedSMTP(settings, context)
            code, message = smtp.connect(settings.host, settings.port)
            if code != 220:  # RFC 5321 §4.3.1: 220 greets, 554 refuses, 421 is busy
                raise classify_reply(code, message, host=settings.host)
            smtp.local_hostname = settings.local_hostname or _address_literal(smtp.sock)
            smtp.ehlo_or_helo_if_needed()
            if settings.security == STARTTLS:
                if not smtp.has_extn("starttls"):
                    raise errors.StartTlsNotOffered(f"{settings.host}: STARTTLS not offered")
                smtp.starttls(context=context)
                # RFC 3207 §4.2: forget what was learnt before TLS, greet again.
                smtp.ehlo()
            if settings.auth_required:
                _authenticate(smtp, settings)
        return smtp
    except BaseException:
        if smtp is not None:
            close_quietly(smtp)
        raise


def check_login(settings: SmtpSettings) -> None:
    """Connect and log in as `connect` does, then QUIT. Raises MailError on failure."""
    smtp = connect(settings)
    close_quietly(smtp)


def close_quietly(smtp: smtplib.SMTP) -> None:
    """QUIT if possible, then close the socket; never raises."""
    try:
        smtp.quit()
    except Exception:  # noqa: BLE001 - closing never raises, whatever the server did
        with contextlib.suppress(Exception):
            smtp.close()


def _address_literal(sock: socket.socket | None) -> str:
    # RFC 5321 §4.1.4: without a resolvable name of our own, EHLO gives our address
    # as a literal; asking DNS for our own name would leak where Posta runs and can
    # stall on a broken resolver.
    if sock is None:
        return "[127.0.0.1]"
    address = str(sock.getsockname()[0]).split("%", 1)[0]
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def _mechanisms(smtp: smtplib.SMTP) -> set[str]:
    return {m.upper() for m in smtp.esmtp_features.get("auth", "").split()}


def _authenticate(smtp: smtplib.SMTP, settings: SmtpSettings) -> None:
    host = settings.host
    if not smtp.has_extn("auth"):
        if settings.security == NONE and smtp.has_extn("starttls"):
            # Servers offer AUTH only once the connection is encrypted (RFC 4954 §4).
            raise errors.TlsRequired(f"{host}: AUTH is offered only after STARTTLS")
        raise errors.CapabilityMissing(f"{host}: the server offers no AUTH")
    mechanisms = _mechanisms(smtp)
    if settings.oauth2_token:
        # RFC 7628 OAUTHBEARER where announced, else XOAUTH2 (RFC 4954 AUTH).
        mechanism = sasl.choose_mechanism(mechanisms)
        if mechanism is None:
            raise errors.CapabilityMissing(f"{host}: neither OAUTHBEARER nor XOAUTH2 offered")
        raw = sasl.initial_response(
            mechanism, settings.username, settings.oauth2_token, host=host, port=settings.port
        )
        _auth_command(smtp, mechanism, raw, settings)
        return
    if (settings.username + settings.password).isascii():
        smtp.login(settings.username, settings.password)
        return
    # smtplib encodes credentials as ASCII; SASL PLAIN carries UTF-8 (RFC 4616).
    if "PLAIN" not in mechanisms:
        raise errors.AuthenticationFailed(
            f"{host}: the server accepts only ASCII user names and passwords"
        )
    raw = f"\0{settings.username}\0{settings.password}".encode()
    _auth_command(smtp, "PLAIN", raw, settings)


def _auth_command(
    smtp: smtplib.SMTP, mechanism: str, raw: bytes, settings: SmtpSettings
) -> None:
    encoded = base64.b64encode(raw).decode("ascii")
    code, message = smtp.docmd("AUTH", f"{mechanism} {encoded}")
    if code == 334:
        # A bad token is answered with a 334 JSON challenge; the mechanism's error
        # reply (RFC 7628 §3.2.3: ^A; XOAUTH2: empty) gets the final 535.
        reply = base64.b64encode(sasl.error_reply(mechanism)).decode("ascii")
        code, message = smtp.docmd(reply)
    if code != 235:  # RFC 4954 §6: 235 is success
        raise classify_reply(
            code,
            message,
            host=settings.host,
            secrets=(settings.password, settings.oauth2_token),
        )
