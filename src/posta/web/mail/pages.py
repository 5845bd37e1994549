"""The mail screen and its partials: folder list, message list, reader, polling."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_GET

from posta.accounts.models import Account, Folder
from posta.mail import queries
from posta.mail.models import Thread
from posta.mail.queries import Scope
from posta.shares import folder as share_folder
from posta.users.models import User
from posta.web import params
from posta.web.crm_imported import imported_context
from posta.web.mail import notices, reader, shared
from posta.web.mail.reader import is_htmx
from posta.web.mail.rows import RowLinks, render_rows
from posta.web.utils import current_user

POLL_SECONDS = 5
# Parameter bounds: a scope key is "folder:<id>" or "role:<role>"; a cursor or a
# list marker is "<microseconds>.<id>"; a search runs on its first 200 characters
# (a longer paste is cut, a page of text is refused).
MAX_SCOPE_LENGTH = 40
MAX_CURSOR_LENGTH = 60
MAX_QUERY_LENGTH = 200
MAX_QUERY_INPUT = 1000
SPECIAL_NAMES = ("flagged", "scheduled", "shared", "imported")


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Where "Mail" leads: the unified inbox, or the main account's inbox."""
    user = current_user(request)
    if not Account.objects.filter(user=user).exists():
        return redirect("home")
    if user.merge_folders:
        return redirect("mail_role", role="inbox")
    inbox = (
        Folder.objects.filter(account__user=user, role=Folder.Role.INBOX)
        .order_by("-account__is_main", "account__created_at")
        .first()
    )
    if inbox is None:
        return redirect("mail_special", name="flagged")
    return redirect("mail_folder", folder_id=inbox.pk)


@login_required
@require_GET
def role_list(request: HttpRequest, role: str) -> HttpResponse:
    if role not in queries.UNIFIED_ROLES:
        raise Http404
    title = str(Folder.Role(role).label)
    return _screen(request, Scope("role", role=role), title)


@login_required
@require_GET
def folder_list(request: HttpRequest, folder_id: int) -> HttpResponse:
    user = current_user(request)
    folder = queries.access_folder(user, folder_id)
    label = str(Folder.Role(folder.role).label) if folder.role else folder.display_name
    if folder.name.upper() == "INBOX":
        label = str(Folder.Role.INBOX.label)
    return _screen(request, Scope("folder", folder_id=folder.pk), label, folder=folder)


@login_required
@require_GET
def special_list(request: HttpRequest, name: str) -> HttpResponse:
    if name not in SPECIAL_NAMES:
        raise Http404
    title = str(queries.SPECIAL_FOLDERS[name])
    if name == "flagged":
        return _screen(request, Scope("flagged"), title)
    return _screen(request, None, title, special=name)


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = params.text(request.GET, "q", max_length=MAX_QUERY_INPUT)[:MAX_QUERY_LENGTH]
    if not query:
        return redirect("mail_index")
    return _screen(request, Scope("search", query=query), _("Search: %s") % query)


def scope_url(scope: Scope | None, special: str = "") -> str:
    if scope is None:
        return reverse("mail_special", args=[special])
    if scope.kind == "role":
        return reverse("mail_role", args=[scope.role])
    if scope.kind == "folder":
        return reverse("mail_folder", args=[scope.folder_id])
    if scope.kind == "flagged":
        return reverse("mail_special", args=["flagged"])
    return reverse("mail_search") + "?" + _encode({"q": scope.query})


def _encode(params: dict[str, str]) -> str:
    return urlencode(params)


def parse_scope(user: User, data: QueryDict, name: str = "scope") -> Scope | None:
    """The scope named by Scope.key() in `data[name]`, checked against the user's
    folders; None for the lists that have no scope (special folders, search)."""
    key = params.text(data, name, max_length=MAX_SCOPE_LENGTH)
    if key.startswith("role:") and key[5:] in queries.UNIFIED_ROLES:
        return Scope("role", role=key[5:])
    if key.startswith("folder:"):
        folder_id = params.parse_id(key[7:], name=name)
        if Folder.objects.filter(pk=folder_id, account__user=user).exists():
            return Scope("folder", folder_id=folder_id)
        return None
    if key == "flagged":
        return Scope("flagged")
    return None


