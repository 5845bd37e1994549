"""What to do about each way talking to a mail server can fail: the one table
(STYLE 5). Pure data and two lookups; no Django.

Three verdicts:

- RETRY: the server could not be reached, dropped the connection or asked us to
  slow down, and nothing was done; try again later with backoff, until the
  deadline of the work (`Rule.retry_for`, counted from when the work was asked
  for). SMTP 4xx (RFC 5321 §4.2.1: transient), and 552 on RCPT or DATA, which
  RFC 5321 §4.5.3.1.10 asks clients to treat as 452.
- ACCOUNT: the account's settings are wrong (password refused, TLS impossible,
  host not allowed, stored secret unreadable, an extension the settings rely on
  missing): the work waits, the account says what to fix and links to its
  settings, and it is tried again only slowly, without deadline: it runs once the
  user has fixed them. SMTP 530/534/535/538 (RFC 4954 §6).
- PERMANENT: the server refused this very request (a BAD, an unusable answer, any
  other SMTP 5xx): retrying would get the same answer; stop and tell the user.

Every MailError class has a row (tests/unit/test_failures.py walks the subclasses,
so a new class without one fails the test); a subclass defined elsewhere (e.g.
the account connection's "host refused" and "secret unreadable") is judged by the
nearest class of its MRO that the table names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from posta.mailproto import errors


class Verdict(StrEnum):
    RETRY = "retry"
    ACCOUNT = "account"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Rule:
    """A verdict, and for RETRY how long after the work was asked for it is
    retried; `slow_down` when the server asked us to (RFC 5530), so a reconnect
    keeps its full backoff (posta.sync.reconnect)."""

    verdict: Verdict
    retry_for: timedelta | None = None
    slow_down: bool = False


# How long a server-side step (a remote action, a Sent copy, a draft's copy) is
# retried while the server is unreachable or busy: a day covers a night's outage.
SERVER_RETRY_FOR = timedelta(hours=24)
# How long an outgoing message is retried, counted from its first queueing. RFC 5321
# §4.5.4.1 wants at least 4-5 days of an MTA; the user of a mail client wants to
# hear sooner that the message has not left.
SEND_RETRY_FOR = timedelta(days=2)

_RETRY = Rule(Verdict.RETRY, SERVER_RETRY_FOR)
_BUSY = Rule(Verdict.RETRY, SERVER_RETRY_FOR, slow_down=True)
_ACCOUNT = Rule(Verdict.ACCOUNT)
_PERMANENT = Rule(Verdict.PERMANENT)

ERROR_TABLE: dict[type[errors.MailError], Rule] = {
    # Unreachable, dropped or throttled: nothing was done, the server may be back soon.
    errors.HostNotFound: _RETRY,  # DNS may fail for minutes; a typo shows at "test"
    errors.ConnectionRefused: _RETRY,  # a server restarting refuses for a while
    errors.ConnectTimeout: _RETRY,
    errors.TemporaryNetworkError: _RETRY,
    errors.ServerBusy: _BUSY,  # RFC 5530 [THROTTLED], [UNAVAILABLE], [INUSE]
    errors.NumberingChanged: _RETRY,  # waits for the sync to pair the copy again
    # The settings must change: the user is told and the work waits for them.
    errors.AuthenticationFailed: _ACCOUNT,
    errors.TlsRequired: _ACCOUNT,  # RFC 3501 §6.2.3 LOGINDISABLED, RFC 3207 §4
    errors.TlsError: _ACCOUNT,  # wrong port for the security chosen
    errors.CertificateError: _ACCOUNT,
    errors.StartTlsNotOffered: _ACCOUNT,
    errors.CapabilityMissing: _ACCOUNT,  # e.g. SMTP AUTH, SMTPUTF8 (RFC 6531)
    errors.SettingsRefused: _ACCOUNT,  # host not allowed, secret unreadable
    # This request was refused: the same request gets the same answer.
    errors.ProtocolError: _PERMANENT,
}

# SMTP replies meaning the login or the connection's security is the problem
# (RFC 4954 §6: 530 authentication required, 534 mechanism too weak, 535
# credentials invalid, 538 encryption required).
_ACCOUNT_REPLIES = frozenset({530, 534, 535, 538})
_SEND_RETRY = Rule(Verdict.RETRY, SEND_RETRY_FOR)


def rule_for_class(cls: type[errors.MailError]) -> Rule | None:
    """The row of the nearest class of `cls`'s MRO in the table; None for a class
    the table does not know (MailError itself, or a new direct subclass)."""
    for base in cls.__mro__:
        rule = ERROR_TABLE.get(base)
        if rule is not None:
            return rule
    return None


def rule_for_error(exc: errors.MailError) -> Rule:
    """The rule for a failure; an error the table does not know is retried, since
    judging it permanent could lose the user's work over our own omission."""
    return rule_for_class(type(exc)) or _RETRY


def verdict_for_error(exc: errors.MailError) -> Verdict:
    return rule_for_error(exc).verdict


def rule_for_reply(code: int) -> Rule:
    """The rule for an SMTP reply code that is not a success (RFC 5321 §4.2.1)."""
    if code == 552 or 400 <= code < 500:
        return _SEND_RETRY
    if code in _ACCOUNT_REPLIES:
        return _ACCOUNT
    return _PERMANENT


def verdict_for_reply(code: int) -> Verdict:
    return rule_for_reply(code).verdict
