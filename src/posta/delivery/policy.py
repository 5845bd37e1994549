"""What to do about each way a send can fail: the one table (STYLE 5).

Three answers:

- RETRY: nothing left; try again later with backoff, up to a deadline.
  SMTP 4xx (RFC 5321 §4.2.1: transient), and 552 on RCPT or DATA, which RFC 5321
  §4.5.3.1.10 asks clients to treat as 452 (old servers sent it for "too many
  recipients"); trouble reaching the server before DATA began.
- ACCOUNT: the account's settings are wrong (password refused, TLS impossible,
  host not allowed): the message waits with the error and a link to the settings,
  tried again only slowly.
- PERMANENT: the server refused this message (any other 5xx): stop and tell the user.
"""

from __future__ import annotations

from enum import StrEnum

from posta.mailproto import errors


class Verdict(StrEnum):
    RETRY = "retry"
    ACCOUNT = "account"
    PERMANENT = "permanent"


# SMTP replies meaning the login or the connection's security is the problem
# (RFC 4954 §6: 530, 534, 535, 538).
_ACCOUNT_CODES = frozenset({530, 534, 535, 538})

# MailError classes (posta.mailproto.errors) by verdict; the most specific class that
# matches wins (CertificateError before TlsError, TlsRequired before AuthenticationFailed).
_ERROR_TABLE: tuple[tuple[type[errors.MailError], Verdict], ...] = (
    (errors.TlsRequired, Verdict.ACCOUNT),
    (errors.AuthenticationFailed, Verdict.ACCOUNT),
    (errors.CertificateError, Verdict.ACCOUNT),
    (errors.TlsError, Verdict.ACCOUNT),
    (errors.StartTlsNotOffered, Verdict.ACCOUNT),
    (errors.CapabilityMissing, Verdict.ACCOUNT),
    (errors.HostNotFound, Verdict.RETRY),
    (errors.ConnectionRefused, Verdict.RETRY),
    (errors.ConnectTimeout, Verdict.RETRY),
    (errors.TemporaryNetworkError, Verdict.RETRY),
    (errors.ServerBusy, Verdict.RETRY),
    (errors.ProtocolError, Verdict.PERMANENT),
)

# Error codes of failures that are not MailError classes but still the account's.
ACCOUNT_ERROR_CODES = frozenset({"host_not_allowed", "secret_unreadable", "smtputf8_missing"})


def verdict_for_reply(code: int) -> Verdict:
    """The verdict for an SMTP reply code that is not a success."""
    if code == 552 or 400 <= code < 500:
        return Verdict.RETRY
    if code in _ACCOUNT_CODES:
        return Verdict.ACCOUNT
    return Verdict.PERMANENT


def verdict_for_error(exc: errors.MailError) -> Verdict:
    """The verdict for a failure raised before the DATA command began."""
    if exc.code in ACCOUNT_ERROR_CODES:
        return Verdict.ACCOUNT
    for cls, verdict in _ERROR_TABLE:
        if isinstance(exc, cls):
            return verdict
    return Verdict.RETRY
