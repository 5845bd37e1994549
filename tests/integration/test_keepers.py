"""Messages in no mailbox: kept, with their blobs, while a keeper needs them; let go
otherwise (posta.mail.keepers), after an expunge on the server and when an account
is removed."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from posta.accounts.models import Account
from posta.mail import blobs, keepers
from posta.mail.ingest import do_store_imported
from posta.mail.models import BlobToDrop, Location, Message
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def keep_subjects(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """A keeper for the test: it needs the messages whose subject is in the set."""
    wanted: set[str] = set()

    def keeper(user_id: int, message_ids: Sequence[int]) -> Collection[int]:
        return set(
            Message.objects.filter(
                user_id=user_id, pk__in=list(message_ids), subject__in=wanted
            ).values_list("pk", flat=True)
        )

    monkeypatch.setitem(keepers._keepers, "test.subjects", keeper)
    monkeypatch.setattr(keepers, "_shown", keepers._shown | {"test.subjects"})
    return wanted


def _synced(dovecot: DovecotServer, mail_user: MailUser, settings: Any, n: int) -> Account:
    for i in range(n):
        dovecot.deliver(mail_user, message(f"note {i}", body=f"body {i}\n"))
    account = make_account(dovecot, mail_user, settings)
    sync_account_once(account.pk)
    assert Message.objects.filter(user=account.user, body_state="stored").count() == n
    return account


def test_an_expunged_message_is_kept_while_needed_and_let_go_otherwise(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, keep_subjects: set[str]
) -> None:
    account = _synced(dovecot, mail_user, settings, 3)
    keep_subjects.add("note 1")
    by_subject = {m.subject: m for m in Message.objects.filter(user=account.user)}
    kept_key = by_subject["note 1"].blob_key
    gone_key = by_subject["note 0"].blob_key
    assert blobs.exists(kept_key) and blobs.exists(gone_key)

    dovecot.doveadm("expunge", "-u", mail_user.name, "mailbox", "INBOX", "all")
    sync_account_once(account.pk)
    assert not Location.objects.filter(folder__account=account).exists()

    # The first sweep only marks the orphans: a move elsewhere may still show up.
    assert keepers.do_sweep() == 0
    assert Message.objects.filter(user=account.user).count() == 3
    later = timezone.now() + keepers.SWEEP_GRACE + timedelta(seconds=1)
    assert keepers.do_sweep(now=later) == 2

    left = list(Message.objects.filter(user=account.user))
    assert [m.subject for m in left] == ["note 1"]
    assert blobs.exists(kept_key) and blobs.get(kept_key).find(b"body 1") >= 0
    assert not blobs.exists(gone_key)

    page, cursor = keepers.kept_messages(account.user_id)
    assert [m.subject for m in page] == ["note 1"] and cursor is None
    assert keepers.is_kept(account.user_id, left[0].pk)

    keep_subjects.clear()
    assert keepers.do_let_go(account.user_id, [left[0].pk]) == 1
    assert not Message.objects.filter(user=account.user).exists()
    # Its blob was written moments ago: it goes at a sweep once it is older.
    assert blobs.exists(kept_key)
    keepers.do_sweep(now=timezone.now() + keepers.BLOB_GRACE + timedelta(seconds=1))
    assert not blobs.exists(kept_key) and not BlobToDrop.objects.exists()


def test_a_message_that_finds_a_copy_again_is_not_let_go(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _synced(dovecot, mail_user, settings, 1)
    only = Message.objects.get(user=account.user)
    Message.objects.filter(pk=only.pk).update(orphan_since=timezone.now() - timedelta(days=1))
    assert keepers.do_sweep() == 0  # it has its INBOX copy: unmarked
    assert Message.objects.get(pk=only.pk).orphan_since is None
    # Asked to let go, a message with a copy stays.
    assert keepers.do_let_go(account.user_id, [only.pk]) == 0


def test_deleting_an_account_keeps_exactly_the_needed_messages(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, keep_subjects: set[str]
) -> None:
    account = _synced(dovecot, mail_user, settings, 4)
    user = account.user
    keep_subjects.update({"note 0", "note 3"})
    assert keepers.count_kept_if_deleted(account) == 2

    kept = keepers.do_delete_account_keeping_needed(account)

    assert kept == 2
    assert not Account.objects.filter(pk=account.pk).exists()
    left = sorted(Message.objects.filter(user=user).values_list("subject", flat=True))
    assert left == ["note 0", "note 3"]
    for m in Message.objects.filter(user=user):
        assert blobs.exists(m.blob_key)
    page, _cursor = keepers.kept_messages(user.pk)
    assert sorted(m.subject for m in page) == ["note 0", "note 3"]


def test_a_message_sent_from_posta_waits_for_its_sent_copy(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _synced(dovecot, mail_user, settings, 1)
    only = Message.objects.get(user=account.user)
    Location.objects.filter(message=only).delete()
    outgoing = account.outgoing.create(
        user=account.user, message_id=only.message_id, state="sent", sent_copy="pending"
    )
    assert keepers.needed(account.user_id, [only.pk]) == {only.pk}
    assert keepers.do_let_go(account.user_id, [only.pk]) == 0
    outgoing.sent_copy = "failed"
    outgoing.save()
    assert keepers.do_let_go(account.user_id, [only.pk]) == 1


def test_the_delete_page_says_how_many_linked_messages_stay(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, keep_subjects: set[str]
) -> None:
    account = _synced(dovecot, mail_user, settings, 3)
    keep_subjects.add("note 2")
    User.objects.create_superuser(username="admin", password="pw-unused-123")
    client = Client()
    client.force_login(account.user)
    url = f"/settings/accounts/{account.pk}/delete/"
    page = client.get(url)
    assert page.status_code == 200
    assert "1 message linked to CRM records will be kept in Imported" in page.content.decode()
    done = client.post(url, follow=True)
    assert "1 linked message is kept in Imported" in done.content.decode()
    assert list(Message.objects.filter(user=account.user).values_list("subject", flat=True)) == [
        "note 2"
    ]


def _age(key: str, days: int) -> None:
    """Make the blob look written `days` ago (the message arrived long ago)."""
    path = blobs.default_storage.path(key)
    then = (timezone.now() - timedelta(days=days)).timestamp()
    os.utime(path, (then, then))


@pytest.mark.parametrize("writer", ["put", "put_many"])
def test_a_blob_reused_by_a_new_copy_survives_the_letting_go_of_the_old_one(
    writer: str,
) -> None:
    old = User.objects.create_user(username="anna", password="pw-unused-123")
    new = User.objects.create_user(username="bruno", password="pw-unused-123")
    raw = message("Same bytes", body="the very same body\n")
    stored, _created = do_store_imported(user_id=old.pk, raw=raw)
    _age(stored.blob_key, days=30)
    # A copy of the same bytes arrives for another user: the writer finds the blob
    # in the store and reuses it, but the row naming it is not committed yet...
    key = blobs.put(raw) if writer == "put" else blobs.put_many([raw])[0]
    assert key == stored.blob_key
    # ...when the old message is let go (nothing needs it).
    assert keepers.do_let_go(old.pk, [stored.pk]) == 1
    assert blobs.get(key) == raw
    # The new copy's row commits; later sweeps keep the blob it names.
    Message.objects.create(user=new, identity="x" * 64, subject="Same bytes",
                           date=timezone.now(), blob_key=key, body_state="stored")
    keepers.do_sweep(now=timezone.now() + keepers.BLOB_GRACE + timedelta(minutes=1))
    assert blobs.get(key) == raw and not BlobToDrop.objects.exists()


def test_an_old_unused_blob_goes_with_its_last_message() -> None:
    user = User.objects.create_user(username="anna", password="pw-unused-123")
    stored, _created = do_store_imported(user_id=user.pk, raw=message("Old", body="old\n"))
    _age(stored.blob_key, days=30)
    assert keepers.do_let_go(user.pk, [stored.pk]) == 1
    assert not blobs.exists(stored.blob_key) and not BlobToDrop.objects.exists()
