"""Folder roles from SPECIAL-USE (RFC 6154) and well-known names."""

from __future__ import annotations

import unicodedata

from posta.mailproto.imap import utf7
from posta.mailproto.imap.client import FolderInfo
from posta.mailproto.imap.roles import detect_roles


def folder(
    display: str,
    special: str = "",
    *,
    delimiter: str = "/",
    selectable: bool = True,
) -> FolderInfo:
    flags = ("\\HasNoChildren",) + ((special,) if special else ())
    if not selectable:
        flags += ("\\Noselect",)
    return FolderInfo(
        name=utf7.encode(display),
        display_name=display,
        delimiter=delimiter,
        flags=flags,
        special_use=special,
        selectable=selectable,
    )


def test_special_use() -> None:
    folders = [
        folder("INBOX"),
        folder("Sent", "\\Sent"),
        folder("Drafts", "\\Drafts"),
        folder("Trash", "\\Trash"),
        folder("Junk", "\\Junk"),
        folder("Archive", "\\Archive"),
    ]
    assert detect_roles(folders) == {
        "inbox": "INBOX",
        "sent": "Sent",
        "drafts": "Drafts",
        "trash": "Trash",
        "spam": "Junk",
        "archive": "Archive",
    }


def test_special_use_beats_names() -> None:
    folders = [
        folder("INBOX"),
        folder("Sent"),  # a leftover of another client
        folder("Outbox copies", "\\Sent"),
        folder("Trash"),
        folder("Bin", "\\Trash"),
    ]
    roles = detect_roles(folders)
    assert roles["sent"] == "Outbox copies"
    assert roles["trash"] == "Bin"


def test_gmail_italian() -> None:
    folders = [
        folder("INBOX"),
        folder("[Gmail]", selectable=False),
        folder("[Gmail]/Bozze", "\\Drafts"),
        folder("[Gmail]/Cestino", "\\Trash"),
        folder("[Gmail]/Importanti", "\\Important"),
        folder("[Gmail]/Posta inviata", "\\Sent"),
        folder("[Gmail]/Spam", "\\Junk"),
        folder("[Gmail]/Speciali", "\\Flagged"),
        folder("[Gmail]/Tutti i messaggi", "\\All"),
    ]
    assert detect_roles(folders) == {
        "inbox": "INBOX",
        "drafts": "[Gmail]/Bozze",
        "sent": "[Gmail]/Posta inviata",
        "trash": "[Gmail]/Cestino",
        "spam": "[Gmail]/Spam",
        "archive": "[Gmail]/Tutti i messaggi",
    }


def test_gmail_italian_names_without_special_use() -> None:
    # Gmail before SPECIAL-USE, or a proxy that strips it.
    folders = [
        folder("INBOX"),
        folder("[Gmail]", selectable=False),
        folder("[Gmail]/Bozze"),
        folder("[Gmail]/Cestino"),
        folder("[Gmail]/Posta inviata"),
        folder("[Gmail]/Spam"),
        folder("[Gmail]/Tutti i messaggi"),
    ]
    assert detect_roles(folders) == {
        "inbox": "INBOX",
        "drafts": "[Gmail]/Bozze",
        "sent": "[Gmail]/Posta inviata",
        "trash": "[Gmail]/Cestino",
        "spam": "[Gmail]/Spam",
        "archive": "[Gmail]/Tutti i messaggi",
    }


def test_google_mail_german() -> None:
    folders = [
        folder("INBOX"),
        folder("[Google Mail]/Entwürfe"),
        folder("[Google Mail]/Gesendet"),
        folder("[Google Mail]/Papierkorb"),
        folder("[Google Mail]/Alle Nachrichten"),
    ]
    roles = detect_roles(folders)
    assert roles["drafts"] == utf7.encode("[Google Mail]/Entwürfe")
    assert roles["drafts"] == "[Google Mail]/Entw&APw-rfe"  # the raw wire name
    assert roles["sent"] == "[Google Mail]/Gesendet"
    assert roles["trash"] == "[Google Mail]/Papierkorb"
    assert roles["archive"] == "[Google Mail]/Alle Nachrichten"


def test_courier_inbox_prefixed() -> None:
    folders = [
        folder("INBOX", delimiter="."),
        folder("INBOX.Sent", delimiter="."),
        folder("INBOX.Drafts", delimiter="."),
        folder("INBOX.Trash", delimiter="."),
        folder("INBOX.Spam", delimiter="."),
        folder("INBOX.Archivio", delimiter="."),
        folder("INBOX.Clienti", delimiter="."),
    ]
    assert detect_roles(folders) == {
        "inbox": "INBOX",
        "sent": "INBOX.Sent",
        "drafts": "INBOX.Drafts",
        "trash": "INBOX.Trash",
        "spam": "INBOX.Spam",
        "archive": "INBOX.Archivio",
    }


