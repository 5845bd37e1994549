"""The editor, the undo page, and the Scheduled and Outbox lists (issue 5).

Thin views: parse the form, call posta.mail.outbox, render. Nothing here talks to a
mail server; Send writes an outbox row that the delivery worker carries out.

Opening the editor writes nothing (posta.mail.replies): the page of a draft not
stored yet posts its origin and key to the `*_start` views, whose first call
stores the row; the answer hands the page the row's own URLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from posta.accounts.models import Account, CompanySettings
from posta.accounts.services import sender_accounts
from posta.core.errors import PostaError
from posta.mail import links as crm_links
from posta.mail import outbox, outbox_queries, outbox_sentences, queries, replies
from posta.mail.addresses import format_addresses, lenient_address_list
from posta.mail.models import OutgoingMessage
from posta.mail.outbox_models import new_draft_key
from posta.mail.replies import Origin
from posta.users.models import User
from posta.web import compose_frame, params, share_views, uploads
from posta.web.forms import LocalDateTimeField, rich_text_field
from posta.web.utils import current_user, safe_next

# The address suggestions match what is typed in one address field.
MAX_ADDRESS_QUERY = 200


def _address_input() -> forms.TextInput:
    return forms.TextInput(
        attrs={"list": "address-suggestions", "autocomplete": "off", "class": "addresses"}
    )


class ComposeForm(forms.Form):
    account = forms.ChoiceField(label=gettext_lazy("From"))
    to = forms.CharField(
        label=gettext_lazy("To"), required=False, max_length=10000, widget=_address_input()
    )
    cc = forms.CharField(
        label=gettext_lazy("Cc"), required=False, max_length=10000, widget=_address_input()
    )
    bcc = forms.CharField(
        label=gettext_lazy("Bcc"), required=False, max_length=10000, widget=_address_input()
    )
    subject = forms.CharField(label=gettext_lazy("Subject"), required=False, max_length=998)
    body = rich_text_field(gettext_lazy("Message"))
    body_text = forms.CharField(
        label=gettext_lazy("Message"), required=False, widget=forms.Textarea(attrs={"rows": 14})
    )
    plain_text = forms.BooleanField(label=gettext_lazy("Plain text"), required=False)
    # CRM records the sent message joins ("contact:12, organization:3").
    link_to = forms.CharField(
        label=gettext_lazy("Link to"), required=False, max_length=2000,
        widget=forms.TextInput(
            attrs={"list": "record-suggestions", "autocomplete": "off", "class": "record-refs"}
        ),
    )  # fmt: skip
    send_at = LocalDateTimeField(
        label=gettext_lazy("Send at"),
        required=False,
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"
        ),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        account_field = self.fields["account"]
        assert isinstance(account_field, forms.ChoiceField)  # noqa: S101 - declared above
        account_field.choices = [
            (str(a.pk), f"{a.description} <{a.email}>" if a.description != a.email else a.email)
            for a in sender_accounts(user)
        ]

    def draft(self) -> outbox.Draft:
        data = self.cleaned_data
        return outbox.Draft(
            account_id=int(data["account"]),
            to=data["to"],
            cc=data["cc"],
            bcc=data["bcc"],
            subject=data["subject"],
            body_html=data["body"] or "",
            body_text=data["body_text"],
            plain_text=data["plain_text"],
        )


def _initial(row: OutgoingMessage) -> dict[str, Any]:
    return {
        "account": str(row.account_id),
        "to": format_addresses(row.to),
        "cc": format_addresses(row.cc),
        "bcc": format_addresses(row.bcc),
        "subject": row.subject,
        "body": row.body_html,
        "body_text": row.body_text,
        "plain_text": row.plain_text,
        "link_to": ", ".join(row.crm_links or []),
    }


def _aware(user: User, value: datetime | None) -> datetime | None:
    """A time typed in the form, read in the user's time zone."""
    if value is None:
        return None
    if timezone.is_naive(value):
        return timezone.make_aware(value, outbox.user_timezone(user))
    return value.astimezone(outbox.user_timezone(user))


def _start_fields(origin: str, message_id: int | None) -> dict[str, str]:
    """What the page of a draft not stored yet carries to its first POST."""
    return {
        "origin": origin,
        "source": "" if message_id is None else str(message_id),
        "draft_key": new_draft_key(),
    }


def _unsaved_editor(
    request: HttpRequest, origin: str, message_id: int | None = None, *,
    account: Account | None = None,
) -> HttpResponse:
    """The editor for a draft not stored yet: shown from the prepared values, with
    nothing written (RFC 9110 §9.2.1, GET is safe); the page's first POST stores
    it (compose_start and its autosave and attach twins)."""
    user = current_user(request)
    prepared = replies.prepare(user, origin, message_id=message_id, account=account)
    if prepared.existing is not None:
        return redirect(compose_frame.edit_url(prepared.existing, compose_frame.is_framed(request)))
    _start_links(request, user, prepared.outgoing, message_id)
    form = ComposeForm(user=user, initial=_initial(prepared.outgoing))
    return _render_editor(
        request, user, form, prepared.outgoing, error=None,
        attachments=prepared.attachments, start=_start_fields(origin, message_id),
    )


