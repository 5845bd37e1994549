"""From raw message bytes to what the reader may safely show.

Three jobs, in this order, each in one place:

1. **Read** the MIME tree (`read_message`): headers, the plain and HTML bodies,
   attachments numbered as IMAP numbers parts (RFC 3501 §6.4.5), inline images by
   Content-ID (RFC 2392), and the defects found. The reading itself is
   posta.mailproto.mime.parse, the one the list's snippet and attachment mark come
   from; this module only shapes it for the reader. Never raises.
2. **Sanitize** the HTML body (`sanitize_html`) with nh3 (ammonia): an allowlist of
   tags and attributes; no script, no SVG/MathML, no forms, no event handlers, no
   `<meta>`/`<base>`/`<link>`; links only `http`, `https` and `mailto` (ammonia
   checks schemes after entity decoding, so `jav&#x61;script:` is caught); relative
   URLs dropped (they would point at Posta itself). Remote content — `img src`,
   `background`, CSS `url()` and `@import` — is rewritten *during* sanitizing, by
   the attribute filter: removed while blocked, or pointed at the image proxy once
   the user allowed it; CSS, in styles and `<style>` blocks, is cleaned by
   posta.mail.mail_css. `cid:` images become `data:` URIs from the message's own
   parts, so the sandboxed frame never has to ask the server for them; no other
   `data:` URI passes. Nothing edits the HTML after it is sanitized.
3. **Plain text** (`text_to_html`): escaped first, then http(s) links made clickable.

The document this produces is served by the web layer inside an `<iframe sandbox>`
without `allow-scripts` and `allow-same-origin`, under a CSP that allows no script
and images only from `data:` and the proxy: the sanitizer and the CSP each stop
hostile mail alone.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import nh3

from posta.mail import mail_css
from posta.mailproto.mime import parse
from posta.mailproto.mime.headers import Address

__all__ = [
    "Attachment",
    "ReadableMessage",
    "SafeHtml",
    "document",
    "get_part",
    "read_message",
    "sanitize_html",
    "text_to_html",
]

MAX_INLINE_IMAGE = 2 * 1024 * 1024  # a cid: image above this stays out of the page
MAX_INLINE_TOTAL = 8 * 1024 * 1024


# --- reading ----------------------------------------------------------------------


@dataclass(slots=True)
class Attachment:
    """One non-body part. `part_id` is its IMAP part number."""

    part_id: str
    filename: str
    content_type: str
    size: int
    content_id: str = ""
    inline: bool = False
    is_message: bool = False


@dataclass
class ReadableMessage:
    """What the reader shows of one message."""

    subject: str = ""
    from_: list[tuple[str, str]] = field(default_factory=list)
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    date: datetime | None = None
    text: str = ""
    html: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    @property
    def downloads(self) -> list[Attachment]:
        """Attachments the user sees in the list (inline images used by the HTML
        body are shown in place instead)."""
        return [a for a in self.attachments if not (a.inline and a.content_id and self.html)]


def read_message(raw: bytes) -> ReadableMessage:
    """Parse `raw` for display. Never raises.

    The tree is read by posta.mailproto.mime.parse.parse_message, the same reading
    that gives the list its snippet and attachment mark.
    """
    parsed = parse.parse_message(raw)
    env = parsed.envelope
    return ReadableMessage(
        subject=env.subject[:2000],
        from_=_pairs(env.from_),
        to=_pairs(env.to),
        cc=_pairs(env.cc),
        reply_to=_pairs(env.reply_to),
        date=env.date,
        text=parsed.text,
        html=parsed.html,
        attachments=[_attachment(item) for item in parsed.attachments],
        defects=list(parsed.defects),
    )


def _pairs(addresses: list[Address]) -> list[tuple[str, str]]:
    # Every address: the reader caps what it shows (posta.web.mail.reader).
    return [(name.strip()[:300], addr.strip()[:300]) for name, addr in addresses]


def _attachment(item: parse.Attachment) -> Attachment:
    return Attachment(
        part_id=item.part_id,
        filename=item.filename,
        content_type=item.content_type,
        size=item.size,
        content_id=item.content_id[:500],
        inline=item.disposition == "inline" and bool(item.content_id),
        is_message=item.is_message,
    )


def get_part(raw: bytes, part_id: str) -> tuple[Attachment, bytes] | None:
    """The attachment numbered `part_id` and its decoded bytes, or None. A body part
    asked for as a download is served as text."""
    try:
        _, data = parse.get_part(raw, part_id)
    except KeyError:
        return None
    listed = [a for a in parse.parse_message(raw).attachments if a.part_id == part_id]
    if listed:
        att = _attachment(listed[0])
    else:
        att = Attachment(part_id, f"part-{part_id}.txt", "text/plain", 0)
    att.size = len(data)
    return att, data


def inline_images(raw: bytes, readable: ReadableMessage) -> dict[str, str]:
    """`data:` URIs of the message's inline images by Content-ID, within limits.
    SVG is left out: it is a document, not a picture."""
    wanted = [
        a
        for a in readable.attachments
        if a.content_id
        and a.content_type.startswith("image/")
        and a.content_type != "image/svg+xml"
        and a.size <= MAX_INLINE_IMAGE
    ]
    images: dict[str, str] = {}
    total = 0
    for att in wanted:
        found = get_part(raw, att.part_id)
        if found is None:
            continue
        data = found[1]
        total += len(data)
        if total > MAX_INLINE_TOTAL:
            break
        encoded = base64.b64encode(data).decode("ascii")
        images[att.content_id.lower()] = f"data:{att.content_type};base64,{encoded}"
    return images


# --- sanitizing -------------------------------------------------------------------

_TAGS = (nh3.ALLOWED_TAGS | {"font", "big", "tfoot", "th", "center"}) - {"area", "map"}
_GENERIC = {
    "align", "valign", "width", "height", "bgcolor", "color", "border", "dir", "lang",
    "title", "style", "class", "cellpadding", "cellspacing", "colspan", "rowspan",
    "nowrap", "background",
}  # fmt: skip
_ATTRIBUTES: dict[str, set[str]] = {
    "*": _GENERIC,
    "a": {"href", "name"},
    "img": {"src", "alt", "hspace", "vspace"},
    "font": {"face", "size"},
    "ol": {"start", "type"},
    "li": {"value"},
    "table": {"summary"},
    "td": {"headers", "scope"},
    "th": {"headers", "scope"},
}
# `data:` and `cid:` reach the attribute filter, which alone decides them: a link is
# http(s) or mailto only; an image is one of the message's own or goes by the proxy.
_URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}
_LINK_PREFIXES = ("http://", "https://", "mailto:")
# WHATWG URL: a browser drops ASCII tab and newline anywhere in a URL and C0
# controls and spaces around it, so the scheme is judged on what is left.
_URL_IGNORED = re.compile(r"[\t\n\r]")
_URL_EDGES = "".join(chr(c) for c in range(0x21))
_STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style\s*>", re.I | re.S)


@dataclass
class SafeHtml:
    """A sanitized body: `body` and `css` may go into the frame's document as they are."""

    body: str
    css: str
    blocked: int  # remote items left out because remote content is not allowed


