"""The editor inside the mail screen's compose panel (issue 19).

The panel (compose_panel.js) shows the editor's own pages in a same-origin frame,
asked for with `?frame=1`: the same views, forms and autosave as the full page,
on a bare layout, so the mail screen itself needs neither the editor's scripts nor
its CSP allowances. Each answer that would lead elsewhere (Send, Schedule, a row
that is no longer a draft) becomes a small "done" page whose script tells the
panel what happened; the panel closes and shows the toast.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from posta.mail import outbox_sentences
from posta.mail.models import OutgoingMessage
from posta.web import params
from posta.web.security import allow_same_origin_frame

FRAME_QUERY = "frame=1"
# States after which nothing more happens without the user: the toast's last words.
FINAL_STATES = frozenset(
    {
        OutgoingMessage.State.SENT,
        OutgoingMessage.State.FAILED,
        OutgoingMessage.State.NEEDS_REVIEW,
        OutgoingMessage.State.CANCELLED,
        OutgoingMessage.State.DRAFT,
    }
)


def is_framed(request: HttpRequest) -> bool:
    """The request comes from the compose panel's frame (`?frame=1`)."""
    framed = params.flag(request.GET, "frame")
    if framed:
        allow_same_origin_frame(request)
    return framed


def framed_url(url: str, framed: bool) -> str:
    """`url` as the panel's frame asks for it, when `framed`."""
    return f"{url}?{FRAME_QUERY}" if framed else url


def edit_url(row: OutgoingMessage, framed: bool) -> str:
    return framed_url(reverse("compose_edit", args=[row.pk]), framed)


def wants_json(request: HttpRequest) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


def remaining_seconds(row: OutgoingMessage) -> int:
    """Whole seconds left of the undo window (0 when it is over or never was)."""
    if row.state != OutgoingMessage.State.QUEUED or not row.send_at or row.error_code:
        return 0
    left = (row.send_at - timezone.now()).total_seconds()
    return max(0, int(left + 0.999))


def status_words(row: OutgoingMessage) -> str:
    """What the toast says of the row: on its way, sent, or what went wrong."""
    error = outbox_sentences.outgoing_error_message(row)
    if row.state == OutgoingMessage.State.SENT:
        return error or _("Message sent.")  # sent, with the recipients it could not reach
    if row.state == OutgoingMessage.State.SCHEDULED:
        return _("The message is scheduled.")
    if row.state == OutgoingMessage.State.DRAFT:
        return _("Sending undone: the message is back in the editor.")
    if error:
        return _("Not sent: %(error)s") % {"error": error}
    if row.state in FINAL_STATES:
        return str(row.get_state_display())
    return _("Sending…")


def status(row: OutgoingMessage) -> JsonResponse:
    """The row's state for the toast, which asks until it is final."""
    return JsonResponse(
        {
            "state": row.state,
            "final": row.state in FINAL_STATES or bool(row.error_code),
            "text": status_words(row),
            "remaining": remaining_seconds(row),
        }
    )


def done_page(request: HttpRequest, row: OutgoingMessage) -> HttpResponse:
    """The frame's page after Send or Schedule: read by compose_frame.js, which hands
    the panel the toast's words and the row's Undo and status URLs."""
    queued = row.state == OutgoingMessage.State.QUEUED
    context = {
        "row": row,
        "kind": "sent" if queued or row.state == OutgoingMessage.State.SENT else "closed",
        "text": status_words(row),
        "seconds": remaining_seconds(row),
        "undo_url": reverse("compose_undo", args=[row.pk]) if queued else "",
        "status_url": reverse("compose_sending", args=[row.pk]),
    }
    return render(request, "web/compose/frame_done.html", context)


def closed_page(request: HttpRequest, text: str) -> HttpResponse:
    """The frame's page for a row the panel cannot edit any more."""
    context = {"kind": "closed", "text": text, "seconds": 0, "undo_url": "", "status_url": ""}
    return render(request, "web/compose/frame_done.html", context)


def undo_answer(row: OutgoingMessage, undone: bool) -> JsonResponse:
    """The toast's Undo: the frame URL the message is back in, or why it is not."""
    if undone:
        return JsonResponse({"undone": True, "edit_url": edit_url(row, True)})
    return JsonResponse({"undone": False, "text": _("Too late: the message has already left.")})
