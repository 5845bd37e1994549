"""TLS contexts for IMAP, SMTP and POP3 connections.

Certificates are always verified, host name included (RFC 6125 via OpenSSL): a mail
client that accepts any certificate hands the user's password to whoever sits on
the path. A private CA (on-premise servers, tests) is trusted by adding its file.
"""

from __future__ import annotations

import ssl


def make_context(*, ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the server: the system CAs, plus `ca_file`
    (a PEM bundle) when given. TLS 1.2 is the floor (RFC 8996 deprecates 1.0/1.1;
    RFC 8314 §4.1 asks mail clients for TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
