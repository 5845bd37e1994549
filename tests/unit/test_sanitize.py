"""posta.mail.sanitize: hostile HTML, remote content, cid: images, plain text, MIME."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posta.mail.sanitize import (
    document,
    get_part,
    inline_images,
    read_message,
    sanitize_html,
    text_to_html,
)

PROXY = "https://posta.example/mail/img/1/2/?u="


def proxy(url: str) -> str:
    return PROXY + url


def clean(html: str, *, allow: bool = False) -> str:
    safe = sanitize_html(html, images={"logo@x": "data:image/png;base64,AAAA"},
                         proxy=proxy if allow else None)
    return (safe.css + "\n" + safe.body).lower()


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.test/x.js></SCRIPT>",
        '<img src=x onerror="alert(1)">',
        "<body onload=alert(1)>",
        "<svg onload=alert(1)><script>alert(1)</script></svg>",
        '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
        "<math><mtext><script>alert(1)</script></mtext></math>",
        '<a href="javascript:alert(1)">x</a>',
        '<a href="jav&#x61;script:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href=" JaVaScRiPt:alert(1)">x</a>',
        '<a href="vbscript:msgbox(1)">x</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
        '<form action="https://evil.test"><input name=a><button>go</button></form>',
        '<iframe src="https://evil.test"></iframe>',
        '<object data="https://evil.test/x.swf"></object><embed src="x">',
        '<meta http-equiv="refresh" content="0;url=https://evil.test">',
        '<link rel=stylesheet href="https://evil.test/x.css">',
        '<base href="https://evil.test/">',
        '<div style="width: expression(alert(1))">x</div>',
        '<div style="behavior: url(x.htc)">x</div>',
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
        "<template><script>alert(1)</script></template>",
    ],
)
def test_hostile_markup_leaves_nothing_executable(hostile: str) -> None:
    out = clean(hostile)
    for needle in ("<script", "javascript:", "vbscript:", "onerror", "onload", "<svg",
                   "<form", "<iframe", "<object", "<embed", "<meta", "<link", "<base",
                   "expression(", "behavior", "data:text"):
        assert needle not in out, (needle, out)


def test_remote_content_is_blocked_and_counted() -> None:
    safe = sanitize_html(
        '<img src="https://t.test/p.png"><td background="http://t.test/b.png">'
        '<p style="background:url(\'https://t.test/s.png\')">x</p>'
        "<style>@import url(https://t.test/i.css); p{background:url(https://t.test/c.png)}</style>",
        images={},
        proxy=None,
    )
    assert "t.test" not in safe.body + safe.css
    assert safe.blocked == 4  # img, inline style, @import, <style> url()


def test_allowed_remote_content_goes_through_the_proxy_only() -> None:
    out = clean('<img src="https://t.test/p.png"><p style="background:url(https://t.test/s.png)">',
                allow=True)
    assert 'src="https://posta.example/mail/img/1/2/?u=https://t.test/p.png"' in out
    assert "url(&quot;https://posta.example/mail/img/1/2/?u=https://t.test/s.png&quot;)" in out


def test_css_escapes_cannot_spell_url() -> None:
    out = clean(r'<p style="background: u\72 l(https://t.test/x.png)">x</p>'
                r"<style>p { background: \75rl(https://t.test/y.png) }</style>")
    assert "\\" not in out  # escapes are gone, so the words stay harmless text
    assert not re.search(r"url\s*\([^)]*t\.test", out)


def test_cid_images_become_data_uris_and_relative_urls_go() -> None:
    out = clean('<img src="cid:LOGO@x"><img src="/mail/actions/"><a href="/logout/">x</a>')
    assert 'src="data:image/png;base64,aaaa"' in out
    assert "/mail/actions/" not in out and "/logout/" not in out


def test_links_open_in_a_new_tab_without_opener() -> None:
    out = clean('<a href="https://ok.test/">ok</a>')
    assert 'target="_blank"' in out and 'rel="noopener noreferrer"' in out


def test_plain_text_is_escaped_then_linkified() -> None:
    out = text_to_html('<b>hi</b> see https://ok.test/a?b=1&c="2" and <https://x.test/y>.')
    assert "<b>" not in out and "&lt;b&gt;" in out
    assert '<a href="https://ok.test/a?b=1&amp;c=' in out
    assert '"2"' not in out  # the quote cannot end the attribute
    assert '<a href="https://x.test/y" target="_blank" rel="noopener noreferrer">' in out


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>\"'=/ &#;:ajvscriptonloadimgsvgurl()x\\"))))
def test_no_input_produces_script_or_handlers(text: str) -> None:
    out = clean(text)
    assert "<script" not in out
    assert "javascript:" not in out
    assert " onload=" not in out and " onerror=" not in out


def _rich() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Anna <anna@example.test>"
    msg["To"] = "Bob <bob@example.test>"
    msg["Subject"] = "Rich"
    msg.set_content("plain\n")
    msg.add_alternative('<p>hi <img src="cid:logo@x"></p>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG fake", "image", "png", cid="<logo@x>")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    inner = EmailMessage()
    inner["Subject"] = "Inner"
    inner.set_content("inner body\n")
    msg.add_attachment(inner)
    return msg.as_bytes()


def test_read_message_numbers_parts_as_imap_does() -> None:
    raw = _rich()
    readable = read_message(raw)
    assert readable.subject == "Rich"
    assert readable.from_ == [("Anna", "anna@example.test")]
    assert readable.text.strip() == "plain"
    assert "cid:logo@x" in readable.html
    by_type = {a.content_type: a for a in readable.attachments}
    assert by_type["application/pdf"].part_id == "2"
    assert by_type["message/rfc822"].part_id == "3"
    assert by_type["image/png"].inline and by_type["image/png"].part_id == "1.2.2"
    assert [a.content_type for a in readable.downloads] == ["application/pdf", "message/rfc822"]
    found = get_part(raw, "2")
    assert found is not None and found[1] == b"%PDF-1.4"
    nested = get_part(raw, "3")
    assert nested is not None and read_message(nested[1]).subject == "Inner"
    assert get_part(raw, "9") is None and get_part(raw, "x") is None
    assert inline_images(raw, readable) == {"logo@x": "data:image/png;base64,iVBORyBmYWtl"}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"no header at all",
        b"Subject: =?utf-8?q?broken\r\n"
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\n',
        b"From: <<<>>>\r\nDate: yesterday\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64",
        b"Content-Type: text/plain; charset=x-unknown\r\n\r\n\xff\xfe caf\xe9",
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\n\r\nx\r\n" * 600,
    ],
)
def test_malformed_messages_are_shown_not_raised(raw: bytes) -> None:
    readable = read_message(raw)
    html = document(text_html=text_to_html(readable.text))
    assert html.startswith("<!doctype html>")


# --- holes found with the hostile corpus (tests/unit/test_sanitize_corpus.py) -------


@pytest.mark.parametrize(
    "css",
    [
        "background:url(https://t.test/open.png",  # CSS Syntax: end of input closes url(
        "background:url('https://t.test/open-string.png",
        "background-image:image-set('https://t.test/set.png' 1x)",
        "background-image:-webkit-image-set(\"//t.test/wset.png\" 2x)",
        "background:src('https://t.test/src.png')",
        "background:image('https://t.test/image.png')",
        "--x:'https://t.test/var.png';background:image-set(var(--x) 1x)",
        "background:u/**/rl(https://t.test/comment.png)",
    ],
)
def test_css_loads_nothing_however_the_address_is_given(css: str) -> None:
    safe = sanitize_html(f'<p style="{css}">x</p><style>p {{ {css} }}</style>',
                         images={}, proxy=None)
    for text in (safe.body, safe.css):
        assert not re.search(r"url\(|image-set|\bsrc\(|\bimage\(|//", text), text


def test_css_comments_cannot_hide_words() -> None:
    out = clean("<p style=\"width:expr/**/ession(alert(1))\">x</p>"
                "<style>@im/**/port 'https://t.test/i.css'; p{color:gre/**/en}</style>")
    assert "expression" not in out and "@import" not in out and "t.test" not in out
    assert "color:green" in out


def test_links_are_http_or_mailto_only() -> None:
    out = clean('<a href="cid:logo@x">a</a><a href="data:text/html,x">b</a>'
                '<a href="h\ntt\tps://ok.test/">c</a><a href="mailto:a@ok.test">d</a>')
    assert "cid:" not in out and "data:" not in out
    assert out.count("href=") == 2


def test_only_the_messages_own_images_are_data_uris() -> None:
    out = clean('<img src="data:image/png;base64,BBBB"><img src="cid:logo@x">'
                '<p style="background:url(data:image/svg+xml,x)">x</p>')
    assert "bbbb" not in out and "svg" not in out
    assert out.count("data:image/png;base64,aaaa") == 1


NEWSLETTER = """<html><head><style type="text/css"><!--
body { margin:0 } .btn { padding: 10px 18px; font: 15px/1.4 Helvetica, Arial, sans-serif }
@media only screen and (max-width: 600px) { .col { width: 100% !important } }
--></style></head><body>
<!--[if mso]><table><tr><td><![endif]-->
<table width="600" cellpadding="0" cellspacing="0" align="center" bgcolor="#ffffff"
 style="border-collapse:collapse;max-width:600px">