def test_cyrus_inbox_slash_lowercase() -> None:
    folders = [
        folder("INBOX"),
        folder("INBOX/sent items"),
        folder("inbox/BOZZE"),
        folder("INBOX/Deleted Messages"),
    ]
    roles = detect_roles(folders)
    assert roles == {
        "inbox": "INBOX",
        "sent": "INBOX/sent items",
        "drafts": "inbox/BOZZE",
        "trash": "INBOX/Deleted Messages",
    }


def test_italian_names_top_level() -> None:
    folders = [
        folder("INBOX"),
        folder("Posta inviata"),
        folder("Bozze"),
        folder("Cestino"),
        folder("Posta indesiderata"),
    ]
    assert detect_roles(folders) == {
        "inbox": "INBOX",
        "sent": "Posta inviata",
        "drafts": "Bozze",
        "trash": "Cestino",
        "spam": "Posta indesiderata",
    }


def test_outlook_names_in_several_languages() -> None:
    cases = {
        "sent": ["Sent Items", "Elementi inviati", "Gesendete Elemente", "Éléments envoyés",
                 "Elementos enviados", "Envoyés", "Enviados", "Gesendete Objekte"],
        "trash": ["Deleted Items", "Posta eliminata", "Elementi eliminati",
                  "Gelöschte Elemente", "Éléments supprimés", "Elementos eliminados",
                  "Corbeille", "Papelera"],
        "spam": ["Junk E-mail", "Junk Email", "Bulk Mail", "Courrier indésirable",
                 "Correo no deseado", "Indesiderata"],
        "drafts": ["Brouillons", "Borradores", "Entwürfe"],
        "archive": ["Archives", "Archiv", "Archivio"],
    }
    for role, names in cases.items():
        for name in names:
            assert detect_roles([folder("INBOX"), folder(name)]).get(role) == utf7.encode(
                name
            ), (role, name)


def test_decomposed_unicode_name_matches() -> None:
    # macOS clients create names in NFD; "Envoyés" must still be Sent.
    nfd = unicodedata.normalize("NFD", "Envoyés")
    assert detect_roles([folder(nfd)])["sent"] == utf7.encode(nfd)


def test_deeper_folders_do_not_count() -> None:
    folders = [folder("INBOX"), folder("Clienti/Sent"), folder("Old/Trash")]
    assert detect_roles(folders) == {"inbox": "INBOX"}


def test_inbox_case_insensitive() -> None:
    assert detect_roles([folder("Inbox")]) == {"inbox": "Inbox"}


def test_one_folder_per_role_and_one_role_per_folder() -> None:
    folders = [
        folder("INBOX"),
        folder("Sent"),
        folder("Sent Items"),
        # Marked \Trash by the server: must not become Spam although named so.
        folder("Spam", "\\Trash"),
        folder("Junk"),
    ]
    roles = detect_roles(folders)
    assert roles["sent"] == "Sent"  # earlier in the preference list
    assert roles["trash"] == "Spam"
    assert roles["spam"] == "Junk"
    assert len(set(roles.values())) == len(roles)


def test_first_of_two_special_use_folders_wins_and_shallow_first() -> None:
    folders = [
        folder("INBOX"),
        folder("Archive/Sent", "\\Sent"),
        folder("Sent", "\\Sent"),
    ]
    assert detect_roles(folders)["sent"] == "Sent"


def test_archive_prefers_archive_over_all_mail() -> None:
    folders = [
        folder("INBOX"),
        folder("All", "\\All"),
        folder("Archive"),
    ]
    assert detect_roles(folders)["archive"] == "Archive"
    folders = [folder("INBOX"), folder("All", "\\All"), folder("Archives", "\\Archive")]
    assert detect_roles(folders)["archive"] == "Archives"
    folders = [folder("INBOX"), folder("[Gmail]/All Mail")]
    assert detect_roles(folders)["archive"] == "[Gmail]/All Mail"


def test_noselect_folders_are_skipped() -> None:
    folders = [folder("INBOX"), folder("Sent", selectable=False), folder("INBOX/Sent")]
    assert detect_roles(folders)["sent"] == "INBOX/Sent"


def test_flagged_special_use_is_no_role() -> None:
    folders = [folder("INBOX"), folder("Spam", "\\Flagged")]
    assert detect_roles(folders) == {"inbox": "INBOX"}


def test_flat_namespace() -> None:
    folders = [folder("INBOX", delimiter=""), folder("Sent", delimiter="")]
    assert detect_roles(folders) == {"inbox": "INBOX", "sent": "Sent"}


def test_empty() -> None:
    assert detect_roles([]) == {}
