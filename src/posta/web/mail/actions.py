"""POSTs that change mail. Each parses the selection, checks it belongs to the user,
and calls posta.mail.services, which writes the local change plus the intents the
worker carries out (DESIGN §2). The page then reloads its list and folder list
(the `mail-changed` event); pending and failed actions show on the rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from posta.accounts.models import Account, Folder
from posta.core.errors import PostaError
from posta.mail import queries, services, undo
from posta.mail.models import Location, Message
from posta.users.models import User
from posta.web import params
from posta.web.mail import notices, pages, reader, toasts
from posta.web.mail.reader import is_htmx
from posta.web.utils import current_user, safe_next

MAX_SELECTION = 10_000
ACTIONS = ("seen", "unseen", "flag", "unflag", "move", "delete", "spam", "notspam", "archive")


def selected_message_ids(request: HttpRequest, user: User) -> list[int]:
    """The messages a POST names: `ids` (messages), `threads` (whole conversations),
    or `all=1` with `scope` (everything in the list). Only the user's."""
    ids = set(params.id_list(request.POST.getlist("ids"), name="ids", max_count=MAX_SELECTION))
    thread_ids = params.id_list(
        request.POST.getlist("threads"), name="threads", max_count=MAX_SELECTION
    )
    if thread_ids:
        ids |= set(
            Message.objects.filter(user=user, thread_id__in=thread_ids).values_list(
                "id", flat=True
            )[:MAX_SELECTION]
        )
    if params.flag(request.POST, "all"):
        scope = pages.parse_scope(user, request.POST)
        if scope is not None:
            base = queries._base(user, scope)  # noqa: SLF001 - the list's own filter
            ids |= set(base.values_list("message_id", flat=True)[:MAX_SELECTION])
    if not ids:
        return []
    return list(Message.objects.filter(user=user, pk__in=ids).values_list("id", flat=True))


def source_folders(request: HttpRequest, user: User) -> list[int] | None:
    """The folders whose copies a move or delete acts on: the copy open in the
    reader (`folder`), else the list's scope (one folder, or the folders of a
    unified role). None (every copy) for Flagged and search, which list copies
    from any folder."""
    folder = params.optional_id(request.POST, "folder")
    if folder is not None:
        if not Folder.objects.filter(pk=folder, account__user=user).exists():
            raise Http404
        return [folder]
    scope = pages.parse_scope(user, request.POST)
    if scope is None:
        return None
    if scope.kind == "folder":
        return [scope.folder_id]
    if scope.kind == "role":
        return list(
            Folder.objects.filter(account__user=user, role=scope.role).values_list(
                "id", flat=True
            )
        )
    return None


def _move_by_role(
    user: User,
    message_ids: list[int],
    role: str,
    *,
    from_folders: list[int] | None,
    held: Held,
) -> int:
    """Move each copy to its own account's folder of `role` (Spam, Archive, Inbox)."""
    accounts = set(
        Location.objects.filter(user=user, message_id__in=message_ids).values_list(
            "folder__account_id", flat=True
        )
    )
    targets = Folder.objects.filter(account_id__in=accounts, account__user=user, role=role)
    if not targets:
        raise PostaError(
            "no_folder_for_role",
            _("None of these accounts has a %(role)s folder. Map one on the Folders tab.")
            % {"role": Folder.Role(role).label},
        )
    return sum(
        services.do_move(
            user, message_ids, target, from_folders=from_folders,
            hold=held.until, moved=held.moved,
        )
        for target in targets
    )


_ROLE_OF = {
    "spam": Folder.Role.SPAM,
    "notspam": Folder.Role.INBOX,
    "archive": Folder.Role.ARCHIVE,
}


@dataclass
class Held:
    """An undoable move: its intents wait until `until`; `moved` collects what
    posta.mail.undo needs to put the copies back."""

    until: datetime | None = None
    moved: list[tuple[int, int]] = field(default_factory=list)


def _apply(
    request: HttpRequest, user: User, action: str, message_ids: list[int], held: Held
) -> int:
    """Read and flag marks apply to every copy; moves and deletes to the copies in
    the folders the user is looking at (`source_folders`)."""
    if action in ("seen", "unseen"):
        return services.do_set_seen(user, message_ids, action == "seen")
    if action in ("flag", "unflag"):
        return services.do_set_flagged(user, message_ids, action == "flag")
    from_folders = source_folders(request, user)
    if action == "delete":
        return services.do_delete(
            user, message_ids, from_folders=from_folders, hold=held.until, moved=held.moved
        )
    if action in _ROLE_OF:
        return _move_by_role(
            user, message_ids, _ROLE_OF[action], from_folders=from_folders, held=held
        )
    target_id = params.parse_id(request.POST.get("target", ""), name="target")
    target = queries.access_folder(user, target_id)
    return services.do_move(
        user, message_ids, target, from_folders=from_folders, hold=held.until, moved=held.moved
    )


