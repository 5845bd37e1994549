"""The account's folder list kept in line with LIST: new folders, renames (same
UIDVALIDITY under a new name), deleted folders, and the roles detected."""

from __future__ import annotations

from django.db import transaction

from posta.accounts.models import Account, Folder
from posta.mail.models import Location
from posta.mailproto.imap.client import FolderInfo, imap_errors, list_folders
from posta.mailproto.imap.roles import detect_roles
from posta.mailproto.imap.session import Session


def refresh_folders(session: Session, account: Account) -> list[Folder]:
    """Bring the account's Folder rows in line with LIST: new folders are added,
    renamed ones (same UIDVALIDITY under a new name, RFC 3501 §6.3.5) keep their
    row and messages, deleted ones go. Roles follow detect_roles unless the user
    set them."""
    infos = list_folders(session.client)
    roles = {name: role for role, name in detect_roles(infos).items()}
    by_name = {f.name: f for f in Folder.objects.filter(account=account)}
    server_names = {i.name for i in infos}
    vanished = [f for name, f in by_name.items() if name not in server_names]
    fresh = [i for i in infos if i.name not in by_name]
    renamed = _match_renames(session, vanished, fresh)
    with transaction.atomic():
        for moved, info in renamed:
            moved.name = info.name
            moved.save(update_fields=["name"])
            by_name[info.name] = moved
            vanished.remove(moved)
        gone_ids = [f.pk for f in vanished]
        if gone_ids:
            Folder.objects.filter(pk__in=gone_ids).delete()
        for info in infos:
            folder = by_name.get(info.name) or Folder(account=account, name=info.name)
            by_name[info.name] = folder
            _apply_info(folder, info, roles.get(info.name, ""))
    return [by_name[i.name] for i in infos]


def _match_renames(
    session: Session, vanished: list[Folder], fresh: list[FolderInfo]
) -> list[tuple[Folder, FolderInfo]]:
    known = {f.uidvalidity: f for f in vanished if f.uidvalidity is not None}
    pairs: list[tuple[Folder, FolderInfo]] = []
    if not known:
        return pairs
    for info in fresh:
        if not info.selectable:
            continue
        with imap_errors(host=session.host):
            status = session.client.folder_status(info.name, ["UIDVALIDITY"])
        validity = int(status.get(b"UIDVALIDITY", 0))
        match = known.pop(validity, None)
        if match is not None:
            pairs.append((match, info))
    return pairs


def _apply_info(folder: Folder, info: FolderInfo, role: str) -> None:
    new_role = folder.role if folder.role_set_by_user else role
    values = {
        "display_name": info.display_name[:1000],
        "delimiter": info.delimiter[:4],
        "flags": " ".join(info.flags)[:500],
        "special_use": info.special_use[:20],
        "selectable": info.selectable,
        "role": new_role,
    }
    changed = folder.pk is None or any(getattr(folder, k) != v for k, v in values.items())
    old_role = folder.role
    for key, value in values.items():
        setattr(folder, key, value)
    if changed:
        folder.save()
    if folder.pk is not None and old_role != new_role:
        # Location.role is the list screens' copy of the folder's role.
        Location.objects.filter(folder=folder).update(role=new_role)
