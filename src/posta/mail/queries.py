"""Read queries for the mail screen: folder list, message lists, one message.

Every function takes the user and scopes each query to them; a row of another user
is never returned (the views turn "not found" into 404).

Speed (issue 4: first page of a unified folder over 1,000,000 messages in under
50 ms). Lists read `Location` alone for the filter and the sort, through the
indexes named in posta.mail.models, with keyset pagination on (date, id): a page is
an index walk that stops after `limit + 1` rows, whatever the page's depth. Nothing
counts a whole folder on a page view; unread counts are the folders' own counters.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from posta.accounts.models import Account, Folder
from posta.core.errors import not_found
from posta.mail import keepers
from posta.mail.models import (
    Location,
    Message,
    OutgoingMessage,
    RemoteAction,
    RemoteContentSender,
    Thread,
)
from posta.users.models import User

PAGE_SIZE = 50
# Unified folders, in the order the folder list shows them (issue 4).
UNIFIED_ROLES: tuple[str, ...] = ("inbox", "sent", "drafts", "spam", "trash")
SPECIAL_FOLDERS: dict[str, object] = {
    "flagged": _("Flagged"),
    "scheduled": pgettext_lazy("folder", "Scheduled"),
    "shared": _("Shared"),
    "imported": _("Imported"),
}
OPEN_STATES = (RemoteAction.State.PENDING, RemoteAction.State.RUNNING)
# Read marks on their way to the server are not worth a "saving…" note on every
# message opened; their failures still show.
QUIET_KINDS = (RemoteAction.Kind.SEEN, RemoteAction.Kind.UNSEEN)


# --- the folder list --------------------------------------------------------------


@dataclass
class FolderNode:
    folder: Folder
    depth: int
    label: str
    unread: int

    @property
    def key(self) -> str:
        return f"folder:{self.folder.pk}"


@dataclass
class AccountTree:
    account: Account
    folders: list[FolderNode]


@dataclass
class UnifiedEntry:
    role: str
    label: str
    unread: int

    @property
    def key(self) -> str:
        return f"role:{self.role}"


@dataclass
class Sidebar:
    unified: list[UnifiedEntry]
    accounts: list[AccountTree]
    inbox_unread: int
    failed_actions: int
    shared_unread: int = 0  # filled by the web layer (posta.shares sits above mail)


def sidebar(user: User) -> Sidebar:
    """The folder list: unified roles (when the user merges folders), then each
    account's tree in hierarchy order, with unread counts (Folder.unread_count, kept
    by the sync engine and by posta.mail.services). Three queries."""
    accounts = list(Account.objects.filter(user=user, is_shared_sender=False).order_by(
        "-is_main", "created_at", "id"
    ))
    folders = list(
        Folder.objects.filter(account__user=user, account__is_shared_sender=False).order_by(
            "account_id", "name"
        )
    )
    by_account: dict[int, list[FolderNode]] = defaultdict(list)
    role_unread: dict[str, int] = defaultdict(int)
    for folder in _tree_order(folders):
        count = folder.unread_count
        label = str(Folder.Role(folder.role).label) if folder.role else folder.leaf_name
        if folder.name.upper() == "INBOX":
            label = str(Folder.Role.INBOX.label)
        by_account[folder.account_id].append(FolderNode(folder, folder.depth, label, count))
        if folder.role:
            role_unread[folder.role] += count
    unified = [
        UnifiedEntry(role, str(Folder.Role(role).label), role_unread.get(role, 0))
        for role in UNIFIED_ROLES
    ]
    failed = RemoteAction.objects.filter(user=user, state=RemoteAction.State.FAILED).count()
    return Sidebar(
        unified=unified if user.merge_folders else [],
        accounts=[AccountTree(a, by_account.get(a.pk, [])) for a in accounts],
        inbox_unread=role_unread.get("inbox", 0),
        failed_actions=failed,
    )


_ROLE_ORDER = {role: i for i, role in enumerate(("inbox", *UNIFIED_ROLES[1:], "archive"))}


def _tree_order(folders: list[Folder]) -> list[Folder]:
    """Role folders first (Inbox, Sent, ...), then the rest as a tree: each folder
    right after its parent, siblings by name. A child sorts with its top-level
    ancestor (`Clienti/Ferrari Impianti` right under `Clienti`), whatever its leaf
    name (RFC 3501 §5.1.1: the hierarchy is in the name, split by the delimiter)."""

    def parts(folder: Folder) -> list[str]:
        if not folder.delimiter:
            return [folder.display_name]
        return folder.display_name.split(folder.delimiter)

    def root_rank(folder: Folder) -> int:
        if folder.name.upper() == "INBOX":
            return -1
        return _ROLE_ORDER.get(folder.role, len(_ROLE_ORDER))

    roots = {(f.account_id, f.display_name): root_rank(f) for f in folders if f.depth == 0}

    def key(folder: Folder) -> tuple[int, int, list[str]]:
        path = parts(folder)
        top = path[0]
        if top.upper() == "INBOX":
            rank = -1
        else:
            rank = roots.get((folder.account_id, top), len(_ROLE_ORDER))
        return (folder.account_id, rank, [p.lower() for p in path])

    return sorted(folders, key=key)


def folders_of(user: User) -> QuerySet[Folder]:
    return Folder.objects.filter(account__user=user).select_related("account")


def access_folder(user: User, folder_id: int) -> Folder:
    """The user's folder; PostaError 404 for anyone else's."""
    folder = folders_of(user).filter(pk=folder_id).first()
    if folder is None:
        raise not_found(_("This folder does not exist, or it is not yours."))
    return folder


# --- message lists ----------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which list: a unified role, one folder, Flagged, or a search."""

    kind: str  # "role" | "folder" | "flagged" | "search"
    role: str = ""
    folder_id: int = 0
    query: str = ""

    @property
    def unified(self) -> bool:
        return self.kind in {"role", "flagged", "search"}

    def key(self) -> str:
        return {
            "role": f"role:{self.role}",
            "folder": f"folder:{self.folder_id}",
            "flagged": "flagged",
            "search": "search",
        }[self.kind]


