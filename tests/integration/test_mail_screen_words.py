"""The mail screen's folder tree, account chips and words (issue 19): children
under their parent, the account chip only when several accounts are merged, role
names and file types in words, sizes in the user's language."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Account, Folder
from posta.core.crypto import seal
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_mail_screen import login, rich_message, setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

NESTED = ("Clienti", "Clienti/Ferrari Impianti", "Clienti/Acme", "Fatture 2024", "Bozze vecchie")


@dataclass(frozen=True)
class SecondAccount:
    account: Account
    mailbox: MailUser


def add_account(
    dovecot: DovecotServer, user: User, *, description: str = "second"
) -> SecondAccount:
    """Another account of `user`, on a new mailbox of the test Dovecot."""
    mailbox = dovecot.add_user()
    account = Account.objects.create(
        user=user,
        username=mailbox.name,
        email=mailbox.address,
        password_secret=seal(mailbox.password),
        description=description,
        imap_host=dovecot.host,
        imap_port=dovecot.imap_port,
        imap_security="none",
    )
    return SecondAccount(account, mailbox)


def tree(html: str, account_id: int) -> list[tuple[str, int]]:
    """(label, depth) of one account's folders, in the order the sidebar draws them."""
    section = html.split(f'data-account="{account_id}"', 1)[1].split("</section>", 1)[0]
    return [
        (label, int(depth))
        for depth, label in re.findall(
            r'<li data-depth="(\d+)">.*?<span class="(?:name|folder muted)">([^<]*)<',
            section,
            flags=re.S,
        )
    ]


def test_folder_tree_places_children_under_their_parent(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    for name in NESTED:
        dovecot.create_folder(mail_user, name)
    sync_account_once(account.pk)
    login(client, account.user)

    html = client.get(reverse("mail_role", args=["inbox"])).content.decode()
    drawn = tree(html, account.pk)
    labels = [label for label, _depth in drawn]
    assert labels[0] == "Inbox"
    clienti = labels.index("Clienti")
    # Both children right under their parent, by name, one level deeper; the next
    # top-level folder only after them.
    assert drawn[clienti + 1] == ("Acme", 1)
    assert drawn[clienti + 2] == ("Ferrari Impianti", 1)
    assert drawn[clienti][1] == 0
    assert labels.index("Fatture 2024") > clienti + 2
    assert labels.index("Bozze vecchie") < clienti


def test_account_chip_only_when_several_accounts_are_merged(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("only one account"))
    sync_account_once(account.pk)
    login(client, account.user)
    url = reverse("mail_role", args=["inbox"])
    html = client.get(url).content.decode()
    assert "only one account" in html
    assert 'class="acct"' not in html

    second = add_account(dovecot, account.user)
    dovecot.deliver(second.mailbox, message("from the second account"))
    sync_account_once(second.account.pk)
    html = client.get(url).content.decode()
    assert 'class="acct"' in html
    # The chip names the account, never a protocol folder name.
    chips = re.findall(r'<span class="acct"[^>]*>([^<]*)<', html)
    assert chips and "INBOX" not in chips


def test_protocol_words_are_replaced_by_words_users_know(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, rich_message("Preventivo", "<p>ciao</p>"))
    sync_account_once(account.pk)
    login(client, account.user)
    inbox = Folder.objects.get(account=account, name="INBOX")

    folders_tab = client.get(reverse("account_folders", args=[account.pk])).content.decode()
    assert "\\Archive" not in folders_tab and "\\Sent" not in folders_tab
    assert "Archive" in folders_tab

    listing = client.get(reverse("mail_folder", args=[inbox.pk])).content.decode()
    message_id = int(re.findall(r'data-id="(\d+)"', listing)[0])
    assert 'class="mark-attach"' in listing and "📎" not in listing
    assert "/static/posta/icons/attachment.svg" in listing

    reader = client.get(
        reverse("mail_message", args=[message_id]) + f"?folder={inbox.pk}",
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "application/pdf" not in reader.split('class="attachments"', 1)[1]
    assert "PDF document" in reader
    assert re.search(r">\s*Inbox\s*<", reader) and ">INBOX<" not in reader

    account.user.language = "it"
    account.user.save()
    reader_it = client.get(
        reverse("mail_message", args=[message_id]) + f"?folder={inbox.pk}",
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Documento PDF" in reader_it
    assert re.search(r"\d+\s+byte\b", reader_it) and "bytes" not in reader_it


def test_favicon_is_served_and_linked(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    login(client, account.user)
    html = client.get(reverse("accounts")).content.decode()
    href = re.search(r'<link rel="icon" href="([^"]+)"', html)
    assert href is not None and href.group(1).endswith(".svg")
