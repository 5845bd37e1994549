"""The reader pane: one message, or a conversation, made ready for the templates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core import signing
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext

from posta.mail import blobs, queries, quotes, sanitize, services
from posta.mail.models import Message
from posta.mail.queries import MessageDetail
from posta.shares import conversation as share_conversation
from posta.shares import services as share_services
from posta.users.models import User
from posta.web import params

_SIGNER_SALT = "posta.mail.image-proxy"
# Addresses the reader shows of one list (To, Cc, Reply-To); the rest are counted
# ("and N more"). The message keeps every one of them, and Reply all uses them all.
READER_ADDRESSES = 20


def is_htmx(request: HttpRequest) -> bool:
    """A request htmx made (a partial is wanted), not a page load."""
    return request.headers.get("HX-Request") == "true"


# --- remote content permission ----------------------------------------------------


def sender_allowed(user: User, message: Message) -> bool:
    """Whether the user chose "always show remote content" for this sender."""
    return queries.remote_content_allowed(user, message.from_email)


def image_signature(user_id: int, message_id: int, url: str) -> str:
    """The proxy only fetches URLs Posta itself put into a message it showed."""
    return signing.Signer(salt=_SIGNER_SALT).signature(f"{user_id}:{message_id}:{url}")


def proxy_builder(request: HttpRequest, user: User, message: Message) -> Callable[[str], str]:
    base = request.build_absolute_uri(reverse("mail_image", args=[user.pk, message.pk]))

    def build(url: str) -> str:
        return f"{base}?{urlencode({'u': url, 's': image_signature(user.pk, message.pk, url)})}"

    return build


def proxy_origin(request: HttpRequest) -> str:
    """The image proxy's URL prefix, for the frame's CSP img-src."""
    return request.build_absolute_uri(reverse("mail_image_root"))


# --- address lists ----------------------------------------------------------------


@dataclass(frozen=True)
class ShownAddresses:
    """The head of an address list that a page shows, and how many it leaves out."""

    shown: list[Sequence[str]]
    more: int

    def __bool__(self) -> bool:
        return bool(self.shown)


def shown_addresses(
    pairs: Sequence[Sequence[str]], *, limit: int = READER_ADDRESSES
) -> ShownAddresses:
    """The first `limit` of `pairs` ([name, address] each) and the count of the rest."""
    items = list(pairs)
    return ShownAddresses(shown=items[:limit], more=max(len(items) - limit, 0))


# --- bodies -----------------------------------------------------------------------


def raw_bytes(message: Message, nested: str = "") -> bytes:
    """The message's raw bytes (or those of a message/rfc822 part inside it); 404
    when the body is not stored or the part is no message."""
    if message.body_state != Message.BodyState.STORED or not message.blob_key:
        raise Http404
    try:
        raw = blobs.get(message.blob_key)
    except FileNotFoundError as exc:
        raise Http404 from exc
    if not nested:
        return raw
    found = sanitize.get_part(raw, nested)
    if found is None or not found[0].is_message:
        raise Http404
    return found[1]


def safe_body(
    request: HttpRequest,
    user: User,
    message: Message,
    raw: bytes,
    readable: sanitize.ReadableMessage,
    *,
    allow_remote: bool,
) -> tuple[str, int]:
    """The frame's whole document and the number of remote items blocked."""
    if readable.html:
        safe = sanitize.sanitize_html(
            readable.html,
            images=sanitize.inline_images(raw, readable),
            proxy=proxy_builder(request, user, message) if allow_remote else None,
        )
        return sanitize.document(safe), safe.blocked
    return sanitize.document(text_html=sanitize.text_to_html(readable.text)), 0


# --- contexts ---------------------------------------------------------------------


def _detail(user: User, message_id: int, folder_id: int | None) -> MessageDetail:
    return queries.message_detail(user, message_id, folder_id=folder_id)