def _start_links(
    request: HttpRequest, user: User, outgoing: OutgoingMessage, message_id: int | None
) -> None:
    """A reply to linked mail starts linked; "Write" on a record's page names the
    record (`link`) and its address (`to`)."""
    source = queries.access_message(user, message_id) if message_id is not None else None
    link = params.text(request.GET, "link", max_length=60)
    outgoing.crm_links = crm_links.starting_links(user, source=source, link=link)
    to = params.text(request.GET, "to", max_length=320)
    if to and not outgoing.to:
        outgoing.to = lenient_address_list(to)[:1]


@login_required
@require_GET
def compose_new(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    account = None
    account_id = params.optional_id(request.GET, "account")
    if account_id is not None:
        account = outbox.access_sender(user, account_id)
    return _unsaved_editor(request, Origin.NEW, account=account)


@login_required
@require_GET
def compose_reply(request: HttpRequest, message_id: int) -> HttpResponse:
    origin = Origin.REPLY_ALL if params.flag(request.GET, "all") else Origin.REPLY
    return _unsaved_editor(request, origin, message_id)


@login_required
@require_GET
def compose_forward(request: HttpRequest, message_id: int) -> HttpResponse:
    origin = Origin.FORWARD_ATTACHED if params.flag(request.GET, "attach") else Origin.FORWARD
    return _unsaved_editor(request, origin, message_id)


@login_required
@require_GET
def compose_draft(request: HttpRequest, message_id: int) -> HttpResponse:
    """A message of the Drafts folder opens in the editor, to continue writing it."""
    return _unsaved_editor(request, Origin.DRAFT, message_id)


@login_required
@require_GET
def compose_again(request: HttpRequest, message_id: int) -> HttpResponse:
    """The "send again" of a Sent message: a new draft with its content."""
    return _unsaved_editor(request, Origin.AGAIN, message_id)


def _started(request: HttpRequest, user: User) -> OutgoingMessage:
    """The draft of the page that posted: made by its first POST, found by the others."""
    return replies.check_start_draft(
        user, request.POST.get("origin", ""), draft_key=request.POST.get("draft_key", ""),
        message_id=params.optional_id(request.POST, "source"),
    )


@login_required
@require_POST
def compose_start(request: HttpRequest) -> HttpResponse:
    """Save, Send or Schedule on the page of a draft not stored yet."""
    user = current_user(request)
    return _editor(request, user, _started(request, user))


@login_required
def compose_edit(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    user = current_user(request)
    return _editor(request, user, outbox.access_outgoing(user, outgoing_id))


def _editor(request: HttpRequest, user: User, row: OutgoingMessage) -> HttpResponse:
    framed = compose_frame.is_framed(request)  # a bad switch is refused before any change
    if row.state != OutgoingMessage.State.DRAFT:
        if framed:
            return compose_frame.closed_page(request, _("This message is no longer a draft."))
        messages.info(request, _("This message is no longer a draft."))
        return redirect("compose_outbox")
    form = ComposeForm(request.POST or None, user=user, initial=_initial(row))
    error: PostaError | None = None
    if request.method == "POST" and form.is_valid():
        try:
            return _submit(request, user, row, form)
        except PostaError as exc:
            error = exc
            if exc.field and exc.field in form.fields:
                form.add_error(exc.field, str(exc.message))
                error = None
    return _render_editor(request, user, form, row, error=error)


def _submit(
    request: HttpRequest, user: User, row: OutgoingMessage, form: ComposeForm
) -> HttpResponse:
    action = params.choice(
        request.POST, "action", choices=("save", "send", "schedule"), default="save"
    )
    outbox.check_save_draft(user, row, form.draft())
    crm_links.check_set_outgoing_links(user, row, form.cleaned_data["link_to"])
    colleagues = share_views.compose_share_people(request, user) if action != "save" else []
    framed = compose_frame.is_framed(request)
    sending_url = compose_frame.framed_url(reverse("compose_sending", args=[row.pk]), framed)
    if action == "send":
        share_views.share_sent(user, outbox.check_send(user, row), colleagues)
        return redirect(sending_url)
    if action == "schedule":
        when = _aware(user, form.cleaned_data["send_at"]) or _quick(request, user)
        if when is None:
            raise PostaError("no_time", _("Choose when to send it."), field="send_at")
        share_views.share_sent(user, outbox.check_schedule(user, row, when), colleagues)
        if framed:  # the panel closes and its toast says so
            return redirect(sending_url)
        messages.success(request, _("The message is scheduled."))
        return redirect("compose_scheduled")
    messages.success(request, _("Draft saved."))
    return redirect(compose_frame.edit_url(row, framed))


def _row_urls(row: OutgoingMessage, framed: bool) -> dict[str, str]:
    """The URLs a stored draft's page posts to (the panel's frame keeps `?frame=1`)."""
    urls = {
        "edit": reverse("compose_edit", args=[row.pk]),
        "autosave": reverse("compose_autosave", args=[row.pk]),
        "attach": reverse("compose_attach", args=[row.pk]),
    }
    return {name: compose_frame.framed_url(url, framed) for name, url in urls.items()}


_START_URLS = {
    "edit": "compose_start", "autosave": "compose_start_autosave", "attach": "compose_start_attach",
}


def _render_editor(
    request: HttpRequest, user: User, form: ComposeForm, row: OutgoingMessage, *,
    error: PostaError | None, attachments: Sequence[object] | None = None,
    start: dict[str, str] | None = None,
) -> HttpResponse:
    """The editor page, of a stored draft or (with `start`) of one not stored yet."""
    framed = compose_frame.is_framed(request)
    if start:
        urls = {k: compose_frame.framed_url(reverse(n), framed) for k, n in _START_URLS.items()}
    else:
        urls = _row_urls(row, framed)
    context = {
        "framed": framed,
        "base_template": "web/compose/frame_base.html" if framed else "web/base.html",
        "schedule_open": _schedule_open(form, error),
        "form": form,
        "row": row,
        "error": error,
        "draft_error": outbox_sentences.draft_error_message(row),
        "urls": urls,
        "start": start or {},
        "attachments": list(row.attachments.all()) if attachments is None else attachments,
        "limit_mb": CompanySettings.load().max_attachment_mb,
        "signatures": outbox.signatures_by_account(user),
        "linked_records": crm_links.records_named(user, row.crm_links or []),
        "colleagues": share_views.colleague_choices(user),
        "quick_choices": [
            (label, when.isoformat()) for label, when in outbox.quick_schedule_choices(user)
        ],
    }
    return render(request, "web/compose/compose.html", context)


_SCHEDULE_ERRORS = frozenset({"no_time", "time_in_past", "naive_time"})


def _schedule_open(form: ComposeForm, error: PostaError | None) -> bool:
    """The scheduling fields start open (they hide behind "Schedule send…") when the
    form came back with a time in them or with a scheduling error."""
    if error is not None and error.code in _SCHEDULE_ERRORS:
        return True
    return form.is_bound and bool(form["send_at"].value() or form.errors.get("send_at"))


def _quick(request: HttpRequest, user: User) -> datetime | None:
    return _aware(user, params.iso_datetime(request.POST, "quick"))


@login_required
@require_POST
def autosave(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    user = current_user(request)
    row = outbox.access_outgoing(user, outgoing_id)
    form = ComposeForm(request.POST, user=user)
    if not form.is_valid():
        return JsonResponse({"saved": False, "errors": form.errors}, status=400)
    return _autosaved(request, user, row, form)


@login_required
@require_POST
def autosave_start(request: HttpRequest) -> HttpResponse:
    """The first autosave of a page whose draft is not stored yet: stores it. The
    answer carries the row's URLs, which the page posts to from then on."""
    user = current_user(request)
    form = ComposeForm(request.POST, user=user)
    if not form.is_valid():
        return JsonResponse({"saved": False, "errors": form.errors}, status=400)
    return _autosaved(request, user, _started(request, user), form)


def _autosaved(
    request: HttpRequest, user: User, row: OutgoingMessage, form: ComposeForm
) -> HttpResponse:
    outbox.check_save_draft(user, row, form.draft())
    crm_links.check_set_outgoing_links(user, row, form.cleaned_data["link_to"])
    saved = timezone.localtime(timezone.now(), outbox.user_timezone(user))
    urls = _row_urls(row, compose_frame.is_framed(request))
    return JsonResponse({"saved": True, "at": saved.strftime("%H:%M:%S"), "urls": urls})


@login_required
@require_POST
def attach(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    user = current_user(request)
    row = outbox.access_outgoing(user, outgoing_id)
    added = []
    for upload in uploads.uploaded_files(request, "files"):
        attachment = outbox.check_add_attachment(
            user, row, filename=upload.name or "attachment",
            content_type=upload.content_type or "", data=upload.read(),
        )
        added.append({"id": attachment.pk, "name": attachment.filename, "size": attachment.size})
    if compose_frame.wants_json(request):
        return JsonResponse({"added": added})
    return redirect(compose_frame.edit_url(row, compose_frame.is_framed(request)))


@login_required
@require_POST
def attach_start(request: HttpRequest) -> HttpResponse:
    """Files added on a page whose draft is not stored yet: stores it first. A
    script's upload learns the row's page from X-Posta-Draft-Url."""
    # Files cut off at the limit store no draft either.
    uploads.check_upload(request)
    row = _started(request, current_user(request))
    response = attach(request, outgoing_id=row.pk)
    response["X-Posta-Draft-Url"] = compose_frame.edit_url(row, compose_frame.is_framed(request))
    return response


@login_required
@require_POST
def detach(request: HttpRequest, outgoing_id: int, attachment_id: int) -> HttpResponse:
    user = current_user(request)
    row = outbox.access_outgoing(user, outgoing_id)
    outbox.do_remove_attachment(user, row, attachment_id)
    return redirect(compose_frame.edit_url(row, compose_frame.is_framed(request)))


@login_required
def sending_page(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    user = current_user(request)
    row = outbox.access_outgoing(user, outgoing_id)
    if compose_frame.wants_json(request):
        return compose_frame.status(row)
    if compose_frame.is_framed(request):
        return compose_frame.done_page(request, row)
    return render(
        request, "web/compose/sending.html",
        {
            "row": row,
            "remaining": compose_frame.remaining_seconds(row),
            "error": outbox_sentences.outgoing_error_message(row),
        },
    )


@login_required
@require_POST
def undo(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    user = current_user(request)
    row = outbox.access_outgoing(user, outgoing_id)
    undone = outbox.do_undo_send(user, row)
    if compose_frame.wants_json(request):
        return compose_frame.undo_answer(row, undone)
    if undone:
        messages.info(request, _("Sending undone: the message is back in the editor."))
        return redirect("compose_edit", outgoing_id=row.pk)
    messages.error(request, _("Too late: the message has already left."))
    return redirect("compose_sending", outgoing_id=row.pk)


_BACK_PAGES = frozenset({"compose_scheduled", "compose_outbox"})

_ACTIONS = {
    "send_now": (outbox.do_send_now, gettext_lazy("Sending now.")),
    "pause": (outbox.do_pause, gettext_lazy("Paused.")),
    "resume": (outbox.do_resume, gettext_lazy("Resumed.")),
    "cancel": (outbox.do_cancel, gettext_lazy("Cancelled.")),
    "mark_sent": (outbox.do_review_mark_sent, gettext_lazy("Marked as sent.")),
    "send_again": (outbox.do_review_send_again, gettext_lazy("Sending again.")),
}


@login_required
@require_POST
def act(request: HttpRequest, outgoing_id: int, action: str) -> HttpResponse:
    user = current_user(request)
    row = outbox.access_outgoing(user, outgoing_id)
    # `next` names the list the form was on; anything else stays on this site.
    back = safe_next(
        request, request.POST.get("next", ""), names=_BACK_PAGES, default="compose_scheduled"
    )
    if action == "edit":
        if outbox.do_edit(user, row):
            return redirect("compose_edit", outgoing_id=row.pk)
    elif action == "reschedule":
        when = _aware(user, params.local_datetime(request.POST, "send_at"))
        if when is None:
            raise PostaError("no_time", _("Choose a date and time."), field="send_at")
        if outbox.check_reschedule(user, row, when):
            messages.success(request, _("Rescheduled."))
            return redirect(back)
    elif action in _ACTIONS:
        service, done = _ACTIONS[action]
        if service(user, row):
            messages.success(request, str(done))
            return redirect(back)
    else:
        raise PostaError("unknown_action", _("Unknown action."), status=404)
    messages.error(request, _("This message has changed meanwhile; nothing was done."))
    return redirect(back)


@login_required
def scheduled(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    rows = [
        {
            "row": row,
            "error": outbox_sentences.outgoing_error_message(row),
            "waiting": outbox_sentences.waiting_reason(row),
            "settings": outbox_sentences.may_open_settings(user, row),
        }
        for row in outbox_queries.scheduled_messages(user)
    ]
    return render(request, "web/compose/scheduled.html", {"rows": rows})


@login_required
def outbox_list(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    rows = []
    for row in outbox_queries.outbox_messages(user):
        waiting = outbox_sentences.waiting_reason(row)
        rows.append(
            {
                "row": row,
                "error": outbox_sentences.outgoing_error_message(row),
                "waiting": waiting,
                "settings": outbox_sentences.may_open_settings(user, row)
                and (outbox_sentences.leads_to_settings(row) or bool(waiting)),
            }
        )
    return render(request, "web/compose/outbox.html", {"rows": rows})


@login_required
def addresses(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    query = params.text(request.GET, "q", max_length=MAX_ADDRESS_QUERY)
    return JsonResponse({"addresses": outbox_queries.correspondents(user, query)})
