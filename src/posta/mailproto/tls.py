"""TLS contexts and the pinned connection for IMAP, SMTP, POP3 and ManageSieve.

Certificates are always verified, host name included (RFC 6125 via OpenSSL): a mail
client that accepts any certificate hands the user's password to whoever sits on
the path. A private CA (on-premise servers, tests) is trusted by adding its file.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any


def make_context(*, ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the server: the system CAs, plus `ca_file`
    (a PEM bundle) when given. TLS 1.2 is the floor (RFC 8996 deprecates 1.0/1.1;
    RFC 8314 §4.1 asks mail clients for TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def pinned_socket(
    host: str,
    port: int,
    *,
    address: str | None,
    timeout: float | None,
    implicit_tls: ssl.SSLContext | None = None,
    source_address: Any = None,  # smtplib's (host, port), passed through
) -> socket.socket:
    """The TCP connection every protocol client opens: to `address`, the one the
    caller's address guard allowed (else `host`), within `timeout` for the connect
    and every later read; with `implicit_tls`, TLS from the first byte (RFC 8314
    §3.2) with `host` as SNI and the name the certificate must carry. A failed
    handshake closes the socket. Raises OSError (ssl.SSLError included): each
    client classifies it with its own words."""
    sock = socket.create_connection((address or host, port), timeout, source_address)
    if implicit_tls is None:
        return sock
    try:
        return implicit_tls.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
