"""From raw message bytes to what the reader may safely show.

Three jobs, in this order, each in one place:

1. **Read** the MIME tree (`read_message`): headers, the plain and HTML bodies,
   attachments numbered as IMAP numbers parts (RFC 3501 §6.4.5), inline images by
   Content-ID (RFC 2392), and the defects found. Never raises: a message the strict
   `policy.default` cannot walk is read again with `compat32`; what still cannot be
   read becomes a defect, and the raw text after the header is shown.
2. **Sanitize** the HTML body (`sanitize_html`) with nh3 (ammonia): an allowlist of
   tags and attributes; no script, no SVG/MathML, no forms, no event handlers, no
   `<meta>`/`<base>`/`<link>`; links only `http`, `https` and `mailto` (ammonia
   checks schemes after entity decoding, so `jav&#x61;script:` is caught); relative
   URLs dropped (they would point at Posta itself). Remote content — `img src`,
   `background`, CSS `url()` and `@import` — is rewritten *during* sanitizing, by
   the attribute filter: removed while blocked, or pointed at the image proxy once
   the user allowed it. `cid:` images become `data:` URIs from the message's own
   parts, so the sandboxed frame never has to ask the server for them. Nothing edits
   the HTML after it is sanitized.
3. **Plain text** (`text_to_html`): escaped first, then http(s) links made clickable.

The document this produces is served by the web layer inside an `<iframe sandbox>`
without `allow-scripts` and `allow-same-origin`, under a CSP that allows no script
and images only from `data:` and the proxy: the sanitizer and the CSP each stop
hostile mail alone.
"""

from __future__ import annotations

import base64
import email
import email.policy
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

import nh3

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

MAX_PARTS = 500
MAX_INLINE_IMAGE = 2 * 1024 * 1024  # a cid: image above this stays out of the page
MAX_INLINE_TOTAL = 8 * 1024 * 1024
_HUGE_HEADER = 256 * 1024  # policy.default's header parsers are slow on hostile sizes


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


def split_raw(raw: bytes) -> tuple[bytes, bytes]:
    """Header block and body, split at the first empty line (RFC 5322 §2.1)."""
    found = [(i, n) for i, n in ((raw.find(b"\r\n\r\n"), 4), (raw.find(b"\n\n"), 2)) if i >= 0]
    if not found:
        return raw, b""
    index, size = min(found)
    return raw[: index + size], raw[index + size :]


def read_message(raw: bytes) -> ReadableMessage:
    """Parse `raw` for display. Never raises."""
    header, body = split_raw(raw)
    policies: list[email.policy.Policy] = [email.policy.compat32]
    if len(header) <= _HUGE_HEADER:
        policies.insert(0, email.policy.default)
    failures: list[str] = []
    for policy in policies:
        try:
            parsed = email.message_from_bytes(raw, policy=policy)
            out = _read(parsed)
        except Exception as exc:  # noqa: BLE001 - hostile input may break any parser
            failures.append(type(exc).__name__)
            continue
        out.defects = (failures + out.defects)[:50]
        return out
    return ReadableMessage(text=_decode(body, ""), defects=failures or ["Unreadable"])


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a header the policy cannot parse is shown raw
        raw = msg.get_all(name, failobj=[])
        value = raw[0] if raw else None
    return " ".join(str(value).split()) if value is not None else ""


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    text = _header(msg, name)
    if not text:
        return []
    try:
        pairs = getaddresses([text])
    except Exception:  # noqa: BLE001 - an unparsable list is shown as one name
        return [(text[:300], "")]
    # Every address: the reader caps what it shows (posta.web.mail.reader).
    return [(n.strip()[:300], a.strip()[:300]) for n, a in pairs if n.strip() or a.strip()]


