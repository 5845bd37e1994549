"""Helpers for threading messages (RFC 5256 §2.2 REFERENCES, after J. Zawinski's
algorithm): Message-ID keys, a message's parent chain, and the base subject used
only where references are missing.
"""

from __future__ import annotations

import re

from posta.mailproto.mime.headers import Envelope

__all__ = ["base_subject", "normalize_message_id", "thread_parents"]

# msg-id = "<" id-left "@" id-right ">" (RFC 5322 §3.6.4); we accept anything
# without white space or brackets on either side of one "@", as real mail does.
_VALID_ID = re.compile(r"[^\s<>@]+@[^\s<>@]+")


def normalize_message_id(value: str) -> str:
    """The key of a Message-ID: angle brackets and white space removed, the domain
    (right of the last "@") lower-cased. The local part keeps its case: RFC 5322
    does not make it case-insensitive and some generators rely on case.

    Returns "" when nothing usable is left.
    """
    text = "".join(value.split())
    if text.startswith("<"):
        text = text[1:]
    if text.endswith(">"):
        text = text[:-1]
    text = text.strip("<>")
    left, at, right = text.rpartition("@")
    if not at:
        return text
    return f"{left}@{right.lower()}"


def thread_parents(envelope: Envelope) -> list[str]:
    """The normalized ids of a message's ancestors, oldest first: the References
    list, then In-Reply-To if it is not already its last entry (RFC 5256 §2.2 step
    1.A/1.B; the JWZ algorithm uses In-Reply-To only when References is missing,
    but appending it when different costs nothing and helps mail that truncates
    References). Duplicates, malformed ids and the message's own id are dropped.
    """
    own = normalize_message_id(envelope.message_id) if envelope.message_id else ""
    parents: list[str] = []
    seen: set[str] = {own} if own else set()
    candidates = list(envelope.references)
    if envelope.in_reply_to:
        candidates.append(envelope.in_reply_to)
    for raw in candidates:
        key = normalize_message_id(raw)
        if not key or key in seen or _VALID_ID.fullmatch(key) is None:
            continue
        seen.add(key)
        parents.append(key)
    return parents


# RFC 5256 §2.1 subj-leader / subj-blob / subj-trailer, extended with the reply and
# forward prefixes of the languages our users write in (Italian R:, I:, RIF:;
# German AW:, WG:; French TR:; Nordic SV:, VS:; Dutch Antw:, Doorst:).
_PREFIXES = (
    "re|fw|fwd|r|i|rif|aw|wg|tr|sv|vs|antw|doorst|odp|vl|ref|enc|res|rv|ynt|ilt"
)
_LEADER = re.compile(
    r"^(?:\s*\[[^\[\]]*\]\s*)*\s*(?:(?:" + _PREFIXES + r")\s*(?:\[\d+\]|\(\d+\))?\s*[:：])",
    re.IGNORECASE,
)
_BLOB = re.compile(r"^\s*\[[^\[\]]*\]\s*")
_TRAILER = re.compile(r"\s*\((?:fwd|fw)\)\s*$", re.IGNORECASE)
_FWD_WRAPPER = re.compile(r"^\[fwd:\s*(.*)\]$", re.IGNORECASE)


def base_subject(subject: str) -> str:
    """The base subject of RFC 5256 §2.1, lower-cased, for grouping messages that
    have no references: reply/forward prefixes, leading [list] tags, "(fwd)"
    trailers and "[fwd: ...]" wrappers removed, runs of white space collapsed.
    """
    text = " ".join(subject.split())
    while True:
        previous = text
        text = _TRAILER.sub("", text)  # §2.1 step 2
        # §2.1 steps 3-5: leaders and blobs, repeated until nothing changes.
        match = _LEADER.match(text)
        if match is not None:
            text = text[match.end() :].lstrip()
        else:
            blob = _BLOB.match(text)
            if blob is not None and blob.end() < len(text):
                text = text[blob.end() :]
        wrapper = _FWD_WRAPPER.match(text)  # §2.1 step 6
        if wrapper is not None:
            text = wrapper.group(1).strip()
        if text == previous:
            break
    return text.casefold()
