"""The FETCH response parser on the shapes servers really send (RFC 3501 §7.4.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posta.mailproto.imap import fastfetch
from posta.mailproto.imap.fastfetch import uid_set_from
from posta.mailproto.imap.fetch_items import (
    fast_header_record,
    header_record,
    parse_fetch_response,
    parse_internaldate,
)

HEADER = b"From: a@b.c\r\nSubject: hi\r\n\r\n"
SECTION = b"BODY[HEADER.FIELDS (" + " ".join(fastfetch.SYNC_HEADER_FIELDS).encode() + b")]"


def record(segments: list[bytes]) -> fastfetch.HeaderRecord | None:
    """Both parsers must agree on every response; return their record."""
    fast = fast_header_record(segments)
    general = header_record(parse_fetch_response(segments)[1])
    if fast is not False:
        assert fast == general
    return general


def test_dovecot_shape_with_literal() -> None:
    segments = [
        b'* 12 FETCH (UID 345 FLAGS (\\Seen $Forwarded NonJunk) INTERNALDATE '
        b'"17-Jul-1996 02:44:25 -0700" RFC822.SIZE 4286 MODSEQ (12121231000) '
        + SECTION + b" {%d}" % len(HEADER),
        HEADER,
        b")",
    ]
    got = record(segments)
    assert got is not None
    assert got.uid == 345
    assert got.flags == ("\\Seen", "$Forwarded", "NonJunk")
    zone = timezone(timedelta(hours=-7))
    assert got.internaldate == datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone)
    assert got.size == 4286
    assert got.modseq == 12121231000
    assert got.header == HEADER
    assert fast_header_record(segments) is not False  # the fast path took it


def test_items_in_any_order_lower_case_and_uid_last() -> None:
    segments = [
        b"* 3 FETCH (" + SECTION + b" {%d}" % len(HEADER),
        HEADER,
        b' flags (\\Answered) internaldate " 7-Jan-2024 09:05:00 +0000" UID 9 RFC822.SIZE 10)',
    ]
    got = record(segments)
    assert got is not None
    assert (got.uid, got.flags, got.size) == (9, ("\\Answered",), 10)
    assert got.internaldate == datetime(2024, 1, 7, 9, 5, tzinfo=UTC)


def test_quoted_header_with_escapes_and_nil() -> None:
    segments = [
        b'* 1 FETCH (UID 5 FLAGS () INTERNALDATE NIL RFC822.SIZE 0 ' + SECTION
        + b' "Subject: say \\"hi\\" \\\\ bye\r\n\r\n")'
    ]
    got = record(segments)
    assert got is not None
    assert got.header == b'Subject: say "hi" \\ bye\r\n\r\n'
    assert got.internaldate is None
    assert got.flags == ()

    nil = [b"* 1 FETCH (UID 6 FLAGS (\\Deleted) " + SECTION + b" NIL)"]
    got = record(nil)
    assert got is not None
    assert got.header == b""


def test_literals_anywhere_and_gmail_items() -> None:
    segments = [
        b"* 1 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334866 "
        b"X-GM-LABELS ({5}",
        b"Label",
        b' "\\\\Important") UID 7 FLAGS (\\Seen) ' + SECTION + b" {%d}" % len(HEADER),
        HEADER,
        b")",
    ]
    got = record(segments)
    assert got is not None
    assert got.gm_thrid == 1278455344230334865
    assert got.gm_msgid == 1278455344230334866
    assert got.uid == 7
    assert got.header == HEADER
    items = parse_fetch_response(segments)[1]
    assert items[b"X-GM-LABELS"] == [b"Label", b"\\Important"]


def test_unsolicited_responses_are_not_records() -> None:
    # A flag change pushed by the server for another message: no UID (RFC 3501 §7.4.2).
    assert record([b"* 4 FETCH (FLAGS (\\Seen))"]) is None
    # With a UID but no header section: not a header record either.
    assert record([b"* 4 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (5))"]) is None


def test_bodystructure_summary() -> None:
    line = (
        b'* 1 FETCH (UID 2 BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL '
        b'"7BIT" 12 1 NIL NIL NIL NIL)("APPLICATION" "PDF" ("NAME" "a.pdf") NIL NIL '
        b'"BASE64" 2000 NIL ("attachment" ("FILENAME" "a.pdf")) NIL NIL)("IMAGE" "PNG" '
        b'NIL "<logo@x>" NIL "BASE64" 300 NIL ("inline" NIL) NIL NIL) "MIXED" '
        b'("BOUNDARY" "zz") NIL NIL NIL) ' + SECTION + b" {%d}" % len(HEADER)
    )
    got = record([line, HEADER, b")"])
    assert got is not None and got.bodystructure is not None
    parts = got.bodystructure.parts
    assert [p.part_id for p in parts] == ["1", "2", "3"]
    assert parts[1].content_type == "application/pdf"
    assert parts[1].filename == "a.pdf"
    assert parts[1].disposition == "attachment"
    assert parts[2].content_id == "<logo@x>"
    assert got.bodystructure.has_attachments


def test_malformed_response_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_fetch_response([b'* 1 FETCH (UID 1 INTERNALDATE "unterminated)'])
    with pytest.raises(ValueError):
        parse_fetch_response([b"* 1 FETCH (UID"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"17-Jul-1996 02:44:25 -0700", datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)),
        (b" 1-Feb-2024 00:00:00 +0130", datetime(2024, 1, 31, 22, 30, tzinfo=UTC)),
        (b"31-Feb-2024 00:00:00 +0000", None),
        (b"garbage", None),
        (b"", None),
    ],
)
def test_internaldate(raw: bytes, expected: datetime | None) -> None:
    assert parse_internaldate(raw) == expected


@given(st.sets(st.integers(min_value=1, max_value=5000), min_size=1))
def test_uid_set_round_trip(uids: set[int]) -> None:
    text = uid_set_from(uids)
    back: set[int] = set()
    for piece in text.split(","):
        low, _, high = piece.partition(":")
        back.update(range(int(low), int(high or low) + 1))
    assert back == uids


@given(
    uid=st.integers(min_value=1, max_value=2**32 - 1),
    flags=st.lists(st.sampled_from(["\\Seen", "\\Flagged", "$Label1", "Junk"]), unique=True),
    header=st.binary(max_size=300),
    size=st.integers(min_value=0, max_value=10**9),
)
def test_any_header_literal_round_trips(
    uid: int, flags: list[str], header: bytes, size: int
) -> None:
    line = (
        f"* 1 FETCH (UID {uid} FLAGS ({' '.join(flags)}) RFC822.SIZE {size} ".encode()
        + SECTION + b" {%d}" % len(header)
    )
    got = record([line, header, b")"])
    assert got is not None
    assert (got.uid, got.flags, got.size, got.header) == (uid, tuple(flags), size, header)
