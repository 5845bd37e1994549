"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it is sent.

It can demand AUTH (PLAIN/LOGIN, allowed without TLS on loopback; XOAUTH2 with a
token checked at an RFC 7662 introspection endpoint, ``accept_oauth2``), answer chosen
codes at MAIL, RCPT or DATA, offer STARTTLS or implicit TLS with the test CA, and hand
every accepted message to Dovecot's LMTP so that sent mail really arrives.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.message
import email.policy
import json
import logging
import smtplib
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from . import net
from .tls import TlsFiles, make_tls_files

if TYPE_CHECKING:
    from .dovecot import DovecotServer

Stage = Literal["MAIL", "RCPT", "DATA"]
TlsMode = Literal["none", "starttls", "implicit"]

SERVER_NAME = "smtp.example.test"

# aiosmtpd logs every command at INFO; a failing test's output should show the test's own.
logging.getLogger("mail.log").setLevel(logging.WARNING)

_DEFAULT_TEXT = {
    421: "4.3.2 Service not available, closing channel",
    450: "4.2.1 Mailbox busy, try again later",
    451: "4.3.0 Temporary failure, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 Mailbox unavailable",
    552: "5.3.4 Message too big",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.7.1 Transaction failed",
}


@dataclass
class ReceivedMail:
    """One accepted message: envelope, raw bytes as received, and who had logged in.

    ``mail_from`` is "" for the null reverse-path ``<>``; ``data`` is the message as the
    client sent it after dot-unstuffing, line ends untouched.
    """

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated_as: str | None
    mail_options: list[str] = field(default_factory=list)
    used_tls: bool = False

    def message(self) -> email.message.EmailMessage:
        """``data`` parsed with the modern e-mail policy."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


@dataclass
class _Reply:
    stage: Stage
    code: int
    text: str
    times: int
    recipient: str | None


class _Controller(Controller):
    """A Controller whose per-connection SMTP object reads the server's current TLS mode."""

    def __init__(self, owner: SmtpServer, port: int) -> None:
        ssl_context = None
        if owner.tls == "implicit":
            if owner.tls_files is None:
                raise ValueError("implicit TLS needs tls_files")
            ssl_context = owner.tls_files.server_context()
        super().__init__(
            owner,
            hostname=net.HOST,
            port=port,
            ssl_context=ssl_context,
            server_hostname=SERVER_NAME,
        )
        self.owner = owner

    def factory(self) -> SMTP:
        tls_context = None
        if self.owner.tls == "starttls" and self.owner.tls_files is not None:
            tls_context = self.owner.tls_files.server_context()
        return SMTP(
            self.owner,
            hostname=SERVER_NAME,
            decode_data=False,
            enable_SMTPUTF8=True,
            tls_context=tls_context,
            # Loopback tests log in without TLS; AUTH is enforced in handle_MAIL so the
            # requirement can change while the server runs.
            auth_require_tls=False,
            authenticator=self.owner._authenticate,
            # XOAUTH2 is offered only once the test asks for it (accept_oauth2).
            auth_exclude_mechanism=[] if self.owner._oauth2 else ["XOAUTH2"],
        )


