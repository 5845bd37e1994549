"""SASL initial responses for bearer tokens: XOAUTH2 and OAUTHBEARER (RFC 7628).

Pure functions, no I/O: the IMAP and SMTP clients send what these build and answer
the server's error challenge with `error_reply`. OAUTHBEARER is the standard one
(RFC 7628 §3.1); XOAUTH2 is Google's and Microsoft's older form of the same thing.
Where a server announces both, OAUTHBEARER is used (`choose_mechanism`).
"""

from __future__ import annotations

from collections.abc import Iterable

XOAUTH2 = "XOAUTH2"
OAUTHBEARER = "OAUTHBEARER"


def xoauth2_response(username: str, token: str) -> bytes:
    """`user=U ^A auth=Bearer T ^A ^A`, before base64 (Google's XOAUTH2 protocol)."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01".encode()


def _saslname(username: str) -> str:
    # RFC 5801 §4: "=" and "," are escaped in the gs2 authzid.
    return username.replace("=", "=3D").replace(",", "=2C")


def oauthbearer_response(username: str, token: str, *, host: str = "", port: int = 0) -> bytes:
    """The OAUTHBEARER client response (RFC 7628 §3.1): a gs2 header naming the
    user, then key/value pairs separated by ^A, ending with ^A^A."""
    parts = [f"n,a={_saslname(username)},"]
    if host:
        parts.append(f"host={host}")
    if port:
        parts.append(f"port={port}")
    parts.append(f"auth=Bearer {token}")
    return ("\x01".join(parts) + "\x01\x01").encode()


def error_reply(mechanism: str) -> bytes:
    """What the client answers to the server's error challenge: a lone ^A for
    OAUTHBEARER (RFC 7628 §3.2.3), an empty response for XOAUTH2; the server then
    ends the exchange with a failure."""
    return b"\x01" if mechanism == OAUTHBEARER else b""


def choose_mechanism(offered: Iterable[str]) -> str | None:
    """OAUTHBEARER where announced, else XOAUTH2, else None (neither offered)."""
    upper = {m.upper() for m in offered}
    if OAUTHBEARER in upper:
        return OAUTHBEARER
    if XOAUTH2 in upper:
        return XOAUTH2
    return None


def initial_response(mechanism: str, username: str, token: str, *, host: str, port: int) -> bytes:
    if mechanism == OAUTHBEARER:
        return oauthbearer_response(username, token, host=host, port=port)
    return xoauth2_response(username, token)
