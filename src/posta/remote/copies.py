"""Finding and removing copies on an account's IMAP server: the mailbox steps that
sending, its follow-ups, the draft worker and the remote actions share."""

from __future__ import annotations

from collections.abc import Sequence

from posta.accounts.models import Account, Folder
from posta.mail.models import Location
from posta.mailproto.imap.session import Session


def folder_with_role(account: Account, role: str) -> Folder | None:
    """The account's folder mapped to `role` (Folder.Role), if any."""
    return Folder.objects.filter(account=account, role=role).first()


def find_message_id(session: Session, folder: Folder, message_id: str) -> list[int]:
    """UIDs in `folder` whose Message-ID is `message_id`; EXAMINEs it (read-only,
    so a search never changes \\Recent)."""
    if not message_id:
        return []
    session.examine(folder.name)
    return session.search_message_id(message_id)


def find_header(session: Session, folder: Folder, name: str, value: str) -> list[int]:
    """UIDs in `folder` whose header `name` contains `value`, SELECTed read-write
    for the commands that follow."""
    session.select(folder.name)
    return session.search_header(name, value)


def remove_copies(session: Session, folder: Folder, uids: Sequence[int]) -> bool:
    """Delete messages of `folder` by UID (Session.expunge_uids: UID EXPUNGE of
    those only, or left \\Deleted without UIDPLUS) and forget their locations.
    False when the server keeps them marked \\Deleted."""
    if not uids:
        return True
    session.select(folder.name)
    gone = session.expunge_uids(uids)
    Location.objects.filter(folder=folder, uid__in=list(uids)).delete()
    return gone