@dataclass
class Row:
    """One line of the message list: a copy, or a conversation in thread view."""

    location: Location  # unsaved, for a kept message of Imported (no copy)
    message: Message
    account: Account | None  # None: the Imported folder's, in no mailbox
    thread_count: int = 1
    participants: list[str] = field(default_factory=list)
    action_state: str = ""  # "pending" or "failed" when the user's change is open
    when: str = ""  # the date as the list shows it (filled by the web layer)

    @property
    def account_hue(self) -> int:
        """A colour for the account badge of unified lists, stable per account."""
        return (self.account.pk * 67) % 360 if self.account else 0

    @property
    def is_outgoing(self) -> bool:
        """Sent and draft copies show their recipients rather than the sender."""
        return self.location.role in ("sent", "drafts")

    @property
    def recipients(self) -> str:
        return ", ".join(str(p[0] or p[1]) for p in self.message.to[:3] if len(p) == 2)


@dataclass
class Page:
    rows: list[Row]
    next_cursor: str  # "" on the last page


def encode_cursor(date: datetime, pk: int) -> str:
    micros = int(date.timestamp() * 1_000_000)
    return f"{micros}.{pk}"


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        micros, pk = cursor.split(".", 1)
        stamp = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
        return stamp, int(pk)
    except (ValueError, OverflowError, OSError):
        return None


def _base(user: User, scope: Scope) -> QuerySet[Location]:
    if scope.kind == "role":
        rows = Location.objects.filter(user=user, role=scope.role)
    elif scope.kind == "folder":
        rows = Location.objects.filter(folder_id=scope.folder_id, user=user)
    elif scope.kind == "flagged":
        rows = Location.objects.filter(user=user, flagged=True)
    else:
        raise ValueError(scope.kind)
    return rows.filter(deleted=False)


# What a list row shows: reading fewer columns builds the page's models faster.
_ROW_FIELDS = (
    "id", "message_id", "folder_id", "uid", "seen", "flagged", "answered", "deleted",
    "user_id", "role", "date",
    "message__id", "message__thread_id", "message__subject", "message__from_name",
    "message__from_email", "message__to", "message__date", "message__snippet",
    "message__has_attachments",
    "folder__id", "folder__account_id",
    "folder__account__id", "folder__account__description", "folder__account__email",
)  # fmt: skip


def _rows(rows: QuerySet[Location]) -> QuerySet[Location]:
    return rows.select_related("message", "folder__account").only(*_ROW_FIELDS)