def _threads_on(request: HttpRequest, user: User, scope: Scope | None) -> bool:
    if scope is None or scope.kind == "search":
        return False
    view = params.choice(request.GET, "view", choices=("threads", "messages"))
    if view:
        return view == "threads"
    return user.thread_view


def _format_dates(rows: list[queries.Row]) -> None:
    """Today's mail shows its time, older mail its date, in the user's zone and
    locale (formatted once here: per-row template filters cost more than the query)."""
    today = timezone.localdate()
    for row in rows:
        local = timezone.localtime(row.location.date)
        if local.date() == today:
            row.when = formats.time_format(local, "TIME_FORMAT")
        else:
            row.when = formats.date_format(local, "SHORT_DATE_FORMAT")


def sidebar_of(user: User, *, involved: bool | None = None) -> queries.Sidebar:
    """The folder list, with the Shared folder's unread badge (`involved`: whether
    any share concerns the user, when the caller knows)."""
    folders = queries.sidebar(user)
    folders.shared_unread = share_folder.unread_count(user, involved=involved)
    return folders


def _several_accounts(user: User) -> bool:
    """Whether a merged list mixes accounts: only then does a row name its account
    (with one account the chip says nothing and costs the subject its room)."""
    return Account.objects.filter(user=user, is_shared_sender=False)[:2].count() > 1


def _list_context(
    request: HttpRequest, user: User, scope: Scope, *, cursor: str = ""
) -> dict[str, Any]:
    threads = _threads_on(request, user, scope)
    fetch = queries.thread_page if threads else queries.message_page
    page = fetch(user, scope, cursor=cursor)
    _format_dates(page.rows)
    base = scope_url(scope)
    sep = "&" if "?" in base else "?"
    view = "threads" if threads else "messages"
    links = RowLinks(
        open_base=base + sep,
        message_prefix=reverse("mail_message", args=[0])[:-2],
        thread_prefix=reverse("mail_thread", args=[0])[:-2],
        draft_prefix=reverse("compose_draft", args=[0])[:-2],
    )
    return {
        "page": page,
        "rows_html": render_rows(
            page.rows,
            links=links,
            threads=threads,
            unified=scope.unified and _several_accounts(user),
            show_preview=user.show_preview,
        ),
        "threads": threads,
        "show_preview": user.show_preview,
        "unified": scope.unified,
        "scope_key": scope.key(),
        "list_url": base,
        "more_url": f"{base}{sep}{_encode({'cursor': page.next_cursor, 'view': view})}"
        if page.next_cursor
        else "",
        "view_param": view,
        "refresh_url": f"{base}{sep}{_encode({'view': view})}",
        "other_view_url": f"{base}{sep}"
        + _encode({"view": "messages" if threads else "threads"}),

    }


def _screen(
    request: HttpRequest,
    scope: Scope | None,
    title: str,
    *,
    folder: Folder | None = None,
    special: str = "",
) -> HttpResponse:
    user = current_user(request)
    cursor = params.text(request.GET, "cursor", max_length=MAX_CURSOR_LENGTH)
    if scope is not None and is_htmx(request) and request.GET.get("part") != "screen":
        # Infinite scroll and live refresh ask for rows only.
        rows = _list_context(request, user, scope, cursor=cursor)
        template = "web/mail/_rows.html" if cursor else "web/mail/_list.html"
        return render(request, template, rows)
    context: dict[str, Any] = {
        "title": title,
        "sidebar": sidebar_of(user),
        "scope": scope,
        "scope_key": scope.key() if scope else f"special:{special}",
        "folder": folder,
        "special": special,
        "poll_seconds": POLL_SECONDS,
        "query": scope.query if scope and scope.kind == "search" else "",
        "shortcuts": SHORTCUTS,
        "notice": notices.take(request),
    }
    if scope is not None:
        context.update(_list_context(request, user, scope, cursor=cursor))
        context["marker"] = queries.newest_marker(user, scope)
    else:
        context["list_url"] = scope_url(None, special)
        context["empty_text"] = queries.special_folder_empty_text(special)
        if special == "scheduled":
            context["scheduled"] = queries.scheduled_messages(user)
        if special == "imported":
            context.update(imported_context(request, user))
        if special == "shared":
            context["shared_rows"] = share_folder.shared_rows(user)
    opened = params.optional_id(request.GET, "m")
    thread_id = params.optional_id(request.GET, "t")
    if opened is not None:
        context["reader"] = reader.message_context(
            request, user, opened, folder_id=folder.pk if folder else None
        )
    elif thread_id is not None:
        context["reader_thread"] = reader.thread_context(request, user, thread_id)
    elif special == "shared" and (share_id := params.optional_id(request.GET, "share")):
        context["reader_share"] = shared.conversation_context(request, user, share_id)
    return render(request, "web/mail/screen.html", context)


