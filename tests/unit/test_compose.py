"""MIME composition, address checks and the SMTP failure table (no servers needed)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posta.mailproto import errors
from posta.mailproto.failures import Verdict, verdict_for_error, verdict_for_reply
from posta.mailproto.mime import compose

WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _composition(**overrides: object) -> compose.Composition:
    base: dict[str, object] = {
        "sender": compose.parse_mailbox("Anna Rossi <anna@example.test>"),
        "to": compose.parse_mailbox_list("bob@example.test"),
        "subject": "Hello",
        "text": "Hello Bob",
        "message_id": "m1@example.test",
        "date": WHEN,
    }
    base.update(overrides)
    return compose.Composition(**base)  # type: ignore[arg-type]


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_rich_message_with_inline_image_and_attachment_has_the_expected_tree() -> None:
    c = _composition(
        html='<p>Hello <img src="cid:logo"></p>',
        inline=[compose.FilePart("logo.png", "image/png", b"PNG", "logo")],
        attachments=[compose.FilePart("offer.pdf", "application/pdf", b"%PDF")],
        in_reply_to="p@example.test",
        references=["r@example.test", "p@example.test"],
    )
    msg = _parse(compose.serialize(compose.build(c)))
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, image = related.iter_parts()
    assert html.get_content_type() == "text/html"
    assert image["Content-ID"] == "<logo>"
    assert attachment.get_filename() == "offer.pdf"
    assert msg["In-Reply-To"] == "<p@example.test>"
    assert msg["References"] == "<r@example.test> <p@example.test>"
    assert msg["Message-ID"] == "<m1@example.test>"
    assert msg["Bcc"] is None


def test_plain_text_message_is_a_single_part() -> None:
    msg = _parse(compose.serialize(compose.build(_composition())))
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().strip() == "Hello Bob"


def test_wire_form_uses_crlf_and_encoded_words() -> None:
    data = compose.serialize(compose.build(_composition(subject="Perché no")))
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert b"Perch\xc3\xa9" not in data  # RFC 2047 encoded, not raw UTF-8
    assert _parse(data)["Subject"] == "Perché no"


@pytest.mark.parametrize("field", ["subject", "message_id"])
def test_line_breaks_in_headers_are_refused(field: str) -> None:
    with pytest.raises(compose.HeaderInjection):
        compose.build(_composition(**{field: "x\r\nBcc: evil@example.test"}))


def test_display_name_with_newline_is_refused() -> None:
    bad = compose.Mailbox(name="Eve\nBcc: x@example.test", address="eve@example.test")
    with pytest.raises(compose.HeaderInjection):
        compose.build(_composition(to=[bad]))


@given(st.text())
def test_header_check_never_lets_a_newline_through(value: str) -> None:
    # Text without "=?" holds no encoded word: refused exactly when it holds one
    # of the line breaks str.splitlines() knows, or NUL.
    broken = len(("x" + value + "x").splitlines()) > 1 or "\0" in value
    try:
        compose.check_header_value(value)
    except compose.HeaderInjection:
        assert broken or "=?" in value
    else:
        assert not broken


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("plainword", "no_at"),
        ("@example.test", "local_empty"),
        ("a..b@example.test", "local_invalid"),
        ("a b@example.test", "local_invalid"),
        ("a@", "domain_empty"),
        ("a@localhost", "domain_invalid"),
        ("a@-bad-.example", "domain_invalid"),
        ("x" * 65 + "@example.test", "local_too_long"),
    ],
)
def test_invalid_addresses_name_their_reason(text: str, reason: str) -> None:
    with pytest.raises(compose.InvalidAddress) as caught:
        compose.parse_mailbox(text)
    assert caught.value.reason == reason


def test_international_addresses() -> None:
    idn = compose.parse_mailbox("Jörg <info@bücher.example>")
    assert idn.address == "info@xn--bcher-kva.example"
    assert not idn.needs_smtputf8
    utf8 = compose.parse_mailbox("用户@例子.广告")
    assert utf8.needs_smtputf8
    assert compose.needs_smtputf8([idn, utf8])
    data = compose.serialize(compose.build(_composition(to=[utf8])), utf8=True)
    assert "用户@".encode() in data


def test_address_lists_respect_quotes() -> None:
    boxes = compose.parse_mailbox_list('"Rossi, Anna" <anna@example.test>; bob@example.test,')
    assert [(b.name, b.address) for b in boxes] == [
        ("Rossi, Anna", "anna@example.test"),
        ("", "bob@example.test"),
    ]


def test_reply_helpers() -> None:
    assert compose.reply_subject("Re: RE: Offer") == "Re: Offer"
    assert compose.reply_subject("Offer") == "Re: Offer"
    assert compose.forward_subject("Offer") == "Fwd: Offer"
    assert compose.forward_subject("Fwd: Offer") == "Fwd: Offer"
    assert compose.reply_references([], "a@x", "b@x") == ["a@x", "b@x"]
    assert compose.reply_references(["r@x", "a@x"], "a@x", "b@x") == ["r@x", "a@x", "b@x"]
    assert compose.quote_plain("hi\n> old") == "> hi\n>> old"


def test_signature_sits_between_body_and_quote() -> None:
    html = compose.assemble_html("<p>Body</p>", signature="<p>Sig</p>", quote="<p>Old</p>")
    assert html.index("Body") < html.index("Sig") < html.index("Old")
    assert 'data-posta-signature="1"' in html
    text = compose.assemble_text("Body", signature="Sig", quote="> Old")
    assert text == "Body\n\n-- \nSig\n\n> Old\n"


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (421, Verdict.RETRY),
        (451, Verdict.RETRY),
        (452, Verdict.RETRY),
        (552, Verdict.RETRY),  # RFC 5321 §4.5.3.1.10
        (550, Verdict.PERMANENT),
        (553, Verdict.PERMANENT),
        (554, Verdict.PERMANENT),
        (535, Verdict.ACCOUNT),
        (530, Verdict.ACCOUNT),
    ],
)
def test_smtp_reply_table(code: int, verdict: Verdict) -> None:
    assert verdict_for_reply(code) == verdict


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (errors.AuthenticationFailed("x"), Verdict.ACCOUNT),
        (errors.TlsRequired("x"), Verdict.ACCOUNT),
        (errors.CertificateError("x"), Verdict.ACCOUNT),
        (errors.ConnectionRefused("x"), Verdict.RETRY),
        (errors.ConnectTimeout("x"), Verdict.RETRY),
        (errors.TemporaryNetworkError("x"), Verdict.RETRY),
        (errors.ServerBusy("x"), Verdict.RETRY),
        (errors.ProtocolError("x"), Verdict.PERMANENT),
    ],
)
def test_connection_failure_table(error: errors.MailError, verdict: Verdict) -> None:
    assert verdict_for_error(error) == verdict