<tr><td class="col" style="padding:16px 24px;color:#333333;font-family:Georgia,serif">
<img src="cid:logo@x" width="120" alt="Logo" style="display:block;border:0">
<h1 style="margin:0 0 8px;font-size:22px">Spring offers</h1>
<p>Read <a href="https://news.example.test/a?id=1&amp;u=2" style="color:#0a66c2">more</a>.</p>
<td background="https://news.example.test/bg.png" style="background:#0a66c2 url(https://news.example.test/bg.png)">
<a class="btn" href="https://news.example.test/buy">Buy</a></td></tr></table></body></html>"""


def test_newsletters_keep_their_layout() -> None:
    safe = sanitize_html(NEWSLETTER, images={"logo@x": "data:image/png;base64,AAAA"},
                         proxy=None)
    body = safe.body
    assert '<table width="600" cellpadding="0" cellspacing="0" align="center" bgcolor="#ffffff"' \
        in body
    assert 'style="padding:16px 24px;color:#333333;font-family:Georgia,serif"' in body
    assert 'src="data:image/png;base64,AAAA" width="120" alt="Logo"' in body
    assert ('<a href="https://news.example.test/a?id=1&amp;u=2" style="color:#0a66c2" '
            'target="_blank" rel="noopener noreferrer">more</a>') in body
    assert 'style="background:#0a66c2 none"' in body  # the remote image waits for the user
    assert safe.blocked == 2
    # The <style> block, its CSS whole: comment marks gone, not the first rule with them.
    assert safe.css.split() == (
        "body { margin:0 } .btn { padding: 10px 18px; font: 15px/1.4 Helvetica, Arial, "
        "sans-serif } @media only screen and (max-width: 600px) { .col { width: 100% "
        "!important } }"
    ).split()


def test_the_frame_document_turns_link_dns_prefetch_off() -> None:
    assert '<meta http-equiv="x-dns-prefetch-control" content="off">' in document(
        sanitize_html("<p>x</p>", images={}, proxy=None)
    )


def test_css_urls_never_shown_are_dropped_not_counted() -> None:
    safe = sanitize_html(
        '<p style="filter:url(https://t.test/f.svg#f) blur(1px);color:red">x</p>'
        '<p style="-webkit-mask-image:url(https://t.test/m.png);shape-outside:url(x.png)">x</p>'
        "<style>.a{-webkit-clip-path:url(https://t.test/c.svg#c)} .fill:hover{color:blue}"
        " .b{filter:blur(2px);marker-end:url(#m)}</style>",
        images={},
        proxy=proxy,
    )
    assert "t.test" not in safe.body + safe.css and safe.blocked == 0
    assert 'style="filter:none;color:red"' in safe.body
    assert ".fill:hover{color:blue}" in safe.css and "filter:blur(2px)" in safe.css
