"""What comes out of a message's bytes: the body frame, attachments, .eml, the
print view, and remote images through the proxy.

The body frame is the one place mail HTML reaches a browser. It is sanitized
(posta.mail.sanitize), then served from its own URL under

    Content-Security-Policy: default-src 'none'; img-src data: <proxy>;
        style-src 'unsafe-inline'; base-uri 'none'; form-action 'none';
        frame-ancestors 'self'; script-src 'none';
        sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox

and shown in `<iframe sandbox="allow-same-origin allow-popups
allow-popups-to-escape-sandbox">`: no script runs even if the sanitizer missed
one, no request leaves for a sender's server (img-src lists only `data:` for the
message's own cid: images and the proxy), no form posts, and the top page cannot
be navigated. `allow-same-origin` is there only so that the page's own script
(static/posta/frames.js) can measure the body and size the frame to it; it is
never combined with `allow-scripts`, which together would let a body remove its
own sandbox. A document without script cannot use the origin it has: it reads no
cookie and no page. Attachments are always downloads, with nosniff.
"""

from __future__ import annotations

import io
import mimetypes
import secrets
import zipfile
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from posta.mail import queries, remote_images, sanitize
from posta.mail.models import Message
from posta.users.models import User
from posta.web import params
from posta.web.mail import reader
from posta.web.utils import current_user

PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
# The body frame's sandbox (the iframe attribute says the same): readable by the
# page's script for its height, never with allow-scripts (see the module docstring).
BODY_SANDBOX = f"allow-same-origin {SANDBOX}"
# The proxy's own parameters: a remote image URL (browsers cut URLs near 64 KB
# anyway) and the signature Posta made for it (base64 of a SHA-256 HMAC).
MAX_IMAGE_URL = 16_384
MAX_SIGNATURE = 100


def _message(user: User, message_id: int) -> Message:
    return queries.access_message(user, message_id)


def _no_store(response: HttpResponse) -> HttpResponse:
    # Downloads are never rendered; should a browser try anyway, nothing runs.
    response.setdefault("Content-Security-Policy", "default-src 'none'; sandbox")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response


def frame_csp(request: HttpRequest, *, nonce: str = "") -> str:
    """The policy of a message body: the body frame's (no nonce: same origin for
    its height, no script), or the print page's (its one nonce'd script, opaque
    origin: allow-same-origin never goes with allow-scripts)."""
    script = f"script-src 'nonce-{nonce}'" if nonce else "script-src 'none'"
    sandbox = f"{SANDBOX} allow-scripts allow-modals" if nonce else BODY_SANDBOX
    return (
        f"default-src 'none'; {script}; img-src data: {reader.proxy_origin(request)}; "
        "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        f"frame-ancestors 'self'; sandbox {sandbox}"
    )


@login_required
@require_GET
def body(request: HttpRequest, message_id: int) -> HttpResponse:
    """The sanitized body as a document of its own, for the sandboxed frame."""
    user = current_user(request)
    message = _message(user, message_id)
    raw = reader.raw_bytes(message, params.part_path(request.GET, "nested"))
    readable = sanitize.read_message(raw)
    allow = params.flag(request.GET, "images") or reader.sender_allowed(user, message)
    document, _blocked = reader.safe_body(request, user, message, raw, readable, allow_remote=allow)
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = frame_csp(request)
    return _no_store(response)


def _disposition(kind: str, filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name (RFC 8187)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename)
    return f"{kind}; filename=\"{ascii_name or 'attachment'}\"; filename*=UTF-8''{quote(filename)}"


def _part_name(att: sanitize.Attachment) -> str:
    if att.filename:
        return att.filename.replace("/", "_").replace("\\", "_")
    extension = mimetypes.guess_extension(att.content_type) or ".bin"
    if att.is_message:
        extension = ".eml"
    return f"part-{att.part_id}{extension}"


def download(att: sanitize.Attachment, data: bytes) -> HttpResponse:
    """An attachment's bytes as a download, never rendered."""
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Disposition"] = _disposition("attachment", _part_name(att))
    return _no_store(response)


def preview_csp(content_type: str) -> str:
    """The policy of an attachment opened for preview, also when opened directly in
    a tab of its own: the document never runs with Posta's origin."""
    closed = "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    if content_type == "application/pdf":
        # Chromium's PDF viewer will not run in a CSP sandbox; it shows the PDF from
        # its own extension origin, and with default-src 'none' the document can
        # load and run nothing beside it.
        return f"default-src 'none'; object-src 'self'; {closed}"
    # sandbox: an opaque origin and no script, whatever the bytes turn out to be.
    return f"default-src 'none'; img-src 'self'; {closed}; sandbox"


