"""Pieces of the server copy of a draft that need no server: the APPENDUID reply,
and reading back the body and quote Posta wrote into a draft copy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from posta.mail.replies import _split_assembled
from posta.mailproto.imap.session import Appended, parse_appenduid
from posta.mailproto.mime import compose


def test_appenduid_from_the_tagged_reply() -> None:
    # RFC 4315 §3: "A003 OK [APPENDUID 38505 3955] APPEND completed"
    assert parse_appenduid(b"[APPENDUID 38505 3955] Append completed.") == (38505, 3955)
    assert parse_appenduid("[appenduid 1 7] done") == Appended(uidvalidity=1, uid=7)


def test_no_appenduid_without_uidplus() -> None:
    assert parse_appenduid(b"Append completed.") == (None, None)
    assert parse_appenduid(b"[APPENDUID 38505] broken") == (None, None)
    assert parse_appenduid(None) == (None, None)


def test_body_and_quote_of_a_draft_copy_come_back_apart() -> None:
    body = "<p>Dear Carla,</p><div><p>see below</p></div>"
    quote = '<p>On Monday, Bruno wrote:</p><blockquote type="cite"><div>x</div></blockquote>'
    assert _split_assembled(compose.assemble_html(body, quote=quote)) == (body, quote)
    assert _split_assembled(compose.assemble_html("<p>only</p>")) == ("<p>only</p>", "")


def test_other_html_is_all_body() -> None:
    markup = "<div><p>from another client</p></div>"
    assert _split_assembled(markup) == (markup, "")
    nested = '<div class="posta-body"><div>a</div></div><div>b</div>'
    assert _split_assembled(nested) == (nested, "")


@given(st.text(alphabet="<>/ abcdiv=\"'\n", max_size=60))
def test_splitting_never_loses_text(markup: str) -> None:
    body, quote = _split_assembled(markup)
    for piece in (body, quote):
        assert piece in markup