def _url_text(value: str) -> str:
    return _URL_IGNORED.sub("", value).strip(_URL_EDGES)


class _Rewriter:
    """The attribute filter: every URL an attribute or a style carries, decided once."""

    def __init__(self, images: dict[str, str], proxy: Callable[[str], str] | None) -> None:
        self.images = images
        self.ours = set(images.values())
        self.proxy = proxy
        self.blocked = 0

    def remote(self, value: str) -> str | None:
        url = _url_text(value)
        lowered = url.lower()
        if url in self.ours:  # already one of the message's own images (a second pass)
            return url
        if lowered.startswith("cid:"):
            return self.images.get(url[4:].strip("<>").lower())
        if not lowered.startswith(("http://", "https://")):
            return None
        if self.proxy is None:
            self.blocked += 1
            return None
        return self.proxy(url)

    def css(self, text: str) -> str:
        """CSS that loads nothing but through `remote` and runs nothing
        (posta.mail.mail_css)."""
        cleaned, imports = mail_css.clean_css(text, rewrite=self.remote)
        self.blocked += imports
        return cleaned

    def __call__(self, element: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            return self.css(value)
        if (element == "img" and attribute == "src") or attribute == "background":
            return self.remote(value)
        if attribute == "href":
            return value if _url_text(value).lower().startswith(_LINK_PREFIXES) else None
        return value


def sanitize_html(
    source: str, *, images: dict[str, str], proxy: Callable[[str], str] | None
) -> SafeHtml:
    """Sanitize an HTML body for the reader frame.

    `images` maps lower-case Content-IDs to `data:` URIs; `proxy` turns a remote
    image URL into the image proxy's URL, or is None while remote content is
    blocked (then each remote item is dropped and counted in `blocked`).
    """
    rewriter = _Rewriter(images, proxy)
    # <style> blocks: ammonia drops them with their content. Their CSS is kept,
    # cleaned as CSS, for the document's head (newsletters are unreadable without).
    css = "\n".join(rewriter.css(block) for block in _STYLE_BLOCK.findall(source[:2_000_000]))
    body = nh3.clean(
        source,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head", "noscript", "template"},
        attributes=_ATTRIBUTES,
        attribute_filter=rewriter,
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=_URL_SCHEMES,
        url_relative="deny",
    )
    return SafeHtml(body=body, css=css, blocked=rewriter.blocked)


_LINK = re.compile(r"\bhttps?://[^\s<>\"']+", re.I)
_TRAILING = ".,;:!?)]}"


def text_to_html(text: str) -> str:
    """Plain text as HTML: escaped first, then http(s) URLs made into links that
    open in a new tab without opener or referrer."""
    escaped = html.escape(text, quote=True)

    def repl(match: re.Match[str]) -> str:
        url = match.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:
            tail = url[-1] + tail
            url = url[:-1]
        if url.endswith("&gt"):  # the escaped ">" of "<http://...>" is not part of it
            url, tail = url[:-3], "&gt" + tail
        return (
            f'<a href="{url}" target="_blank" rel="noopener noreferrer">{url}</a>{tail}'
        )

    return _LINK.sub(repl, escaped)


_BASE_CSS = (
    "html{color-scheme:light}body{margin:8px;font:14px/1.45 system-ui,sans-serif;"
    "color:#1d2430;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
    "pre.plain{white-space:pre-wrap;font:inherit;margin:0}"
)


def document(safe: SafeHtml | None = None, *, text_html: str = "") -> str:
    """The frame's whole document around a sanitized body (or linkified text)."""
    css = safe.css if safe else ""
    body = safe.body if safe else f'<pre class="plain">{text_html}</pre>'
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<base target="_blank">'
        # No DNS look-up of the hosts that links name before a click: a sender's
        # name server would learn that, and when, the message was read.
        '<meta http-equiv="x-dns-prefetch-control" content="off">'
        f"<style>{_BASE_CSS}</style><style>{css}</style></head>"
        f"<body>{body}</body></html>"
    )
