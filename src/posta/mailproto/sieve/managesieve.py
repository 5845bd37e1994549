"""A ManageSieve client (RFC 5804) over sievelib, with our TLS and our errors.

The TCP connection goes to the address the caller pinned (the guard checked
it); TLS sends `host` as SNI and checks the certificate for it with our context
(posta.mailproto.tls, the extra CA file included). security "tls" demands
STARTTLS before the password is sent (RFC 5804 §2.2), and never falls back to
plain text. Raises posta.mailproto.errors.MailError subclasses only; the
server's own words for a refused script are returned, not raised.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sievelib import managesieve

from posta.mailproto import errors
from posta.mailproto.common import redact
from posta.mailproto.tls import make_context, pinned_socket

DEFAULT_PORT = 4190


@dataclass(frozen=True)
class SieveSettings:
    host: str
    port: int
    address: str  # the pinned IP address to connect to
    security: str  # "none" or "tls" (STARTTLS)
    username: str
    password: str
    timeout: float = 15.0
    ca_file: str | None = None


class _Client(managesieve.Client):  # type: ignore[misc]  # sievelib ships no types
    """sievelib's client with our TLS context (the name-mangled hook it calls) and
    our timeouts: sievelib opens its socket with no connect timeout and reads with
    a class-wide one. This class shares sievelib's mangled names (`_Client__...`),
    so its `connect` calls sievelib's own steps."""

    context: ssl.SSLContext | None = None
    timeout: float = 15.0
    sock: Any
    srvaddr: str
    srvport: int
    srvhostname: str

    def connect(
        self, login: str, password: str, authz_id: str = "", starttls: bool = False,
        ssl: bool = False, authmech: str | None = None,
    ) -> bool:
        """sievelib's `connect` (1.x) with the connection's own connect and read
        timeout, as the IMAP client has; a server that does not answer in time
        raises ConnectTimeout."""
        if authmech is not None and authmech not in managesieve.SUPPORTED_AUTH_MECHS:
            raise managesieve.Error(f"Unsupported authentication mechanism: {authmech}")
        self.sock = pinned_socket(
            self.srvhostname, self.srvport, address=self.srvaddr, timeout=self.timeout
        )
        if ssl:
            self.__enable_ssl()
        if not self.__get_capabilities():
            raise managesieve.Error("Failed to read capabilities from server")
        if not ssl and starttls and not self.__starttls():
            return False
        return bool(self.__authenticate(login, password, authz_id, authmech))

    def _Client__enable_ssl(self, keyfile: Any = None, certfile: Any = None) -> None:
        assert self.context is not None  # noqa: S101 - set before connecting
        plain: Any = self.sock
        try:
            self.sock = self.context.wrap_socket(plain, server_hostname=self.srvhostname)
        except ssl.SSLCertVerificationError as exc:
            raise errors.CertificateError(f"{self.srvhostname}: {exc.verify_message}") from exc
        except (ssl.SSLError, OSError) as exc:
            raise errors.TlsError(f"{self.srvhostname}: {exc}") from exc