def body_context(
    request: HttpRequest, user: User, detail: MessageDetail, *, nested: str = ""
) -> dict[str, Any]:
    """What the reader needs of the body: parsed headers, attachments, the remote
    content bar, and the frame's URL."""
    message = detail.message
    context: dict[str, Any] = {"body_ready": False, "nested": nested}
    if message.body_state != Message.BodyState.STORED:
        return context
    raw = raw_bytes(message, nested)
    readable = sanitize.read_message(raw)
    remote_ok = sender_allowed(user, message)
    once = params.flag(request.GET, "images")
    _doc, blocked = safe_body(request, user, message, raw, readable, allow_remote=False)
    query: dict[str, str] = {}
    if nested:
        query["nested"] = nested
    if once:
        query["images"] = "1"
    frame_url = reverse("mail_body", args=[message.pk])
    context.update(
        {
            "body_ready": True,
            "readable": readable,
            "attachments": readable.downloads,
            "blocked": blocked,
            "remote_shown": blocked and (remote_ok or once),
            "sender_always": remote_ok,
            "frame_url": f"{frame_url}?{urlencode(query)}" if query else frame_url,
            "malformed": bool(readable.defects),
        }
    )
    return context


def message_context(
    request: HttpRequest, user: User, message_id: int, *, folder_id: int | None
) -> dict[str, Any]:
    detail = _detail(user, message_id, folder_id)
    message = detail.message
    nested = params.part_path(request.GET, "nested")
    context: dict[str, Any] = {"detail": detail, "message": message}
    context.update(body_context(request, user, detail, nested=nested))
    senders = {message.from_email.lower()}
    context["shown_to"] = shown_addresses(message.to)
    context["shown_cc"] = shown_addresses(message.cc)
    context["reply_to"] = shown_addresses(
        [p for p in message.reply_to if len(p) == 2 and str(p[1]).lower() not in senders]
    )
    readable = context.get("readable")
    if readable is not None:
        context["nested_to"] = shown_addresses(readable.to)
    context["other_folders"] = detail.locations[1:]
    context["unread"] = any(not loc.seen for loc in detail.locations)
    context["folder_id"] = folder_id or ""
    context["share"] = share_services.share_of_message(user, message)
    if detail.message.body_state == Message.BodyState.PENDING and not _polling(request):
        # Opened before the background download reached it: ask for it now; the
        # pane then polls until the body is in.
        services.request_body_fetch(user, message.pk)
    return context


def _polling(request: HttpRequest) -> bool:
    """The loading pane asking again (the fetch was requested on the first open)."""
    return params.flag(request.GET, "poll")


def thread_context(request: HttpRequest, user: User, thread_id: int) -> dict[str, Any]:
    thread, details = queries.thread_messages(user, thread_id)
    items = []
    for index, detail in enumerate(details):
        item: dict[str, Any] = {"detail": detail, "message": detail.message}
        last = index == len(details) - 1
        item["open"] = last or any(not loc.seen for loc in detail.locations)
        if item["open"]:
            item.update(body_context(request, user, detail))
            readable = item.get("readable")
            if readable is not None and not readable.html:
                # Plain text reads inline, at its own height: escaped and linkified
                # like the frame's (sanitize.text_to_html), so no frame is needed.
                # The trailing quote of a reply is folded ("Show quoted text").
                fresh, quoted = quotes.split_quoted(readable.text)
                item["text_html"] = mark_safe(sanitize.text_to_html(fresh))  # noqa: S308 - escaped by text_to_html
                item["quoted_html"] = mark_safe(sanitize.text_to_html(quoted)) if quoted else ""  # noqa: S308 - escaped by text_to_html
            pending = detail.message.body_state == Message.BodyState.PENDING
            if pending and not _polling(request):
                services.request_body_fetch(user, detail.message.pk)
        items.append(item)
    unread_ids = [d.message.pk for d in details if any(not loc.seen for loc in d.locations)]
    count = len(items)
    share = share_services.share_of_message(user, details[-1].message) if details else None
    return {
        "share": share,
        # Colleagues' replies written from the share: part of this conversation too.
        "share_replies": share_conversation.reply_messages(share) if share else [],
        "thread": thread,
        # The first message's subject as its sender wrote it (Thread.subject is the
        # normalized base subject used for grouping).
        "subject": details[0].message.subject if details else thread.subject,
        "count_text": ngettext("%(count)d message", "%(count)d messages", count) % {"count": count},
        "items": items,
        "unread_ids": unread_ids,
    }
