"""Undo of a move, archive, spam or delete (the toast's "Undo").

A move the user may still undo is written with its intents held for the undo
window (`RemoteAction.next_attempt_at`, posta.mail.services `hold`): no worker
takes them before it ends, and the wake-up is sent for its end. Nothing lives in
the page: if it closes during the window the intents are already stored and leave
when it ends, exactly once, as any other.

Undo moves each copy back to the folder it left. While its intent is still unsent
the move folds away (posta.mail.chains: the copy takes its old UID again and the
server never hears of it); once a worker took it, a move back is written, chained
after it, so the server ends where the user last asked either way.

What the page carries between the two is a signed ticket (`ticket_for`): the
user, and each copy's Location id with the folder it left. It says nothing the
user could not see, and `do_undo_moves` trusts none of it beyond the signature:
every row is looked up again among the user's own.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.core import signing
from django.db import transaction
from django.utils import timezone

from posta.accounts.models import Folder
from posta.core.errors import not_found
from posta.mail import services
from posta.mail.models import Location
from posta.users.models import User

SALT = "posta.mail.undo"
MAX_COPIES = 500  # a bigger selection is done without an Undo
MAX_AGE_SECONDS = 3600  # a ticket older than this is refused (the toast is long gone)


def window_seconds(user: User) -> int:
    """The user's undo window: the same delay as for sending ("undo send")."""
    return max(0, int(user.undo_send_seconds))


def hold_until(user: User) -> datetime | None:
    """When the intents of an undoable move may leave; None without a window."""
    seconds = window_seconds(user)
    return timezone.now() + timedelta(seconds=seconds) if seconds else None


def ticket_for(user: User, moved: list[tuple[int, int]]) -> str:
    """The signed ticket for undoing `moved` ((Location id, folder it left) pairs);
    empty when there is nothing to undo or too much."""
    if not moved or len(moved) > MAX_COPIES:
        return ""
    return signing.dumps({"u": user.pk, "m": moved}, salt=SALT, compress=True)


def read_ticket(user: User, ticket: str) -> list[tuple[int, int]]:
    """The pairs of a ticket signed for `user`; [] for a forged or expired one.
    Another user's ticket is not found (PostaError 404), as their rows are."""
    try:
        data = signing.loads(ticket, salt=SALT, max_age=MAX_AGE_SECONDS)
    except (signing.BadSignature, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    if data.get("u") != user.pk:
        raise not_found()
    pairs = data.get("m")
    if not isinstance(pairs, list):
        return []
    return [
        (int(p[0]), int(p[1]))
        for p in pairs[:MAX_COPIES]
        if isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) for v in p)
    ]


def do_undo_moves(user: User, moved: list[tuple[int, int]]) -> int:
    """Put each of the user's copies back into the folder it left; returns how
    many moved back. A copy already back, gone (deleted for good meanwhile), or
    whose folder is no longer its account's, is left as it is."""
    wanted = dict(moved)
    with transaction.atomic():
        copies = list(
            Location.objects.select_for_update()
            .filter(user=user, pk__in=list(wanted))
            .select_related("folder", "message")
            .order_by("id")
        )
        folders = {
            f.pk: f
            for f in Folder.objects.filter(account__user=user, pk__in=set(wanted.values()))
        }
        groups: dict[int, list[Location]] = defaultdict(list)
        for c in copies:
            home = folders.get(wanted[c.pk])
            if home is None or home.pk == c.folder_id:
                continue
            if home.account_id == c.folder.account_id:
                groups[home.pk].append(c)
        accounts: set[int] = set()
        for folder_id, group in groups.items():
            written = services.move_copies_back(group, folders[folder_id])
            if written:
                accounts.add(folders[folder_id].account_id)
        if accounts:
            services.wake_worker(accounts)
    return sum(len(g) for g in groups.values())

