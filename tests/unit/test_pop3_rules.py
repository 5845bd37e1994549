"""The POP3 client's failure words (RFC 2449 / RFC 3206 response codes) and the
import's reading of a message: Message-ID, the Date used as INTERNALDATE, and
the content hash that matches a server's stored copy."""

from __future__ import annotations

import poplib
from datetime import UTC, datetime, timedelta

import pytest

from posta.mailproto import errors
from posta.mailproto.pop3.client import ConnectionDropped, Pop3Settings, classify
from posta.rules.pop3_job import content_hash, date_of, message_id_of

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"-ERR [AUTH] Authentication failed.", errors.AuthenticationFailed),
        (b"-ERR [IN-USE] Mailbox locked by another session", errors.ServerBusy),
        (b"-ERR [LOGIN-DELAY] Wait a minute", errors.ServerBusy),
        (b"-ERR [SYS/TEMP] Try later", errors.ServerBusy),
        (b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
         b"connections.", errors.TlsRequired),
        (b"-ERR no such message", errors.ProtocolError),
    ],
)
def test_replies_become_our_errors(reply: bytes, expected: type[errors.MailError]) -> None:
    error = classify(poplib.error_proto(reply), host="pop.example.test")
    assert type(error) is expected
    assert error.detail.startswith("pop.example.test: ")


def test_a_drop_is_a_network_error_and_secrets_never_reach_the_detail() -> None:
    dropped = classify(ConnectionDropped("-ERR closed"), host="h")
    assert isinstance(dropped, errors.TemporaryNetworkError)
    echoed = classify(poplib.error_proto(b"-ERR bad password hunter2"), host="h",
                      secrets=("hunter2",))
    assert "hunter2" not in echoed.detail
    assert "hunter2" not in repr(Pop3Settings("h", 110, "none", "u", password="hunter2"))


def test_message_id_and_date() -> None:
    raw = (b"Message-ID:\r\n <abc@example.test>\r\nDate: Mon, 02 Mar 2026 10:00:00 -0000\r\n"
           b"\r\nDate: not a header\r\n")
    assert message_id_of(raw) == "abc@example.test"
    assert date_of(raw, now=NOW) == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert message_id_of(b"Subject: none\r\n\r\nMessage-ID: <body@x>\r\n") == ""
    assert date_of(b"Subject: no date\r\n\r\n", now=NOW) == NOW
    assert date_of(b"Date: yesterday-ish\r\n\r\n", now=NOW) == NOW
    future = (NOW + timedelta(days=30)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    assert date_of(f"Date: {future}\r\n\r\n".encode(), now=NOW) == NOW


def test_the_content_hash_ignores_line_ends_and_trailing_blank_lines() -> None:
    crlf = b"Subject: a\r\n\r\nbody\r\n"
    assert content_hash(crlf) == content_hash(b"Subject: a\n\nbody\n\n")
    assert content_hash(crlf) != content_hash(b"Subject: b\r\n\r\nbody\r\n")