def _date(msg: Message) -> datetime | None:
    try:
        value = parsedate_to_datetime(_header(msg, "Date"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _read(msg: Message) -> ReadableMessage:
    out = ReadableMessage(
        subject=_header(msg, "Subject")[:2000],
        from_=_addresses(msg, "From"),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        reply_to=_addresses(msg, "Reply-To"),
        date=_date(msg),
    )
    texts: list[str] = []
    counter = [0]
    _note_defects(msg, out)
    if msg.is_multipart():
        _walk(msg, "", out, texts, counter)
    else:
        _leaf(msg, "1", out, texts)
    out.text = "\n".join(texts)
    return out


def _note_defects(part: Message, out: ReadableMessage) -> None:
    for defect in getattr(part, "defects", ()):
        name = type(defect).__name__
        if name not in out.defects:
            out.defects.append(name)


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _walk(
    part: Message, prefix: str, out: ReadableMessage, texts: list[str], counter: list[int]
) -> None:
    alternative = part.get_content_type() == "multipart/alternative"
    for number, child in enumerate(_children(part), start=1):
        counter[0] += 1
        if counter[0] > MAX_PARTS:
            if "TooManyParts" not in out.defects:
                out.defects.append("TooManyParts")
            return
        _note_defects(child, out)
        part_id = f"{prefix}.{number}" if prefix else str(number)
        if child.is_multipart() and child.get_content_type() != "message/rfc822":
            _walk(child, part_id, out, texts, counter)
        elif alternative and child.get_content_type() == "text/plain" and texts:
            continue  # one plain alternative is enough
        else:
            _leaf(child, part_id, out, texts)


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001 - broken RFC 2231 parameters
        name = ""
    return " ".join(str(name).split())[:255]


def _decode(payload: bytes, declared: str) -> str:
    for charset in (declared, "utf-8", "windows-1252"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - broken transfer encoding
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""


def _leaf(part: Message, part_id: str, out: ReadableMessage, texts: list[str]) -> None:
    ctype = part.get_content_type()
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part)
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = _decode(_payload(part), part.get_content_charset() or "")
        if ctype == "text/plain":
            texts.append(text)
        elif not out.html:
            out.html = text
        return
    cid = _header(part, "Content-ID").strip().strip("<>")
    is_message = ctype == "message/rfc822"
    size = len(part.as_bytes()) if is_message else len(_payload(part))
    out.attachments.append(
        Attachment(
            part_id=part_id,
            filename=filename,
            content_type=ctype,
            size=size,
            content_id=cid[:500],
            inline=disposition != "attachment" and bool(cid),
            is_message=is_message,
        )
    )


def get_part(raw: bytes, part_id: str) -> tuple[Attachment, bytes] | None:
    """The attachment numbered `part_id` and its decoded bytes, or None."""
    for policy in (email.policy.default, email.policy.compat32):
        try:
            msg = email.message_from_bytes(raw, policy=policy)
            found = _find(msg, part_id)
        except Exception:  # noqa: BLE001, S112 - hostile input: try the lenient policy
            continue
        if found is None:
            return None
        readable = ReadableMessage()
        _leaf(found, part_id, readable, [])
        if not readable.attachments:
            # A body part asked for as a download: serve it as text.
            filename = f"part-{part_id}.txt"
            att = Attachment(part_id, filename, "text/plain", 0)
        else:
            att = readable.attachments[0]
        data = found.as_bytes() if att.is_message else _payload(found)
        _inner = found.get_payload()
        if att.is_message and isinstance(_inner, list) and _inner:
            data = _inner[0].as_bytes() if isinstance(_inner[0], Message) else data
        att.size = len(data)
        return att, data
    return None


def _find(msg: Message, part_id: str) -> Message | None:
    if not msg.is_multipart():
        return msg if part_id == "1" else None
    node = msg
    for piece in part_id.split("."):
        if not piece.isdigit():
            return None
        children = _children(node)
        index = int(piece) - 1
        if not 0 <= index < len(children):
            return None
        node = children[index]
    return node


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
_URL_SCHEMES = {"http", "https", "mailto", "cid"}
_CSS_URL = re.compile(r"url\s*\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
_CSS_IMPORT = re.compile(r"@import[^;]*;?", re.I)
_CSS_DANGER = re.compile(r"expression\s*\(|behavior\s*:|-moz-binding|javascript:", re.I)
_STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style\s*>", re.I | re.S)


@dataclass
class SafeHtml:
    """A sanitized body: `body` and `css` may go into the frame's document as they are."""

    body: str
    css: str
    blocked: int  # remote items left out because remote content is not allowed


class _Rewriter:
    """The attribute filter: every URL an attribute or a style carries, decided once."""

    def __init__(self, images: dict[str, str], proxy: Callable[[str], str] | None) -> None:
        self.images = images
        self.proxy = proxy
        self.blocked = 0

    def remote(self, url: str) -> str | None:
        url = url.strip()
        lowered = url.lower()
        if lowered.startswith("cid:"):
            return self.images.get(url[4:].strip("<>").lower())
        if not lowered.startswith(("http://", "https://")):
            return None
        if self.proxy is None:
            self.blocked += 1
            return None
        return self.proxy(url)

    def css(self, text: str) -> str:
        """CSS with no way out: no escapes (which could spell `url`), no `<`, no
        @import, no legacy script hooks; url() only to cid images or the proxy."""
        text = text.replace("\\", "").replace("<", "")
        imports = len(_CSS_IMPORT.findall(text))
        if imports:
            self.blocked += imports
            text = _CSS_IMPORT.sub("", text)
        text = _CSS_DANGER.sub("invalid", text)

        def repl(match: re.Match[str]) -> str:
            target = self.remote(match.group(2))
            return f'url("{target}")' if target and '"' not in target else "none"

        return _CSS_URL.sub(repl, text)

    def __call__(self, element: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            return self.css(value)
        if (element == "img" and attribute == "src") or attribute == "background":
            return self.remote(value)
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
        f"<style>{_BASE_CSS}</style><style>{css}</style></head>"
        f"<body>{body}</body></html>"
    )
