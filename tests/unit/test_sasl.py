"""The bearer-token SASL responses, byte for byte (RFC 7628 §3.1, Google's XOAUTH2)."""

from __future__ import annotations

from posta.mailproto import sasl


def test_oauthbearer_response_has_the_gs2_header_and_the_bearer_token() -> None:
    raw = sasl.oauthbearer_response("a,b=c@example.test", "T0k", host="imap.example", port=993)
    # RFC 5801 §4: "," and "=" in the authzid are escaped.
    assert raw == (
        b"n,a=a=2Cb=3Dc@example.test,\x01host=imap.example\x01port=993"
        b"\x01auth=Bearer T0k\x01\x01"
    )


def test_xoauth2_response() -> None:
    assert sasl.xoauth2_response("u@x", "T") == b"user=u@x\x01auth=Bearer T\x01\x01"


def test_oauthbearer_is_chosen_where_announced() -> None:
    assert sasl.choose_mechanism(["PLAIN", "xoauth2", "OAUTHBEARER"]) == sasl.OAUTHBEARER
    assert sasl.choose_mechanism(["PLAIN", "XOAUTH2"]) == sasl.XOAUTH2
    assert sasl.choose_mechanism(["PLAIN", "LOGIN"]) is None


def test_error_challenge_replies() -> None:
    # RFC 7628 §3.2.3: the client answers the error challenge with a single ^A.
    assert sasl.error_reply(sasl.OAUTHBEARER) == b"\x01"
    assert sasl.error_reply(sasl.XOAUTH2) == b""
