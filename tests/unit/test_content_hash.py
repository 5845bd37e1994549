"""A copy's content hash: the same for one message whatever route brought it,
different for different messages that share the identity's fields."""

from __future__ import annotations

from posta.mail.identity import content_hash, content_identity

BASE = (
    b"From: Anna <anna@example.test>\r\nTo: bob@example.test\r\nSubject: Report\r\n"
    b"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\nMessage-ID: <r@example.test>\r\n"
    b"Bcc: carla@example.test\r\n\r\nThe figures.\r\n"
)


def test_trace_and_delivery_fields_are_not_content() -> None:
    delivered = (
        b"Return-Path: <anna@example.test>\r\nDelivered-To: bob@example.test\r\n"
        b"Received: from mx by imap; Mon, 02 Mar 2026 10:00:01 +0100\r\n"
        b"X-Original-To: bob+x@example.test\r\nAuthentication-Results: mx; dkim=pass\r\n"
        b"ARC-Seal: i=1; cv=none\r\nX-Spam-Status: No\r\n"
    ) + BASE.replace(b"Bcc: carla@example.test\r\n", b"")
    assert content_hash(delivered) == content_hash(BASE)


def test_line_ends_folding_and_field_order_are_not_content() -> None:
    lf = BASE.replace(b"\r\n", b"\n")
    refolded = BASE.replace(b"Subject: Report", b"Subject:\r\n Report")
    reordered = BASE.replace(b"To: bob@example.test\r\n", b"").replace(
        b"\r\n\r\n", b"\r\nTo: bob@example.test\r\n\r\n"
    )
    assert content_hash(lf) == content_hash(refolded) == content_hash(reordered) == content_hash(
        BASE
    )


def test_another_body_or_author_field_is_another_message() -> None:
    other_body = BASE.replace(b"The figures.", b"The other figures.")
    other_to = BASE.replace(b"To: bob@example.test", b"To: dario@example.test")
    other_type = BASE.replace(b"\r\n\r\n", b"\r\nContent-Type: text/html\r\n\r\n")
    hashes = {content_hash(m) for m in (BASE, other_body, other_to, other_type)}
    assert len(hashes) == 4
    assert content_identity("x", content_hash(BASE)) != content_identity(
        "x", content_hash(other_body)
    )
