"""Whether an out-of-office reply goes to a message: the one decision.

`decide` is pure (headers, envelope, the user's settings and what was answered
before in, a `Decision` out) and is the only copy of the rules: the responder
calls it on new inbox mail and `posta autoreply check` calls it on a file, so an
administrator's "why did (or didn't) this person get my reply?" is answered by
the code that sent it.

The rules are RFC 3834 §2 and §3 and RFC 5230 §4.5-4.6, with Pigeonhole's
vacation action (the reference the corpus test compares against, through
`sieve-test`) for what the RFCs leave open. Posta is stricter than Pigeonhole
in a few places the issue asks for, each marked "Posta only" below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from django.utils.translation import gettext

#: A message's header fields as on the wire (name, unfolded raw value).
Headers = Sequence[tuple[str, str]]

# Pigeonhole's list (cmd-vacation.c `_list_headers`); Posta refuses any List-*
# field (RFC 2369, RFC 2919, RFC 8058), which covers these.
_MY_ADDRESS_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
# Microsoft's X-Auto-Response-Suppress (MS-OXCMAIL §2.1.3.2.20): "All" and "OOF"
# as Pigeonhole; "AutoReply" too (Posta only).
_SUPPRESS_TOKENS = frozenset({"all", "oof", "autoreply"})
# Local parts that are robots, never people (RFC 3834 §3.1.7, RFC 2142);
# Pigeonhole knows the first three and the -request / owner- patterns.
_SYSTEM_LOCALPARTS = frozenset(
    {"mailer-daemon", "listserv", "majordomo", "postmaster", "noreply", "no-reply",
     "donotreply", "do-not-reply"}
)

#: What the filters did with the message before out-of-office looked at it.
FILTER_OUTCOMES_WITHOUT_REPLY = frozenset({"stopped", "spam", "trash", "deleted"})


@dataclass(frozen=True)
class Envelope:
    """The SMTP envelope: `sender` is the reverse path without its brackets
    ("" for the null sender `<>` or none at all), `recipient` the address the
    mail was delivered to."""

    sender: str
    recipient: str


@dataclass(frozen=True)
class Policy:
    """The user's out-of-office settings as the decision needs them.

    `addresses` are further addresses of the user's (aliases, the other
    addresses of the account) that count as "addressed to me" (RFC 5230 §4.5
    `:addresses`). `starts_at` / `ends_at` bound the arrival time (None: open).
    With `known_only`, only senders in `known` (lower-case) get a reply.
    """

    addresses: tuple[str, ...] = ()
    days: int = 7
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    known_only: bool = False
    known: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class History:
    """What is known of earlier replies: when this sender last got the current
    reply text (None: never), and where and when the message arrived, and what
    the filters did with it ("" for nothing that matters)."""

    last_replied_at: datetime | None = None
    arrived_at: datetime | None = None
    now: datetime | None = None
    filter_outcome: str = ""


def reason_words(code: str, params: dict[str, str]) -> str:
    """The reason in the active language."""
    templates = {
        "reply": gettext("reply"),
        "null_sender": gettext("the envelope sender is empty (<>), so nobody can be answered"),
        "bad_sender": gettext("the envelope sender is not a valid address"),
        "no_recipient": gettext("there is no envelope recipient"),
        "own_address": gettext("the sender is one of my own addresses (%(address)s)"),
        "auto_submitted": gettext(
            "the message was sent automatically (Auto-Submitted: %(value)s)"
        ),
        "mailing_list": gettext("the message came from a mailing list (%(field)s header)"),
        "precedence": gettext("the message is bulk mail (Precedence: %(value)s)"),
        "suppressed": gettext(
            "the sender asked for no automatic replies (X-Auto-Response-Suppress: %(value)s)"
        ),
        "system_sender": gettext("the sender is a system address, not a person (%(address)s)"),
        "not_addressed": gettext(
            "none of my addresses is among its recipients (list mail, or a copy for someone else)"
        ),
        "filtered": gettext("a filter dealt with the message first (%(outcome)s)"),
        "before_start": gettext("the message arrived before the out-of-office period began"),
        "after_end": gettext("the message arrived after the out-of-office period ended"),
        "unknown_sender": gettext("the sender is not someone I have written to"),
        "turned_off": gettext("out-of-office was turned off before the reply went out"),
        "message_gone": gettext("the message is no longer in the inbox"),
        "server_answers": gettext("the mail server answered it with the out-of-office reply"),
        "answered": gettext("%(address)s already got this reply within the last %(days)s days"),
    }
    return templates.get(code, code) % params


@dataclass(frozen=True)
class Decision:
    """`reply` or not, with the reason as a code and in words; `reply_to` is the
    address the reply goes to (the envelope sender, RFC 3834 §4) and
    `addressed_to` the address of mine the message named."""

    reply: bool
    code: str
    params: dict[str, str] = field(default_factory=dict)
    reply_to: str = ""
    addressed_to: str = ""

    @property
    def reason(self) -> str:
        return reason_words(self.code, self.params)

    def line(self) -> str:
        """What the command prints: `reply` or `no reply: <reason>`."""
        return "reply" if self.reply else f"no reply: {self.reason}"


def _no(code: str, **params: str) -> Decision:
    return Decision(reply=False, code=code, params=params)


def headers_of(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of a raw message, unfolded, undecoded."""
    message = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return [(name, _unfold(str(value))) for name, value in message.items()]


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


