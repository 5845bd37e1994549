"""Which folder is the inbox, the drafts, sent mail, spam, trash and the archive.

The server says so when it has SPECIAL-USE (RFC 6154); otherwise the folder names
tell, in the languages our users' servers speak (English, Italian, German, French,
Spanish), at the top level, under INBOX (Courier and Cyrus: "INBOX.Sent") or under
Gmail's "[Gmail]" / "[Google Mail]" parent.

Order of decision, each role taken once and each folder given one role at most:
  1. INBOX is the folder named INBOX in any case (RFC 3501 §5.1).
  2. SPECIAL-USE attributes: \\Drafts, \\Sent, \\Junk, \\Trash, \\Archive.
  3. Well-known names (the lists below, in order of preference).
  4. For the archive only, when nothing above named one: \\All, then "All Mail" names.
     An explicit archive folder is a better place to file mail than the all-mail view.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable

from posta.mailproto.imap.client import FolderInfo

INBOX = "inbox"
DRAFTS = "drafts"
SENT = "sent"
SPAM = "spam"
TRASH = "trash"
ARCHIVE = "archive"

_BY_SPECIAL_USE = {
    "\\drafts": DRAFTS,
    "\\sent": SENT,
    "\\junk": SPAM,
    "\\trash": TRASH,
    "\\archive": ARCHIVE,
}

# Names in order of preference; compared case-insensitively after Unicode NFC.
NAMES: dict[str, tuple[str, ...]] = {
    SENT: (
        "Sent", "Sent Items", "Sent Messages", "Sent Mail",
        "Posta inviata", "Inviata", "Inviati", "Elementi inviati",
        "Gesendet", "Gesendete Elemente", "Gesendete Objekte",
        "Envoyés", "Éléments envoyés", "Messages envoyés",
        "Enviados", "Elementos enviados",
    ),
    DRAFTS: ("Drafts", "Draft", "Bozze", "Entwürfe", "Brouillons", "Borradores"),
    TRASH: (
        "Trash", "Deleted Items", "Deleted Messages", "Deleted", "Bin",
        "Cestino", "Posta eliminata", "Elementi eliminati",
        "Papierkorb", "Gelöschte Elemente", "Gelöschte Objekte",
        "Corbeille", "Éléments supprimés",
        "Papelera", "Elementos eliminados",
    ),
    SPAM: (
        "Junk", "Spam", "Junk E-mail", "Junk Email", "Junk Mail", "Bulk Mail",
        "Posta indesiderata", "Indesiderata",
        "Courrier indésirable", "Correo no deseado",
    ),
    ARCHIVE: ("Archive", "Archives", "Archivio", "Archiv", "Archivo"),
}

# Gmail's all-mail view in each language: an archive when nothing better exists.
ALL_MAIL_NAMES: tuple[str, ...] = (
    "All Mail", "Tutti i messaggi", "Alle Nachrichten", "Tous les messages", "Todos",
)

# Parents under which a well-known name still counts (the folder's own parent only).
_PARENTS = ("inbox", "[gmail]", "[google mail]")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _well_known_leaf(folder: FolderInfo) -> str | None:
    """The folded leaf name if the folder sits at the top or directly under one of
    _PARENTS; None for anything deeper ("Projects/Sent" is not the Sent folder)."""
    name = folder.display_name
    if not folder.delimiter or folder.delimiter not in name:
        return _fold(name)
    parent, leaf = name.rsplit(folder.delimiter, 1)
    if _fold(parent) in _PARENTS:
        return _fold(leaf)
    return None


def _depth(folder: FolderInfo) -> int:
    return folder.name.count(folder.delimiter) if folder.delimiter else 0


def detect_roles(folders: list[FolderInfo]) -> dict[str, str]:
    """Map roles ("inbox", "drafts", "sent", "spam", "trash", "archive") to the raw
    IMAP name of the folder holding them. Roles with no folder are absent; folders
    that cannot be selected are never chosen. Ties go to the shallower folder, then
    to the first listed, so the answer does not depend on luck."""
    candidates = sorted(
        (f for f in folders if f.selectable), key=lambda f: (_depth(f), folders.index(f))
    )
    roles: dict[str, str] = {}
    taken: set[str] = set()

    def assign(role: str, folder: FolderInfo) -> None:
        if role not in roles and folder.name not in taken:
            roles[role] = folder.name
            taken.add(folder.name)

    for folder in candidates:
        if folder.name.upper() == "INBOX":
            assign(INBOX, folder)
            break

    for folder in candidates:
        role = _BY_SPECIAL_USE.get(folder.special_use.lower())
        if role:
            assign(role, folder)

    leaves = [(folder, _well_known_leaf(folder)) for folder in candidates]
    for role, names in NAMES.items():
        _assign_by_name(role, names, leaves, assign)

    for folder in candidates:
        if folder.special_use.lower() == "\\all":
            assign(ARCHIVE, folder)
    _assign_by_name(ARCHIVE, ALL_MAIL_NAMES, leaves, assign)
    return roles


def _assign_by_name(
    role: str,
    names: Iterable[str],
    leaves: list[tuple[FolderInfo, str | None]],
    assign: Callable[[str, FolderInfo], None],
) -> None:
    for wanted in names:
        folded = _fold(wanted)
        for folder, leaf in leaves:
            # A folder the server marks with another special use is that, not this.
            if leaf == folded and _special_allows(folder, role):
                assign(role, folder)


def _special_allows(folder: FolderInfo, role: str) -> bool:
    special = folder.special_use.lower()
    if not special:
        return True
    return _BY_SPECIAL_USE.get(special) == role or (special == "\\all" and role == ARCHIVE)
