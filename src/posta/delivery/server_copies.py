"""Finding and removing copies on the account's IMAP server: the few mailbox
operations that sending, its follow-ups and the draft worker share."""

from __future__ import annotations

from imapclient import IMAPClient

from posta.accounts.models import Account, Folder
from posta.mail.models import Location
from posta.mailproto.imap.client import imap_errors


def sent_folder(account: Account) -> Folder | None:
    return Folder.objects.filter(account=account, role=Folder.Role.SENT).first()


def search_message_id(client: IMAPClient, folder: Folder, message_id: str) -> list[int]:
    with imap_errors(host=str(client.host)):
        client.select_folder(folder.name)
        found = client.search(["HEADER", "Message-ID", f"<{message_id}>"])
    return [int(uid) for uid in found]


def remove_uids(client: IMAPClient, folder: Folder, uids: list[int]) -> None:
    """Delete messages by UID: \\Deleted, then UID EXPUNGE of those UIDs only
    (RFC 4315 §2.1) where the server has UIDPLUS. Never a plain EXPUNGE: it removes
    every \\Deleted message of the folder (RFC 3501 §6.4.3), also those another
    client marked and has not expunged yet. Without UIDPLUS ours stay marked
    \\Deleted, which every client shows as deleted, until a client expunges."""
    with imap_errors(host=str(client.host)):
        client.select_folder(folder.name)
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        if b"UIDPLUS" in client.capabilities():
            client.uid_expunge(uids)
    Location.objects.filter(folder=folder, uid__in=uids).delete()