@login_required
@require_GET
def part(request: HttpRequest, message_id: int, part_id: str) -> HttpResponse:
    """An attachment, always as a download (`?preview=1`: images and PDFs inline,
    sandboxed, for the preview frame)."""
    user = current_user(request)
    message = _message(user, message_id)
    raw = reader.raw_bytes(message, params.part_path(request.GET, "nested"))
    found = sanitize.get_part(raw, params.check_part_path(part_id, name="part"))
    if found is None:
        raise Http404
    att, data = found
    preview = params.flag(request.GET, "preview") and att.content_type in PREVIEW_TYPES
    if preview:
        response = HttpResponse(data, content_type=att.content_type)
        response["Content-Disposition"] = _disposition("inline", _part_name(att))
        response["Content-Security-Policy"] = preview_csp(att.content_type)
    else:
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = _disposition("attachment", _part_name(att))
    return _no_store(response)


@login_required
@require_GET
def zip_all(request: HttpRequest, message_id: int) -> HttpResponse:
    """Every attachment in one zip."""
    user = current_user(request)
    message = _message(user, message_id)
    raw = reader.raw_bytes(message, params.part_path(request.GET, "nested"))
    readable = sanitize.read_message(raw)
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for att in readable.downloads:
            found = sanitize.get_part(raw, att.part_id)
            if found is None:
                continue
            name = _part_name(att)
            stem, dot, ext = name.rpartition(".")
            counter = 1
            while name in used:
                counter += 1
                name = f"{stem} ({counter}).{ext}" if dot else f"{ext} ({counter})"
            used.add(name)
            archive.writestr(name, found[1])
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    base = (message.subject or "attachments")[:60]
    response["Content-Disposition"] = _disposition("attachment", f"{base}.zip")
    return _no_store(response)


@login_required
@require_GET
def eml(request: HttpRequest, message_id: int) -> HttpResponse:
    """The message exactly as the server had it."""
    user = current_user(request)
    message = _message(user, message_id)
    raw = reader.raw_bytes(message, params.part_path(request.GET, "nested"))
    response = HttpResponse(raw, content_type="message/rfc822")
    base = (message.subject or "message")[:80]
    response["Content-Disposition"] = _disposition("attachment", f"{base}.eml")
    return _no_store(response)


@login_required
@require_GET
def print_view(request: HttpRequest, message_id: int) -> HttpResponse:
    """A page to print: headers and the sanitized body, inline, under a CSP that
    allows no script but the one nonce'd `window.print()` of this page."""
    user = current_user(request)
    message = _message(user, message_id)
    raw = reader.raw_bytes(message)
    readable = sanitize.read_message(raw)
    allow = reader.sender_allowed(user, message) or params.flag(request.GET, "images")
    if readable.html:
        safe = sanitize.sanitize_html(
            readable.html,
            images=sanitize.inline_images(raw, readable),
            proxy=reader.proxy_builder(request, user, message) if allow else None,
        )
        body_html, css = safe.body, safe.css
    else:
        body_html = f'<pre class="plain">{sanitize.text_to_html(readable.text)}</pre>'
        css = ""
    nonce = secrets.token_urlsafe(16)
    response = render(
        request,
        "web/mail/print.html",
        {
            "message": message,
            "readable": readable,
            "body_html": body_html,
            "body_css": css,
            "nonce": nonce,
        },
    )
    response["Content-Security-Policy"] = frame_csp(request, nonce=nonce)
    return _no_store(response)


def _image_proxy_rule() -> remote_images.ProxyRule:
    # Its own settings, never CompanySettings.allowed_hosts_list(): allowing a mail
    # host must not let a sender's <img> reach that machine's web services.
    return remote_images.ProxyRule(
        allowed_hosts=tuple(settings.POSTA_IMAGE_PROXY_ALLOWED_HOSTS),
        ports=frozenset(settings.POSTA_IMAGE_PROXY_PORTS),
    )


@require_GET
def image(request: HttpRequest, user_id: int, message_id: int) -> HttpResponse:
    """The image proxy. The URL's signature (made when Posta showed the message to
    that user, over user, message and URL) is what admits a request, so a frame that
    sends no cookie (a print page's opaque origin) still gets its images. A signed-in
    user other than the one signed for gets 404, and so does an image the remote
    server would not give."""
    if request.user.is_authenticated and request.user.pk != user_id:
        raise Http404
    url = params.text(request.GET, "u", max_length=MAX_IMAGE_URL, strip=False)
    signature = params.text(request.GET, "s", max_length=MAX_SIGNATURE, strip=False)
    expected = reader.image_signature(user_id, message_id, url)
    # As bytes: compare_digest refuses str with non-ASCII characters.
    if not url or not secrets.compare_digest(signature.encode(), expected.encode()):
        raise Http404
    if not Message.objects.filter(pk=message_id, user_id=user_id).exists():
        raise Http404
    try:
        fetched = remote_images.fetch_image(url, rule=_image_proxy_rule())
    except remote_images.ImageFetchError as exc:
        raise Http404 from exc
    response = HttpResponse(fetched.data, content_type=fetched.content_type)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    return response
