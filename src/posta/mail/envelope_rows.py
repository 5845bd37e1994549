"""One Message row from a message's raw bytes, for the paths that store one at a
time (posta.mail.ingest: sent and imported mail; posta.mail.copies: a copy split
off). The sync's bulk path builds its rows in posta.mail.bulk_store.

The row is not saved and has no thread yet: the caller places it
(posta.mail.threads.assign_threads) and saves it inside its own transaction.
"""

from __future__ import annotations

from datetime import datetime

from posta.mail.identity import header_block, parse_envelope
from posta.mail.models import Message
from posta.mailproto.mime.headers import Envelope
from posta.mailproto.mime.parse import parse_message

MAX_SIZE = 2**31 - 1  # the size column is a 32-bit integer


def message_from_raw(
    raw: bytes,
    *,
    user_id: int,
    identity: str,
    blob_key: str,
    date: datetime,
    like: Message | None = None,
    env: Envelope | None = None,
) -> Message:
    """A STORED Message for `raw`, its header fields from the envelope.

    `date` stands in when the message has no usable Date; `like` (the message a
    split copy came from) stands in for a missing Message-ID, subject and sender.
    The snippet, attachment mark and defects come from a full parse; a message
    the parser cannot read keeps its bytes and names the failure as its defect.
    `env` is the envelope when the caller parsed it already.
    """
    env = env or parse_envelope(header_block(raw))
    sender = env.from_[0] if env.from_ else ("", "")
    if like is not None and not env.from_:
        sender = (like.from_name, like.from_email)
    message = Message(
        user_id=user_id,
        identity=identity,
        message_id=env.message_id or (like.message_id if like else ""),
        subject=env.subject or (like.subject if like else ""),
        from_name=sender[0][:500],
        from_email=sender[1][:500],
        to=[list(a) for a in env.to],
        cc=[list(a) for a in env.cc],
        reply_to=[list(a) for a in env.reply_to],
        date=env.date or date,
        in_reply_to=env.in_reply_to[:998],
        references=env.references,
        size=min(len(raw), MAX_SIZE),
        blob_key=blob_key,
        body_state=Message.BodyState.STORED,
    )
    try:
        parsed = parse_message(raw, with_envelope=False)
    except Exception as exc:  # noqa: BLE001 - the raw bytes stay in the blob store
        message.defects = [type(exc).__name__]
    else:
        message.snippet = parsed.snippet[:300]
        message.has_attachments = parsed.has_attachments
        message.defects = list(parsed.defects)[:50]
    return message
