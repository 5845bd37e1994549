"""Message identity (DESIGN §5) and the envelope fields the mail store keys on.

The decoding itself lives in posta.mailproto.mime (regular-expression fast paths,
`email` with `policy.default` behind them for what they do not recognize); this
module only normalizes what the database keys on:

- Message-IDs without angle brackets, domain lower-cased
  (posta.mailproto.mime.threading.normalize_message_id), so a copy and a reply
  naming it meet;
- a Date more than a year in the future is treated as missing (the list would sort
  it first forever), and so is one in year 1 (it overflows when converted to UTC);
  dates before 1970 are real (RFC 5322 §A.1 dates its examples 1969);
- a message's identity (DESIGN §5: Message-ID plus a few fields, since some
  servers reuse Message-IDs): the key that makes every copy of one message, in
  any folder of any account of the user, one Message row;
- a copy's content hash (its body and its header fields but the trace and
  delivery ones), which tells, once a copy's body is known, a true copy (Sent and
  INBOX, a Gmail label, the same bytes delivered along another route) from a
  different message that happens to share the identity's fields; and the
  identity such a different message is stored under (posta.mail.copies).

Nothing here raises on malformed input.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

from posta.mailproto.mime import headers
from posta.mailproto.mime.headers import Envelope
from posta.mailproto.mime.threading import normalize_message_id

MAX_REFERENCES = 100
MAX_ID = 990
_AHEAD = timedelta(days=366)


_KEYS: dict[str, str] = {}


def _key(raw: str) -> str:
    """normalize_message_id, remembered: thread roots and parents recur in the
    References of every later message of their conversation."""
    if not raw:
        return ""
    key = _KEYS.get(raw)
    if key is None:
        key = normalize_message_id(raw)[:MAX_ID]
        if len(_KEYS) >= 50000:
            _KEYS.clear()
        _KEYS[raw] = key
    return key


def parse_envelope(header: bytes) -> Envelope:
    """The envelope of a header block, identifiers normalized; never raises.

    `message_id` and `in_reply_to` are keys (no brackets), `references` the keys of
    the References field, oldest first, at most MAX_REFERENCES of them; the address
    lists hold every address.
    """
    try:
        env = headers.parse_envelope(header)
    except Exception:  # noqa: BLE001 - keep syncing; an empty envelope is shown
        return Envelope()
    env.message_id = _key(env.message_id)
    env.in_reply_to = _key(env.in_reply_to)
    refs = env.references
    if refs:
        if len(refs) > MAX_REFERENCES:
            # RFC 5322 §3.6.4 lets a long chain keep its first and last ids.
            refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
        env.references = [k for k in map(_key, refs) if k]
    if "\n" in env.subject or "\r" in env.subject:
        env.subject = env.subject.replace("\r", "").replace("\n", "")
    if len(env.subject) > 2000:
        env.subject = env.subject[:2000]
    if env.date is not None and not _plausible(env.date):
        env.date = None
    # To, Cc and Reply-To are kept whole, however long: Reply all answers every
    # recipient, and pages cap only what they show.
    return env


def _plausible(date: datetime) -> bool:
    """A Date the list may sort by; otherwise the INTERNALDATE the server recorded
    is used. A clock more than a year ahead is broken; year 1 overflows in UTC."""
    return date.year >= 2 and date <= datetime.now(UTC) + _AHEAD


def identity(env: Envelope, size: int) -> str:
    """The key that makes copies of one message one Message (DESIGN §5).

    With a Message-ID: the id plus sender, date and subject, because some servers
    and mailing tools reuse Message-IDs for different mail. Without one: the
    header fields plus the size.
    """
    sender = env.from_[0][1].lower() if env.from_ else ""
    date = env.date.isoformat() if env.date else ""
    if env.message_id:
        parts = ["id", env.message_id, sender, date, env.subject]
    else:
        rcpt = ",".join(sorted(a[1].lower() for a in env.to + env.cc))
        parts = ["noid", sender, rcpt, date, env.subject, str(size)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()


def whole_subject(raw: bytes) -> str | None:
    """The Subject of the message's whole header block when that block has
    obsolete syntax (RFC 5322 §4.5: a folded line that does not start with white
    space), else None. A server's HEADER.FIELDS answer (what the sync lists
    from) may cut such a field where the whole block read by the one MIME reader
    does not: once the body is known, the list shows what the reader shows."""
    block = header_block(raw)
    if not headers.has_obsolete_lines(block):
        return None
    return parse_envelope(block).subject


def header_block(raw: bytes) -> bytes:
    """The header block of raw message bytes (up to the first empty line)."""
    end = raw.find(b"\r\n\r\n")
    if end >= 0:
        return raw[: end + 4]
    end = raw.find(b"\n\n")
    return raw if end < 0 else raw[: end + 2]


# Fields that the route a message took adds or changes, not its author: trace
# fields (RFC 5322 §3.6.7, RFC 5321 §4.4), delivery fields (RFC 9228
# Delivered-To, X-Original-To, Envelope-To), the receiving side's verdicts
# (RFC 8601 Authentication-Results, RFC 7208 Received-SPF, RFC 8617 ARC,
# spam and virus scanners), the mailbox store's own (mbox Status, Content-Length,
# Lines) and Bcc, which only the sender's copy keeps (RFC 5322 §3.6.3).
_TRACE_FIELDS = frozenset(
    {
        "received", "return-path", "delivered-to", "x-original-to", "x-delivered-to",
        "envelope-to", "x-envelope-to", "x-envelope-from", "x-received",
        "authentication-results", "received-spf", "dkim-signature",
        "x-google-dkim-signature", "domainkey-signature", "status", "x-status",
        "x-keywords", "x-uid", "content-length", "lines", "bcc", "x-rcpt-to",
        "x-original-arrival-time", "x-forwarded-to", "x-forwarded-for",
        "x-gm-message-state", "x-google-smtp-source", "x-mozilla-status",
        "x-mozilla-status2", "x-mozilla-keys", "x-virus-scanned", "x-originating-ip",
    }
)  # fmt: skip
_TRACE_PREFIXES = ("arc-", "x-spam", "x-ms-exchange-", "x-microsoft-antispam", "x-ham-")
_HEADER_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.MULTILINE)
_WHITE = re.compile(rb"[ \t\r\n]+")


def _is_trace(name: str) -> bool:
    return name in _TRACE_FIELDS or name.startswith(_TRACE_PREFIXES)


def content_hash(raw: bytes) -> str:
    """A hash of what the author of `raw` wrote: the body and every header field
    but the trace and delivery ones, so two copies of one message hash alike
    whatever route brought each, and two different messages do not.

    Field order and folding are not content (a relay may refold), nor are line
    endings (a server may store LF and serve CRLF): fields are compared unfolded,
    white space collapsed, sorted; the body with LF line ends.
    """
    block = header_block(raw)
    body = raw[len(block) :].replace(b"\r\n", b"\n")
    fields = []
    for name, value in _HEADER_FIELD.findall(headers.repair_header_block(block)):
        lower = name.decode("ascii").lower()
        if not _is_trace(lower):
            fields.append(lower.encode() + b":" + _WHITE.sub(b" ", value).strip())
    fields.sort()
    digest = hashlib.sha256(b"\n".join(fields))
    digest.update(b"\n\n")
    digest.update(body.rstrip(b"\n"))
    return digest.hexdigest()


def content_identity(base: str, content: str) -> str:
    """The identity of a message that shares the identity `base` with another but
    whose content (content_hash) differs: each such message has a row of its own."""
    return hashlib.sha256(f"content\x1f{base}\x1f{content}".encode()).hexdigest()