def _done(request: HttpRequest, event: dict[str, object]) -> HttpResponse:
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Trigger"] = json.dumps({"mail-changed": event})
        return response
    return redirect(safe_next(request, request.POST.get("next", ""), names=frozenset(),
                              default="mail_index"))


@login_required
@require_POST
def act(request: HttpRequest) -> HttpResponse:
    """Mark read/unread, flag, move, delete, spam, not spam, archive a selection."""
    user = current_user(request)
    action = params.choice(request.POST, "action", choices=ACTIONS)
    if not action:
        raise PostaError("unknown_action", _("Unknown action."))
    message_ids = selected_message_ids(request, user)
    # The page with its Undo toast asks for `undo`: the move then waits out the
    # undo window before a worker may carry it out.
    undoable = action in toasts.MOVING and params.flag(request.POST, "undo")
    held = Held(until=undo.hold_until(user) if undoable else None)
    changed = _apply(request, user, action, message_ids, held) if message_ids else 0
    event: dict[str, object] = {"action": action, "ids": message_ids[:200], "changed": changed}
    if action in toasts.MOVING and changed:
        folder = _target_name(request, user)
        event["toast"] = toasts.moved_text(action, len(message_ids), folder=folder)
        event["undo"] = undo.ticket_for(user, held.moved) if undoable else ""
        event["seconds"] = undo.window_seconds(user)
        if not is_htmx(request):
            # A plain form POST (no script): the list it returns to says what
            # happened, with the Undo the toast would have had.
            notices.remember(
                request, str(event["toast"]), ticket=str(event["undo"]),
                seconds=int(str(event["seconds"])),
            )
    return _done(request, event)


def _target_name(request: HttpRequest, user: User) -> str:
    """The folder a plain move went to, for its words (_apply checked it)."""
    if request.POST.get("action") != "move":
        return ""
    target_id = params.parse_id(request.POST.get("target", ""), name="target")
    target = Folder.objects.filter(pk=target_id, account__user=user).first()
    return target.display_name if target else ""


@login_required
@require_POST
def undo_move(request: HttpRequest) -> HttpResponse:
    """The toast's Undo: the copies go back where they were (posta.mail.undo)."""
    user = current_user(request)
    moved = undo.read_ticket(user, request.POST.get("ticket", ""))
    if not moved:
        raise PostaError("undo_expired", _("This can no longer be undone."), status=400)
    back = undo.do_undo_moves(user, moved)
    event: dict[str, object] = {
        "action": "undo", "ids": [], "changed": back,
        "toast": toasts.undone_text(back),
    }
    if not is_htmx(request):
        notices.remember(request, toasts.undone_text(back))
    return _done(request, event)


@login_required
@require_POST
def empty_folder(request: HttpRequest, folder_id: int) -> HttpResponse:
    """Empty Trash or Spam for good (the page asked for confirmation first)."""
    user = current_user(request)
    folder = queries.access_folder(user, folder_id)
    if folder.role not in (Folder.Role.TRASH, Folder.Role.SPAM):
        raise PostaError("not_emptiable", _("Only Trash and Spam can be emptied."))
    services.do_expunge_folder(user, folder)
    return _done(request, {"action": "empty", "folder": folder_id})


@login_required
@require_POST
def sync_now(request: HttpRequest, account_id: int) -> HttpResponse:
    user = current_user(request)
    services.do_request_sync(user, account_id)
    if is_htmx(request):
        return render(
            request,
            "web/mail/_sync_state.html",
            {"account": Account.objects.get(pk=account_id), "requested": True},
        )
    return redirect("mail_index")


@login_required
@require_POST
def allow_images(request: HttpRequest, message_id: int) -> HttpResponse:
    """"Always show remote content from this sender"."""
    user = current_user(request)
    message = queries.access_message(user, message_id)
    services.do_allow_remote_content(user, message.from_email)
    context = reader.message_context(
        request, user, message_id, folder_id=params.optional_id(request.POST, "folder")
    )
    return render(request, "web/mail/_reader.html", context)