class SmtpServer:
    """A running test SMTP server; see the module docstring. Stop it with ``stop()``.

    The public methods are safe to call from the test thread while the server's own
    thread handles connections.
    """

    host: str = net.HOST

    def __init__(self, *, tls: TlsMode = "none", tls_files: TlsFiles | None = None) -> None:
        """Prepare (not start) a server; ``tls`` "starttls" or "implicit" needs ``tls_files``."""
        self.tls: TlsMode = tls
        self.tls_files = tls_files
        self.ca_file = tls_files.ca_file if tls_files else None
        self.port = 0
        self._lock = threading.Condition()
        self._messages: list[ReceivedMail] = []
        self._replies: list[_Reply] = []
        self._credentials: tuple[str, str] | None = None
        self._oauth2: tuple[str, str, str] | None = None
        self.oauth2_logins: list[str] = []
        self._relay: DovecotServer | None = None
        self._controller: _Controller | None = None

    def start(self) -> None:
        """Listen on a free port; retried on new ports if another process took it first."""
        last_error: Exception | None = None
        for _attempt in range(5):
            controller = _Controller(self, net.free_port())
            try:
                controller.start()
            except (OSError, RuntimeError) as error:
                last_error = error
                continue
            self._controller = controller
            self.port = controller.port
            return
        raise RuntimeError(f"SMTP test server did not start: {last_error}")

    def stop(self) -> None:
        """Stop listening. Idempotent."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # ----------------------------------------------------------- configuration

    def require_auth(self, username: str | None, password: str | None = None) -> None:
        """Demand AUTH PLAIN/LOGIN as ``username``/``password`` before MAIL; None: don't.

        Without a requirement AUTH is still offered and any credentials are accepted.
        """
        with self._lock:
            if username is None:
                self._credentials = None
            else:
                self._credentials = (username, password or "")

    def accept_oauth2(self, introspection_url: str, client_id: str, client_secret: str) -> None:
        """Offer and demand AUTH XOAUTH2, each token checked at ``introspection_url``
        (RFC 7662, as the client ``client_id``): it must be active and name the user
        who logs in. Users who logged in so are recorded in ``oauth2_logins``."""
        with self._lock:
            self._oauth2 = (introspection_url, client_id, client_secret)

    def reply_with(
        self,
        code: int,
        text: str = "",
        *,
        stage: Stage = "DATA",
        times: int = 1,
        recipient: str | None = None,
    ) -> None:
        """Answer ``code`` to the next ``times`` commands of ``stage`` instead of accepting.

        ``recipient`` limits a RCPT answer to that address. A rejected DATA is not
        recorded (and not relayed). Queued answers are used in the order given.
        """
        if stage not in ("MAIL", "RCPT", "DATA"):
            raise ValueError(f"unknown SMTP stage {stage!r}")
        text = text or _DEFAULT_TEXT.get(code, "Chosen by the test")
        with self._lock:
            self._replies.append(_Reply(stage, code, text, times, recipient))

    def relay_to_lmtp(self, dovecot: DovecotServer | None) -> None:
        """Also deliver accepted mail to ``dovecot`` over LMTP (None: stop relaying).

        Recipients must be Dovecot users; if LMTP refuses one, the SMTP client gets the
        error at DATA and nothing is recorded.
        """
        with self._lock:
            self._relay = dovecot

    # ------------------------------------------------------------------ results

    @property
    def messages(self) -> list[ReceivedMail]:
        """A snapshot of the messages accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 10) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived; return them all.

        Raises ``TimeoutError`` listing what did arrive when ``timeout`` runs out.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"SMTP server got {len(self._messages)} of {count} messages: "
                        f"{[(m.mail_from, m.rcpt_tos) for m in self._messages]}"
                    )
                self._lock.wait(remaining)
            return list(self._messages)

    def clear(self) -> None:
        """Forget received messages and queued answers (the AUTH setting stays)."""
        with self._lock:
            self._messages.clear()
            self._replies.clear()

    # ---------------------------------------------------------- aiosmtpd hooks

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        with self._lock:
            credentials = self._credentials
        login = auth_data.login.decode(errors="replace")
        password = auth_data.password.decode(errors="replace")
        if credentials is not None and (login, password) != credentials:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 with its initial response: "user=U^Aauth=Bearer T^A^A"."""
        with self._lock:
            oauth2 = self._oauth2
        if oauth2 is None or len(args) < 2:
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
        try:
            fields = dict(
                part.split("=", 1)
                for part in base64.b64decode(args[1]).decode().split("\x01")
                if "=" in part
            )
        except ValueError:
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
        user = fields.get("user", "")
        token = fields.get("auth", "").removeprefix("Bearer ")
        loop = asyncio.get_running_loop()
        owner = await loop.run_in_executor(None, _introspect, oauth2, token)
        if not user or owner != user:
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
        with self._lock:
            self.oauth2_logins.append(user)
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))

    def _take_reply(self, stage: Stage, recipient: str | None = None) -> str | None:
        with self._lock:
            for reply in self._replies:
                if reply.stage != stage:
                    continue
                if reply.recipient is not None and (
                    recipient is None or reply.recipient.lower() != recipient.lower()
                ):
                    continue
                reply.times -= 1
                if reply.times <= 0:
                    self._replies.remove(reply)
                return f"{reply.code} {reply.text}"
        return None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        with self._lock:
            needs_auth = self._credentials is not None or self._oauth2 is not None
        if needs_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        reply = self._take_reply("MAIL")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._take_reply("RCPT", address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._take_reply("DATA")
        if reply is not None:
            return reply
        data = envelope.original_content or b""
        # The null reverse-path (RFC 5321 §4.5.5: bounces, auto-replies) is kept as "".
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":
            mail_from = ""
        with self._lock:
            relay = self._relay
        if relay is not None:
            loop = asyncio.get_running_loop()
            error = await loop.run_in_executor(
                None, _relay, relay, mail_from, list(envelope.rcpt_tos), data
            )
            if error:
                return f"451 4.4.0 Relay to LMTP failed: {error}"
        authenticated_as = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            authenticated_as = session.auth_data.login.decode(errors="replace")
        received = ReceivedMail(
            mail_from=mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=data,
            authenticated_as=authenticated_as,
            mail_options=list(envelope.mail_options),
            used_tls=_uses_tls(server, session),
        )
        with self._lock:
            self._messages.append(received)
            self._lock.notify_all()
        return "250 2.0.0 OK: queued"


def _uses_tls(server: SMTP, session: Session) -> bool:
    # session.ssl is set after STARTTLS only; implicit TLS shows on the transport.
    if session.ssl is not None:
        return True
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


def _introspect(oauth2: tuple[str, str, str], token: str) -> str:
    """The user an active token belongs to, asked at the introspection endpoint; ""."""
    url, client_id, secret = oauth2
    credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - the test's own http URL
        url,
        data=urllib.parse.urlencode({"token": token}).encode(),
        headers={"Authorization": f"Basic {credentials}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer = json.loads(response.read())
    except (OSError, ValueError):
        return ""
    return str(answer.get("username", "")) if answer.get("active") else ""


def _relay(dovecot: DovecotServer, mail_from: str, rcpt_tos: list[str], data: bytes) -> str:
    """Deliver ``data`` to each recipient over LMTP; return an error text or ''.

    One LMTP transaction per recipient: LMTP answers DATA once per recipient (RFC 2033
    §4.2) and smtplib reads only one answer.
    """
    for recipient in rcpt_tos:
        try:
            with smtplib.LMTP(dovecot.host, dovecot.lmtp_port, timeout=30) as lmtp:
                lmtp.sendmail(mail_from, [recipient], data)
        except (smtplib.SMTPException, OSError) as error:
            return f"{recipient}: {error}"
    return ""


def start_smtp(
    *, tls: TlsMode = "none", tls_files: TlsFiles | None = None, cert_dir: Path | None = None
) -> SmtpServer:
    """Start an SMTP test server and return it running; the caller must ``stop()`` it.

    For ``tls`` "starttls" or "implicit", pass ``tls_files`` (e.g. a TLS Dovecot's, so one
    CA covers both) or a ``cert_dir`` to make new ones in; ``server.ca_file`` is the CA.
    """
    if tls != "none" and tls_files is None:
        if cert_dir is None:
            raise ValueError("a TLS SMTP server needs tls_files or cert_dir")
        tls_files = make_tls_files(cert_dir)
    server = SmtpServer(tls=tls, tls_files=tls_files)
    server.start()
    return server


def client_context(ca_file: str) -> ssl.SSLContext:
    """A client context trusting only ``ca_file`` (for smtplib's STARTTLS / SMTP_SSL)."""
    return ssl.create_default_context(cafile=ca_file)