class SieveConnection:
    """One logged-in ManageSieve session."""

    def __init__(self, client: _Client, settings: SieveSettings) -> None:
        self._client = client
        self._settings = settings

    def __enter__(self) -> SieveConnection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _secrets(self) -> tuple[str, ...]:
        return (self._settings.password,)

    def _error(self) -> str:
        raw = self._client.errmsg or b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return redact(text.strip(), self._secrets())

    def extensions(self) -> list[str]:
        """The server's SIEVE capability (RFC 5804 §1.7), lower case."""
        return [str(e).lower() for e in self._client.get_sieve_capabilities() or []]

    def scripts(self) -> tuple[str | None, list[str]]:
        """(the active script's name or None, every script's name)."""
        try:
            listing = self._client.listscripts()
        except (OSError, managesieve.Error) as exc:
            raise errors.TemporaryNetworkError(f"{self._settings.host}: {exc}") from exc
        if listing is None:
            raise errors.ProtocolError(f"{self._settings.host}: LISTSCRIPTS: {self._error()}")
        active, others = listing
        names = sorted({*others, *([active] if active else [])})
        return active, names

    def get(self, name: str) -> str | None:
        return self._client.getscript(name)  # type: ignore[no-any-return]

    def check(self, script: str) -> str | None:
        """CHECKSCRIPT (RFC 5804 §2.12): None when the server accepts `script`,
        else its words."""
        try:
            ok = self._client.checkscript(script)
        except NotImplementedError:
            return None  # an RFC 5804 v0 server: PUTSCRIPT checks it as well
        except (OSError, managesieve.Error) as exc:
            raise errors.TemporaryNetworkError(f"{self._settings.host}: {exc}") from exc
        return None if ok else (self._error() or "refused")

    def put(self, name: str, script: str) -> str | None:
        """PUTSCRIPT; None when stored, else the server's words."""
        try:
            ok = self._client.putscript(name, script)
        except (OSError, managesieve.Error) as exc:
            raise errors.TemporaryNetworkError(f"{self._settings.host}: {exc}") from exc
        return None if ok else (self._error() or "refused")

    def activate(self, name: str) -> str | None:
        """SETACTIVE; None when done, else the server's words."""
        try:
            ok = self._client.setactive(name)
        except (OSError, managesieve.Error) as exc:
            raise errors.TemporaryNetworkError(f"{self._settings.host}: {exc}") from exc
        return None if ok else (self._error() or "refused")

    def close(self) -> None:
        try:
            if self._client.sock is not None:
                self._client.logout()
        except Exception:  # noqa: BLE001, S110 - closing a dead connection
            pass
        finally:
            try:
                if self._client.sock is not None:
                    self._client.sock.close()
            except OSError:
                pass
            self._client.sock = None


def connect(settings: SieveSettings) -> SieveConnection:
    """Connect, secure as asked, log in (SASL PLAIN); MailError on failure."""
    if settings.security not in {"none", "tls"}:
        raise ValueError(f"unknown security {settings.security!r}")
    client = _Client(settings.address, settings.port, srvhostname=settings.host)
    client.context = make_context(ca_file=settings.ca_file)
    client.timeout = max(settings.timeout, 0.1)
    secrets = (settings.password,)
    try:
        ok = client.connect(
            settings.username, settings.password,
            starttls=settings.security == "tls", authmech="PLAIN",
        )
    except errors.MailError:
        _close_socket(client)
        raise
    except OSError as exc:  # the TCP connection: refused, unreachable, timed out
        _close_socket(client)
        raise errors.classify_os_error(exc, host=f"{settings.host}:{settings.port}") from exc
    except managesieve.Error as exc:
        _close_socket(client)
        text = redact(str(exc), secrets)
        if text.startswith("Failed to read"):  # sievelib's words for a read timeout
            raise errors.ConnectTimeout(
                f"{settings.host}:{settings.port}: no answer in time"
            ) from exc
        if "refused" in text.lower():
            raise errors.ConnectionRefused(f"{settings.host}:{settings.port}: {text}") from exc
        if "timed out" in text.lower():
            raise errors.ConnectTimeout(f"{settings.host}:{settings.port}: {text}") from exc
        if "STARTTLS" in text:
            raise errors.StartTlsNotOffered(f"{settings.host}: {text}") from exc
        raise errors.ProtocolError(f"{settings.host}: {text}") from exc
    connection = SieveConnection(client, settings)
    if not ok:
        message = connection._error()  # noqa: SLF001 - our own object
        connection.close()
        raise errors.AuthenticationFailed(f"{settings.host}: {message or 'login refused'}")
    return connection


def _close_socket(client: _Client) -> None:
    try:
        if client.sock is not None:
            client.sock.close()
    except OSError:
        pass
    client.sock = None
