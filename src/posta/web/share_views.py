"""Shared conversations under /shares/ (issue 16): share from the reader, the
owner's page of people, the colleague's read-only view of the shared mail, the
comment thread, and replies from the colleague's own account.

Thin views: parse, check access (posta.shares.services.access_share: 404 for
anyone the share is not for), call one service, render. A colleague reads the
owner's mail only through these URLs, and only the messages the share shows;
every /mail/ URL stays the owner's alone.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from posta.core.errors import PostaError
from posta.mail import queries, sanitize
from posta.mail.models import Message, OutgoingMessage
from posta.shares import comments, conversation, notices, services
from posta.shares import records as share_records
from posta.shares import replies as share_replies
from posta.shares.models import Access, Share, ShareRecipient, ShareSettings
from posta.shares.services import Grant
from posta.users.models import User
from posta.web import params
from posta.web import share_records as record_question
from posta.web.mail import content, reader, shared
from posta.web.mail.reader import is_htmx
from posta.web.utils import current_user

MAX_PEOPLE_INPUT = 10_000
MAX_COMMENT_INPUT = 20_000
MANAGE_ACTIONS = ("add", "access", "revoke", "everyone_off", "follow", "unfollow", "stop")


# --- sharing (the owner) ------------------------------------------------------------


def _share_input(request: HttpRequest, owner: User) -> tuple[list[User], str, bool]:
    people = services.check_colleagues(
        owner, params.text(request.POST, "people", max_length=MAX_PEOPLE_INPUT)
    )
    access = services.check_access_value(
        params.choice(request.POST, "access", choices=Access.values, default=Access.READ)
    )
    everyone = params.flag(request.POST, "everyone")
    if not people and not everyone:
        raise PostaError("no_people", _("Choose the colleagues to share with, or everyone."),
                         field="people")
    return people, access, everyone


@login_required
def share_new(request: HttpRequest, message_id: int) -> HttpResponse:
    """"Share" in the reader: the form, or the conversation's share if it has one."""
    user = current_user(request)
    message = queries.access_message(user, message_id)
    existing = services.share_of_message(user, message)
    if request.method == "GET" and existing is not None:
        return redirect("share_people", share_id=existing.pk)
    error: PostaError | None = None
    if request.method == "POST":
        try:
            people, access, everyone = _share_input(request, user)
            answer = record_question.decision(request)
            hidden = record_question.hidden_for(
                user, [m.identity for m in services.conversation_of(message)], people,
                everyone=everyone,
            )
            if hidden and not answer:
                return record_question.ask(
                    request, hidden, subject=message.subject,
                    back=reverse("mail_message", args=[message.pk]),
                )
            share = services.do_share(
                user, message, people=people, access=access, everyone=everyone,
                follow_later=params.flag(request.POST, "follow"),
            )
            if hidden and answer == share_records.GRANT:
                share_records.do_grant_records(share, hidden)
            first = params.text(request.POST, "comment", max_length=MAX_COMMENT_INPUT)
            if first:
                comments.check_comment(services.access_share(user, share.pk), first)
            notices.notify_shared(share, people, everyone=everyone)
        except PostaError as exc:
            if exc.status == 404:
                raise
            error = exc
        else:
            messages.success(request, _("Conversation shared."))
            return redirect("share_people", share_id=share.pk)
    elif request.method != "GET":
        return HttpResponse(status=405)
    return render(
        request, "web/shares/share.html",
        {"message": message, "error": error, "colleagues": services.colleagues(user)[:500],
         "form": request.POST if request.method == "POST" else None},
        status=400 if error else 200,
    )


@login_required
@require_GET
def share_people(request: HttpRequest, share_id: int) -> HttpResponse:
    """The owner's page of a share: who has it, their access, who saw it and when."""
    user = current_user(request)
    share = services.access_owned_share(user, share_id)
    recipients = list(
        ShareRecipient.objects.filter(share=share).select_related("user").order_by("added_at")
    )
    return render(
        request, "web/shares/people.html",
        {"share": share, "recipients": recipients, "access_choices": Access.choices,
         "colleagues": services.colleagues(user)[:500]},
    )


@login_required
@require_POST
def share_manage(request: HttpRequest, share_id: int) -> HttpResponse:
    """Add people, change access, revoke, stop following, stop sharing."""
    user = current_user(request)
    share = services.access_owned_share(user, share_id)
    action = params.choice(request.POST, "action", choices=MANAGE_ACTIONS)
    recipient = params.optional_id(request.POST, "recipient")
    access = params.choice(request.POST, "access", choices=Access.values, default=Access.READ)
    if action == "add":
        people, access, everyone = _share_input(request, user)
        answer = record_question.decision(request)
        hidden = record_question.hidden_for(
            user, sorted(conversation.shown_identities(share)), people, everyone=everyone
        )
        if hidden and not answer:
            return record_question.ask(
                request, hidden, subject=share.subject,
                back=reverse("share_people", args=[share.pk]),
            )
        services.do_add_people(share, people, access=access)
        if everyone:
            Share.objects.filter(pk=share.pk).update(everyone=True, everyone_access=access)
        if hidden and answer == share_records.GRANT:
            share_records.do_grant_records(share, hidden)
        services.do_touch(share, user, kind="share")
        notices.notify_shared(share, people, everyone=everyone)
    elif action in ("access", "revoke"):
        if recipient is None:
            raise params.bad_parameter("recipient", _("Choose a colleague."))
        if action == "access":
            services.do_set_access(share, recipient, access)
        else:
            services.do_revoke(share, recipient)
    elif action == "everyone_off":
        services.do_revoke_everyone(share)
    elif action in ("follow", "unfollow"):
        services.do_set_follow(share, follow=action == "follow")
    elif action == "stop":
        services.do_stop_sharing(share)
        messages.success(request, _("The conversation is no longer shared."))
        return redirect("mail_special", name="shared")
    else:
        raise params.bad_parameter("action", _("Unknown action."))
    return redirect("share_people", share_id=share.pk)


