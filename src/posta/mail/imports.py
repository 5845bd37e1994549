"""Mail brought in from outside: .eml files or an .mbox dropped on a record's page or
on the Imported folder (issue 15). Each message is stored once per user (its
identity, the same as a synced copy would have: a later sync of the same mail meets
this row), with no location, linked to the record when one is given, so it shows in
Imported (posta.mail.keepers: the CRM link keeps it).

A message that is not mail at all (no header block, no From nor Date nor
Message-ID) is refused with its file name and position, in words.
"""

from __future__ import annotations

import mailbox
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils.translation import gettext as _

from posta.crm import links as crm_links
from posta.crm.models import Link, Record
from posta.mail.identity import header_block
from posta.mail.ingest import do_store_imported
from posta.users.models import User

MAX_MESSAGES = 5000


@dataclass
class ImportReport:
    stored: int = 0
    known: int = 0  # already in the user's store: only linked
    errors: list[str] = field(default_factory=list)


def split_upload(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """The messages in one uploaded file: an .mbox holds many (RFC 4155), any other
    file is one message."""
    looks_mbox = name.lower().endswith((".mbox", ".mbx")) or data.startswith(b"From ")
    if not looks_mbox:
        return [(name, data)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.mbox"
        path.write_bytes(data)
        box = mailbox.mbox(str(path), create=False)
        try:
            return [
                (f"{name} #{i + 1}", box.get_bytes(key))
                for i, key in enumerate(box.keys()[:MAX_MESSAGES])
            ]
        finally:
            box.close()


def _is_mail(raw: bytes) -> bool:
    head = header_block(raw)
    lowered = head.lower()
    return bool(head) and any(
        f"\n{name}:".encode() in b"\n" + lowered for name in ("from", "date", "message-id")
    )


def do_import_messages(
    user: User, files: list[tuple[str, bytes]], *, record: Record | None
) -> ImportReport:
    """Store the messages of `files` ((name, bytes) each) for the user and link them
    to `record` (already checked visible to the user)."""
    report = ImportReport()
    items: list[tuple[str, bytes]] = []
    for name, data in files:
        items += split_upload(name, data)
    identities: list[str] = []
    with transaction.atomic():
        for name, raw in items[:MAX_MESSAGES]:
            if not _is_mail(raw):
                report.errors.append(
                    _("%(name)s is not an email message.") % {"name": name}
                )
                continue
            message, new = do_store_imported(user_id=user.pk, raw=raw)
            identities.append(message.identity)
            if new:
                report.stored += 1
            else:
                report.known += 1
        if record is not None and identities:
            crm_links.do_link(record, identities, by=user, how=Link.How.IMPORTED)
    return report
