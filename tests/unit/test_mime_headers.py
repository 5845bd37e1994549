"""Envelope decoding from raw header blocks (RFC 5322, RFC 2047)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posta.mailproto.mime.headers import (
    Address,
    decode_words,
    parse_addresses,
    parse_date,
    parse_envelope,
)


def test_full_envelope() -> None:
    header = (
        b"From: =?utf-8?q?Jos=C3=A9_=C3=81lvarez?= <jose@example.es>\r\n"
        b'To: a@b.c, "Rossi, Mario" <m@x.it>\r\n'
        b"Cc: Anna Bianchi <anna@example.it>\r\n"
        b"Reply-To: <list@example.org>\r\n"
        b"Subject: =?UTF-8?B?UmU6IFByZXZlbnRpdm8gcGVyIGlsIGNsaWVudGUgw6g=?=\r\n"
        b"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
        b"Message-ID: <m1@Example.COM>\r\n"
        b"In-Reply-To: <m0@example.com>\r\n"
        b"References: <a@x.com>\r\n\t<m0@example.com>\r\n\r\n"
    )
    env = parse_envelope(header)
    assert env.subject == "Re: Preventivo per il cliente è"
    assert env.from_ == [Address("José Álvarez", "jose@example.es")]
    assert env.to == [Address("", "a@b.c"), Address("Rossi, Mario", "m@x.it")]
    assert env.cc == [Address("Anna Bianchi", "anna@example.it")]
    assert env.reply_to == [Address("", "list@example.org")]
    assert env.date == datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    assert env.message_id == "<m1@Example.COM>"
    assert env.in_reply_to == "<m0@example.com>"
    assert env.references == ["<a@x.com>", "<m0@example.com>"]


def test_missing_fields_and_garbage() -> None:
    env = parse_envelope(b"Subject: no id\r\nDate: yesterday-ish\r\n\r\n")
    assert env.message_id == ""
    assert env.date is None
    assert env.from_ == []
    assert parse_envelope(b"").subject == ""
    assert parse_envelope(b"\x00\xff\xfe: \r\n\r\n").subject == ""


def test_folded_subject_and_adjacent_encoded_words() -> None:
    header = (
        b"Subject: =?UTF-8?B?UHJldmVudGl2byDD?=\r\n =?UTF-8?B?qA==?= pronto\r\n"
        b"  per te\r\n\r\n"
    )
    # The split UTF-8 character is joined across the two words (RFC 2047 §6.2).
    assert parse_envelope(header).subject == "Preventivo è pronto  per te"


@pytest.mark.parametrize(
    ("header", "subject"),
    [
        (b"Subject: caf\xc3\xa9 8-bit utf-8\r\n\r\n", "café 8-bit utf-8"),
        (b"Subject: caf\xe9 latin-1\r\n\r\n", "café latin-1"),
        (b"Subject: \x93quoted\x94 cp1252\r\n\r\n", "\u201cquoted\u201d cp1252"),
        (b"Subject: =?x-unknown?q?caf=E9?=\r\n\r\n", "café"),
        (b"Subject: =?utf8?Q?caf=C3=A9?=\r\n\r\n", "café"),
        (b"Subject: =?iso-8859-1?q?caf=C3=A9?=\r\n\r\n", "café"),  # mislabelled UTF-8
        (b"Subject: =?utf-8?b?Y2Fmw6k?=\r\n\r\n", "café"),  # missing padding
        (b"Subject: =?utf-8?q?broken\r\n\r\n", "=?utf-8?q?broken"),
        (b"Subject: =?utf-8*it?q?ciao?=\r\n\r\n", "ciao"),  # RFC 2231 language
    ],
)
def test_subject_charsets(header: bytes, subject: str) -> None:
    assert parse_envelope(header).subject == subject


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mario Rossi (casa) <m@x.it>", [Address("Mario Rossi (casa)", "m@x.it")]),
        ("undisclosed-recipients:;", []),
        ("Team: a@x.it, b@x.it;", [Address("", "a@x.it"), Address("", "b@x.it")]),
        ('"a\\"b" <q@r.it>', [Address('a"b', "q@r.it")]),
        ("=?utf-8?q?Rossi=2C_M?= <m@x.it>", [Address("Rossi, M", "m@x.it")]),
        ("<only@x.it>", [Address("", "only@x.it")]),
        ("a@x.it,, b@x.it,", [Address("", "a@x.it"), Address("", "b@x.it")]),
    ],
)
def test_address_shapes(value: str, expected: list[Address]) -> None:
    assert parse_addresses(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 1 Jan 2024 10:00:00 +0100", datetime(2024, 1, 1, 9, tzinfo=UTC)),
        ("1 Jan 2024 10:00 -0000", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("Mon, 01 Jan 24 10:00:00 +0000", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("Mon, 1 Jan 2024 10:00:00 GMT", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("Mon, 1 Jan 2024 10:00:00 EST", datetime(2024, 1, 1, 15, tzinfo=UTC)),
        ("Tue, 31 Feb 2024 10:00:00 +0000", None),
        ("", None),
        ("not a date", None),
        ("Mon, 1 Jan 2024 99:99:99 +0000", None),
    ],
)
def test_dates(value: str, expected: datetime | None) -> None:
    got = parse_date(value)
    assert got == expected
    if got is not None:
        assert got.tzinfo is not None


def test_date_keeps_its_offset() -> None:
    got = parse_date("Wed, 17 Jul 1996 02:44:25 -0700")
    assert got is not None
    assert got.utcoffset() == timedelta(hours=-7)
    assert got.tzinfo == timezone(timedelta(hours=-7))


@given(st.binary(max_size=2000))
def test_never_raises(data: bytes) -> None:
    parse_envelope(data)


@given(st.text(max_size=200))
def test_decode_words_never_raises(text: str) -> None:
    decode_words(text)


def test_fields_of_a_block_mixing_charsets_are_decoded_one_by_one() -> None:
    # A relay's Latin-1 Received line above the sender's UTF-8 fields.
    env = parse_envelope(
        b"Received: from caf\xe9.example\r\nFrom: Zo\xc3\xab <z@example.test>\r\n"
        b"Subject: Gr\xc3\xbc\xc3\x9fe\r\nTo: Jos\xe9 <j@example.test>\r\n\r\n"
    )
    assert env.subject == "Grüße"
    assert env.from_[0].name == "Zoë"
    assert env.to[0].name == "José"