# --- compose: "share this conversation with…" ----------------------------------------


def colleague_choices(user: User) -> list[User]:
    """The colleagues the editor's share field suggests."""
    return list(services.colleagues(user)[:500])


def compose_share_people(request: HttpRequest, user: User) -> list[User]:
    """The colleagues named in the editor's share field (checked before sending)."""
    return services.check_colleagues(
        user, params.text(request.POST, "share_with", max_length=MAX_PEOPLE_INPUT)
    )


def share_sent(user: User, outgoing: OutgoingMessage, people: list[User]) -> None:
    """Loop colleagues in on mail being sent, without a Cc: read access."""
    if people:
        share = services.do_share_outgoing(user, outgoing, people=people, access=Access.READ)
        notices.notify_shared(share, people, everyone=False)


# --- the shared conversation -----------------------------------------------------------


@login_required
@require_GET
def share_open(request: HttpRequest, share_id: int) -> HttpResponse:
    user = current_user(request)
    if is_htmx(request):
        context = shared.conversation_context(request, user, share_id)
        return render(request, "web/shares/_conversation.html", context)
    services.access_share(user, share_id)
    return redirect(f"{reverse('mail_special', args=['shared'])}?share={share_id}")


def _shared_message(user: User, share_id: int, message_id: int) -> tuple[Grant, Message]:
    grant = services.access_share(user, share_id)
    message = conversation.access_shared_message(grant.share, message_id)
    if message is None:
        raise Http404
    return grant, message


@login_required
@require_GET
def share_body(request: HttpRequest, share_id: int, message_id: int) -> HttpResponse:
    """A shared message's sanitized body for its sandboxed frame (remote images
    stay blocked in a shared view: a colleague's opening must not reach a sender)."""
    user = current_user(request)
    grant, message = _shared_message(user, share_id, message_id)
    raw = reader.raw_bytes(message)
    readable = sanitize.read_message(raw)
    document, _blocked = reader.safe_body(
        request, grant.share.owner, message, raw, readable, allow_remote=False
    )
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = content.frame_csp(request)
    return _private(response)


def _private(response: HttpResponse) -> HttpResponse:
    response.setdefault("Content-Security-Policy", "default-src 'none'; sandbox")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response


@login_required
@require_GET
def share_part(request: HttpRequest, share_id: int, message_id: int, part_id: str) -> HttpResponse:
    """An attachment of a shared message, always as a download."""
    user = current_user(request)
    _grant, message = _shared_message(user, share_id, message_id)
    raw = reader.raw_bytes(message)
    found = sanitize.get_part(raw, params.check_part_path(part_id, name="part"))
    if found is None:
        raise Http404
    return content.download(*found)


@login_required
@require_POST
def share_reply(request: HttpRequest, share_id: int, message_id: int) -> HttpResponse:
    """Reply, Reply all or Forward from the colleague's own account: the draft is
    stored and opens in the editor."""
    user = current_user(request)
    grant, message = _shared_message(user, share_id, message_id)
    if message.user_id != grant.share.owner_id and message.user_id != user.pk:
        raise Http404
    kind = params.choice(request.POST, "kind", choices=share_replies.KINDS, default="reply")
    outgoing = share_replies.check_start_reply(grant, message, kind=kind)
    return redirect("compose_edit", outgoing_id=outgoing.pk)


# --- comments ------------------------------------------------------------------------


def _back(request: HttpRequest, user: User, share_id: int, extra: dict[str, Any] | None = None
          ) -> HttpResponse:
    if is_htmx(request):
        context = shared.conversation_context(request, user, share_id)
        context.update(extra or {})
        return render(request, "web/shares/_conversation.html", context)
    return redirect("share_open", share_id=share_id)


@login_required
@require_POST
def comment_post(request: HttpRequest, share_id: int) -> HttpResponse:
    user = current_user(request)
    grant = services.access_share(user, share_id)
    posted = comments.check_comment(
        grant, params.text(request.POST, "body", max_length=MAX_COMMENT_INPUT),
        parent_id=params.optional_id(request.POST, "parent"),
    )
    notices.notify_comment(posted.comment)
    return _back(request, user, share_id, {"outside": posted.outside})


@login_required
@require_POST
def comment_edit(request: HttpRequest, share_id: int, comment_id: int) -> HttpResponse:
    user = current_user(request)
    grant = services.access_share(user, share_id)
    comments.check_edit(
        grant, comment_id, params.text(request.POST, "body", max_length=MAX_COMMENT_INPUT)
    )
    return _back(request, user, share_id)


@login_required
@require_POST
def comment_delete(request: HttpRequest, share_id: int, comment_id: int) -> HttpResponse:
    user = current_user(request)
    grant = services.access_share(user, share_id)
    comments.check_delete(grant, comment_id)
    return _back(request, user, share_id)


# --- settings ------------------------------------------------------------------------


@login_required
def share_settings(request: HttpRequest) -> HttpResponse:
    """The user's choice of an email notice for shares and comments (default off)."""
    user = current_user(request)
    row, _created = ShareSettings.objects.get_or_create(user=user)
    if request.method == "POST":
        row.email_notice = params.flag(request.POST, "email_notice")
        row.save(update_fields=["email_notice"])
        messages.success(request, _("Notices saved."))
        return redirect("share_settings")
    return render(request, "web/shares/settings.html", {"row": row, "tab": "shares"})