def delivered_at(headers: Headers) -> datetime | None:
    """When the receiving server took the message: the date of the topmost
    Received field (RFC 5321 §4.4, `; date-time` at its end), the one our own
    server wrote; None when there is none that reads."""
    for value in _values(headers, "received"):
        _, _, stamp = value.rpartition(";")
        try:
            moment = parsedate_to_datetime(stamp.strip())
        except (TypeError, ValueError, IndexError):
            return None
        return moment if moment.tzinfo is not None else None
    return None


def envelope_address(path: str) -> str:
    """The address in a reverse path as written in a Return-Path field or on
    the command line: brackets and a source route (RFC 5321 §4.1.2, `<@a,@b:x@y>`)
    dropped; "" for the null path."""
    text = path.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if text.startswith("@") and ":" in text:
        text = text.split(":", 1)[1]
    return text.strip()


def normalized(address: str) -> str:
    """The form addresses are compared and remembered in (RFC 5321 leaves the
    local part's case to the receiving host; every host that matters, Pigeonhole
    too, compares it case-insensitively)."""
    return address.strip().lower()


def _values(headers: Headers, name: str) -> list[str]:
    return [value for field_name, value in headers if field_name.lower() == name]


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return (local, domain) if local else (address, "")


def _is_system(localpart: str) -> bool:
    lowered = localpart.lower()
    return (
        lowered in _SYSTEM_LOCALPARTS
        or "-request" in lowered
        or lowered.startswith("owner-")
    )


def _addressed_to(headers: Headers, mine: Iterable[str]) -> str:
    wanted = {normalized(a) for a in mine if a}
    for name in _MY_ADDRESS_FIELDS:
        for _display, address in getaddresses(_values(headers, name)):
            if normalized(address) in wanted:
                return normalized(address)
    return ""


def _header_checks(headers: Headers) -> Decision | None:
    """RFC 3834 §2: robots, lists and bulk mail are never answered."""
    for value in _values(headers, "auto-submitted"):
        # As Pigeonhole: anything but a bare "no" (a comment too) is automatic.
        if value.strip().lower() != "no":
            return _no("auto_submitted", value=value)
    for name, _value in headers:
        if name.lower().startswith("list-"):
            return _no("mailing_list", field=name)
    for value in _values(headers, "precedence"):
        if value.strip().lower() in _BULK_PRECEDENCE:
            return _no("precedence", value=value.strip())
    for value in _values(headers, "x-auto-response-suppress"):
        tokens = {token.strip().lower() for token in value.split(",")}
        if tokens & _SUPPRESS_TOKENS:
            return _no("suppressed", value=value.strip())
    return None


def _timing_checks(policy: Policy, history: History, sender: str) -> Decision | None:
    if history.filter_outcome in FILTER_OUTCOMES_WITHOUT_REPLY:
        return _no("filtered", outcome=history.filter_outcome)
    arrived = history.arrived_at
    if arrived is not None and policy.starts_at is not None and arrived < policy.starts_at:
        return _no("before_start")
    if arrived is not None and policy.ends_at is not None and arrived >= policy.ends_at:
        return _no("after_end")
    if policy.known_only and sender not in policy.known:
        return _no("unknown_sender")
    last, now = history.last_replied_at, history.now
    # RFC 5230 §4.6: one reply per sender per :days (at least 1 day, §4.1).
    if last is not None and now is not None:
        if now - last < timedelta(days=max(policy.days, 1)):
            return _no("answered", address=sender, days=str(max(policy.days, 1)))
    return None


def decide(
    headers: Headers, envelope: Envelope, policy: Policy, history: History | None = None
) -> Decision:
    """Reply or not to a message with `headers` delivered with `envelope`.

    The order of the checks only chooses which reason is given; every one must
    pass for a reply.
    """
    history = history or History()
    recipient = normalized(envelope_address(envelope.recipient))
    sender_path = envelope_address(envelope.sender)
    if not recipient:
        return _no("no_recipient")
    # RFC 3834 §3.1.1 / RFC 5230 §4.6: the reply goes to the envelope sender only;
    # none (or the null path) means nobody may be answered.
    if not sender_path:
        return _no("null_sender")
    localpart, domain = _split(sender_path)
    if not domain or not localpart:
        return _no("bad_sender")
    sender = normalized(sender_path)
    mine = (recipient, *(normalized(a) for a in policy.addresses))
    if sender in mine:
        return _no("own_address", address=sender_path)
    found = _header_checks(headers)
    if found is not None:
        return found
    if _is_system(localpart):
        return _no("system_sender", address=sender_path)
    # RFC 5230 §4.5: answer only mail that names one of my addresses, so a list or
    # Bcc copy sent to many is never answered.
    addressed = _addressed_to(headers, mine)
    if not addressed:
        return _no("not_addressed")
    found = _timing_checks(policy, history, sender)
    if found is not None:
        return found
    return Decision(reply=True, code="reply", reply_to=sender_path, addressed_to=addressed)