def _after(rows: QuerySet[Location], cursor: str) -> QuerySet[Location]:
    decoded = decode_cursor(cursor) if cursor else None
    if decoded is None:
        return rows
    date, pk = decoded
    # (date, id) < (cursor): the `date <= cursor` term is an index range the walk
    # starts from; written only as an OR, PostgreSQL filters from the top instead.
    return rows.filter(date__lte=date).filter(Q(date__lt=date) | Q(id__lt=pk))


def message_page(user: User, scope: Scope, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
    """One page of copies, newest first. In unified lists a message held by several
    folders of the scope (Gmail labels, Flagged) is listed once across the pages:
    a copy is left out when the message has a copy listed earlier on this page or
    above the cursor (its copies may fall on either side of a page boundary), and
    the page is filled up from further copies."""
    if scope.kind == "search":
        return search_page(user, scope.query, cursor=cursor, limit=limit)
    base = _base(user, scope)
    seen: set[int] = set()
    out: list[Row] = []
    position = cursor
    next_cursor = ""
    for _round in range(10):
        want = limit - len(out)
        rows = list(_rows(_after(base, position)).order_by("-date", "-id")[: want + 1])
        shown = _shown_above(base, cursor, rows) if scope.unified and cursor else set()
        for loc in rows[:want]:
            position = encode_cursor(loc.date, loc.pk)
            if scope.unified and (loc.message_id in seen or loc.message_id in shown):
                continue
            seen.add(loc.message_id)
            out.append(Row(loc, loc.message, loc.folder.account))
        next_cursor = position if len(rows) > want else ""
        if not next_cursor or len(out) == limit:
            break
    _attach_action_states(user, out)
    return Page(out, next_cursor)


def _shown_above(base: QuerySet[Location], cursor: str, rows: list[Location]) -> set[int]:
    """The messages among `rows` with a copy in the scope at or above the cursor,
    i.e. listed on an earlier page."""
    decoded = decode_cursor(cursor)
    if decoded is None or not rows:
        return set()
    date, pk = decoded
    return set(
        base.filter(Q(date__gt=date) | Q(date=date, id__gte=pk))
        .filter(message_id__in={loc.message_id for loc in rows})
        .values_list("message_id", flat=True)
    )


def thread_page(user: User, scope: Scope, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
    """One page of conversations, newest activity first: the copies of the scope are
    walked newest first and each conversation is listed at its newest copy."""
    if scope.kind == "search":
        return search_page(user, scope.query, cursor=cursor, limit=limit)
    base = _base(user, scope)
    picked: dict[int, int] = {}  # conversation key -> location id, newest first
    position = cursor
    exhausted = False
    batch = limit * 3
    for _round in range(10):
        # A light walk (ids only); full rows are read for the picked copies alone.
        raw: list[tuple[int, datetime, int, int | None]] = list(
            _after(base, position)
            .order_by("-date", "-id")
            .values_list("id", "date", "message_id", "message__thread_id")[:batch]
        )
        chunk = _drop_shown_threads(base, cursor, raw) if cursor and raw else raw
        for loc_id, date, message_id, thread_id in chunk:
            key = thread_id or -message_id
            if key not in picked:
                picked[key] = loc_id
                if len(picked) == limit:
                    position = encode_cursor(date, loc_id)
                    break
        if len(picked) == limit:
            break
        if len(raw) < batch:
            exhausted = True
            break
        position = encode_cursor(raw[-1][1], raw[-1][0])
    by_id = _rows(Location.objects.filter(pk__in=list(picked.values()))).in_bulk()
    locations = [by_id[pk] for pk in picked.values() if pk in by_id]
    thread_ids = [loc.message.thread_id for loc in locations if loc.message.thread_id]
    threads = Thread.objects.in_bulk(thread_ids)
    people: dict[int, list[str]] = defaultdict(list)
    for thread_id, name, address in (
        Message.objects.filter(user=user, thread_id__in=thread_ids)
        .order_by("date")
        .values_list("thread_id", "from_name", "from_email")[:2000]
    ):
        label = (name or address).split(" ")[0] if name else address
        if thread_id is not None and label and label not in people[thread_id]:
            people[thread_id].append(label)
    out = []
    for loc in locations:
        thread = threads.get(loc.message.thread_id or 0)
        out.append(
            Row(
                loc,
                loc.message,
                loc.folder.account,
                thread_count=thread.message_count if thread else 1,
                participants=people.get(loc.message.thread_id or 0, [])[:4],
            )
        )
    _attach_action_states(user, out)
    return Page(out, "" if exhausted else position)


def _drop_shown_threads(
    base: QuerySet[Location], cursor: str, chunk: list[tuple[int, datetime, int, int | None]]
) -> list[tuple[int, datetime, int, int | None]]:
    """Leave out conversations already listed on an earlier page: those with a copy
    in the scope newer than the cursor."""
    decoded = decode_cursor(cursor)
    if decoded is None:
        return chunk
    date, pk = decoded
    thread_ids = {row[3] for row in chunk if row[3]}
    shown = set(
        base.filter(Q(date__gt=date) | Q(date=date, id__gte=pk))
        .filter(message__thread_id__in=thread_ids)
        .values_list("message__thread_id", flat=True)
        .distinct()
    )
    return [row for row in chunk if row[3] not in shown]


def search_page(user: User, query: str, *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
    """Messages of every account whose sender, recipients, subject or snippet
    contain every word of `query`, newest first (full-text body search comes later);
    with them the kept mail of the Imported folder (in no mailbox, shown without an
    account), which "all mail" includes too."""
    words = query.split()[:8]
    rows = Message.objects.filter(user=user)
    for word in words:
        rows = rows.filter(
            Q(from_name__icontains=word)
            | Q(from_email__icontains=word)
            | Q(subject__icontains=word)
            | Q(snippet__icontains=word)
            | Q(to__icontains=word)
            | Q(cc__icontains=word)
        )
    decoded = decode_cursor(cursor) if cursor else None
    if decoded:
        rows = rows.filter(date__lte=decoded[0]).filter(
            Q(date__lt=decoded[0]) | Q(id__lt=decoded[1])
        )
    messages = list(rows.distinct().order_by("-date", "-id")[: limit + 1])
    more = len(messages) > limit
    messages = messages[:limit]
    first: dict[int, Location] = {}
    for loc in (
        Location.objects.filter(message_id__in=[m.pk for m in messages], user=user)
        .select_related("folder__account")
        .order_by("id")
    ):
        first.setdefault(loc.message_id, loc)
    # A message in no mailbox is listed while a keeper of Imported needs it (the
    # others are orphans the sweep lets go): the page may come out shorter.
    kept = keepers.needed(user.pk, [m.pk for m in messages if m.pk not in first], shown_only=True)
    out = [
        Row(first[m.pk], m, first[m.pk].folder.account)
        if m.pk in first
        else Row(Location(message=m, user=user, seen=True, date=m.date), m, None)
        for m in messages
        if m.pk in first or m.pk in kept
    ]
    _attach_action_states(user, out)
    next_cursor = encode_cursor(messages[-1].date, messages[-1].pk) if more else ""
    return Page(out, next_cursor)


def _attach_action_states(user: User, rows: list[Row]) -> None:
    ids = [row.message.pk for row in rows]
    if not ids:
        return
    states: dict[int, str] = {}
    for message_id, state, kind in RemoteAction.objects.filter(
        user=user, message_id__in=ids, state__in=[*OPEN_STATES, RemoteAction.State.FAILED]
    ).values_list("message_id", "state", "kind"):
        if message_id is None or (state in OPEN_STATES and kind in QUIET_KINDS):
            continue
        if state == RemoteAction.State.FAILED or message_id not in states:
            states[message_id] = "failed" if state == RemoteAction.State.FAILED else "pending"
    for row in rows:
        row.action_state = states.get(row.message.pk, "")


def newest_marker(user: User, scope: Scope) -> str:
    """A short fingerprint of the list's first page, for live polling: the newest
    copy's id plus the scope's unread figure; it changes when mail arrives, goes or
    changes state. Two index walks."""
    if scope.kind == "search":
        return ""
    base = _base(user, scope)
    top = list(base.order_by("-date", "-id").values_list("id", "seen", "flagged")[:PAGE_SIZE])
    digest = hash(tuple(top)) & 0xFFFFFFFF
    return f"{top[0][0] if top else 0}-{digest:x}"


# --- one message, one conversation ------------------------------------------------


def messages_of(user: User) -> QuerySet[Message]:
    return Message.objects.filter(user=user)


def access_message(user: User, message_id: int) -> Message:
    """The user's message; PostaError 404 for anyone else's."""
    message = messages_of(user).filter(pk=message_id).first()
    if message is None:
        raise not_found(_("This message does not exist, or it was deleted."))
    return message


def remote_content_allowed(user: User, address: str) -> bool:
    """Whether the user chose "always show remote content" for this sender."""
    return bool(address) and RemoteContentSender.objects.filter(
        user=user, address=address.strip().lower()
    ).exists()


@dataclass
class MessageDetail:
    message: Message
    locations: list[Location]
    actions: list[RemoteAction]

    @property
    def primary(self) -> Location | None:
        return self.locations[0] if self.locations else None

    @property
    def accounts(self) -> list[Account]:
        seen: dict[int, Account] = {}
        for loc in self.locations:
            seen.setdefault(loc.folder.account_id, loc.folder.account)
        return list(seen.values())

    @property
    def open_actions(self) -> list[RemoteAction]:
        return [a for a in self.actions if a.state in OPEN_STATES and a.kind not in QUIET_KINDS]

    @property
    def failed_actions(self) -> list[RemoteAction]:
        return [a for a in self.actions if a.state == RemoteAction.State.FAILED]


def message_detail(user: User, message_id: int, *, folder_id: int | None = None) -> MessageDetail:
    """A message with its copies (the folder the user came from first) and its
    recent remote actions; PostaError 404 when it is not the user's."""
    message = access_message(user, message_id)
    locations = list(
        Location.objects.filter(message=message, user=user)
        .select_related("folder__account")
        .order_by("id")
    )
    if folder_id is not None:
        locations.sort(key=lambda loc: loc.folder_id != folder_id)
    actions = list(
        RemoteAction.objects.filter(user=user, message=message)
        .exclude(state=RemoteAction.State.DONE)
        .order_by("-id")[:10]
    )
    return MessageDetail(message, locations, actions)


def thread_messages(user: User, thread_id: int) -> tuple[Thread, list[MessageDetail]]:
    """A conversation, oldest first, with each message's copies; PostaError 404 for
    anyone else's."""
    thread = Thread.objects.filter(pk=thread_id, user=user).first()
    if thread is None:
        raise not_found(_("This conversation does not exist, or it is not yours."))
    messages = list(Message.objects.filter(user=user, thread=thread).order_by("date", "id")[:200])
    by_message: dict[int, list[Location]] = defaultdict(list)
    for loc in (
        Location.objects.filter(user=user, message__in=messages)
        .select_related("folder__account")
        .order_by("id")
    ):
        by_message[loc.message_id].append(loc)
    actions: dict[int, list[RemoteAction]] = defaultdict(list)
    for action in RemoteAction.objects.filter(user=user, message__in=messages).exclude(
        state=RemoteAction.State.DONE
    ):
        if action.message_id is not None:
            actions[action.message_id].append(action)
    details = [MessageDetail(m, by_message[m.pk], actions[m.pk]) for m in messages]
    return thread, [d for d in details if d.locations]


def special_folder_empty_text(name: str) -> str:
    """What an empty special folder says, so that it reads as a feature, not an error."""
    texts = {
        "flagged": _("No flagged messages. Flag a message to find it here from any account."),
        "scheduled": _(
            "No scheduled messages. Mail you schedule to be sent later waits here "
            "until its time."
        ),
        "shared": _(
            "Nothing shared with you yet. Conversations colleagues share with you "
            "from the CRM appear here."
        ),
        "imported": _(
            "No imported messages. Mail linked to CRM records that is no longer in "
            "any mailbox (deleted from the server, brought in by the mail scanner, "
            "bounced) is kept here."
        ),
    }
    return str(texts.get(name, ""))


def scheduled_messages(user: User, *, limit: int = 200) -> list[OutgoingMessage]:
    """The user's mail waiting for its time (the Scheduled special folder)."""
    return list(
        OutgoingMessage.objects.filter(
            user=user, state__in=[OutgoingMessage.State.SCHEDULED, OutgoingMessage.State.PAUSED]
        )
        .select_related("account")
        .order_by("send_at", "id")[:limit]
    )
