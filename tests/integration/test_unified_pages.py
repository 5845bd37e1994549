"""The unified inbox with conversations off lists a message once across its pages,
even when its copies in two merged folders fall on either side of a page boundary
(keyset paging, posta.mail.queries.message_page)."""

from __future__ import annotations

from typing import Any

import pytest

from posta.accounts.models import Account
from posta.mail import queries
from posta.mail.models import Location, Message
from posta.sync.account_pass import sync_account_once
from tests.integration.test_mail_screen import setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


def walk(user: Any, scope: queries.Scope, limit: int) -> list[list[int]]:
    """The message ids of every page of `scope`, following the cursors."""
    pages: list[list[int]] = []
    cursor = ""
    for _page in range(100):
        page = queries.message_page(user, scope, cursor=cursor, limit=limit)
        pages.append([row.message.pk for row in page.rows])
        if not page.next_cursor:
            return pages
        cursor = page.next_cursor
    raise AssertionError("the cursors do not end")


def test_a_message_in_two_merged_inboxes_is_listed_once_across_pages(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    first = setup_account(dovecot, mail_user, settings)
    # A second account of the same user on the same mailbox: every message has a
    # copy in each account's INBOX, both in the unified inbox, side by side.
    second = Account.objects.create(
        user=first.user,
        username=first.username,
        email=first.email,
        password_secret=first.password_secret,
        description="second",
        is_main=False,
        imap_host=first.imap_host,
        imap_port=first.imap_port,
        imap_security=first.imap_security,
    )
    for i in range(7):
        dovecot.deliver(
            mail_user,
            message(f"note {i}", date=f"Mon, 02 Mar 2026 10:{i:02d}:00 +0100"),
        )
    sync_account_once(first.pk)
    sync_account_once(second.pk)
    user = first.user
    assert Message.objects.filter(user=user).count() == 7
    assert Location.objects.filter(user=user, role="inbox").count() == 14
    newest_first = list(
        Message.objects.filter(user=user).order_by("-date").values_list("pk", flat=True)
    )
    scope = queries.Scope("role", role="inbox")
    for limit in range(1, 9):  # every alignment of copies and page boundaries
        pages = walk(user, scope, limit)
        listed = [pk for page in pages for pk in page]
        assert listed == newest_first, f"page size {limit}: {pages}"
        # Pages are full but the last: the ones left out are made up for.
        assert all(len(page) == limit for page in pages[:-1]), f"page size {limit}: {pages}"

    # One folder lists each of its copies, a message once per folder.
    inbox = first.folders.get(name="INBOX")
    folder_pages = walk(user, queries.Scope("folder", folder_id=inbox.pk), 3)
    assert [pk for page in folder_pages for pk in page] == newest_first