@login_required
@require_GET
def message(request: HttpRequest, message_id: int) -> HttpResponse:
    """The reader: a partial for htmx, else the whole screen with the message open
    in the folder it is in."""
    user = current_user(request)
    folder_id = params.optional_id(request.GET, "folder")
    if is_htmx(request):
        context = reader.message_context(request, user, message_id, folder_id=folder_id)
        return render(request, "web/mail/_reader.html", context)
    detail = queries.message_detail(user, message_id)
    primary = detail.primary
    target = (
        reverse("mail_folder", args=[primary.folder_id])
        if primary
        else reverse("mail_special", args=["imported"])
    )
    return redirect(f"{target}?m={message_id}")


@login_required
@require_GET
def thread(request: HttpRequest, thread_id: int) -> HttpResponse:
    user = current_user(request)
    if is_htmx(request):
        context = reader.thread_context(request, user, thread_id)
        return render(request, "web/mail/_thread.html", context)
    if not Thread.objects.filter(pk=thread_id, user=user).exists():
        raise Http404
    return redirect(f"{reverse('mail_role', args=['inbox'])}?t={thread_id}")


@login_required
@require_GET
def poll(request: HttpRequest) -> HttpResponse:
    """The live-update endpoint, asked every few seconds: the folder list (swapped
    out of band, with the unread count for the tab title) and, when the open list's
    first page changed, an `mail-changed` event that makes the page reload it."""
    user = current_user(request)
    key = params.text(request.GET, "scope", max_length=MAX_SCOPE_LENGTH)
    scope = parse_scope(user, request.GET)
    marker = queries.newest_marker(user, scope) if scope else ""
    involved = share_folder.takes_part(user)
    response = render(
        request,
        "web/mail/_poll.html",
        {
            "sidebar": sidebar_of(user, involved=involved),
            "scope_key": key,
            "marker": marker,
            "poll_seconds": POLL_SECONDS,
            "oob": True,
            "share_notices": share_folder.take_notices(user, involved=involved),
        },
    )
    if scope is not None and marker != params.text(
        request.GET, "marker", max_length=MAX_CURSOR_LENGTH
    ):
        response["HX-Trigger"] = json.dumps({"mail-changed": {"scope": key}})
    return response


@login_required
@require_GET
def sidebar(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    return render(
        request,
        "web/mail/_sidebar.html",
        {
            "sidebar": sidebar_of(user),
            "scope_key": params.text(request.GET, "scope", max_length=MAX_SCOPE_LENGTH),
        },
    )


SHORTCUTS: list[tuple[str, Promise]] = [
    ("j / k", gettext_lazy("Next / previous message")),
    ("Enter", gettext_lazy("Open")),
    ("r", gettext_lazy("Reply")),
    ("a", gettext_lazy("Reply all")),
    ("f", gettext_lazy("Forward")),
    ("s", gettext_lazy("Flag")),
    ("#", gettext_lazy("Delete")),
    ("e", pgettext_lazy("verb", "Archive")),
    ("u", gettext_lazy("Mark as unread")),
    ("z", gettext_lazy("Undo the last move")),
    ("/", gettext_lazy("Search")),
    ("?", gettext_lazy("Show these shortcuts")),
]
