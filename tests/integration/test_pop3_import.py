"""POP3 import against the real Dovecot: one Dovecot user's POP3 mailbox pulled
into another user's IMAP INBOX (or another folder), each message once, with its
Date as INTERNALDATE and unread; deleted from the POP3 server only once stored,
kept when asked; and a kill at each step of the protocol neither loses nor
doubles a message (posta.core.faults points, in-process)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from posta.core import faults
from posta.rules import pop3_job
from posta.rules.pop3_models import Pop3Import, Pop3Source
from tests.integration.pop3_setup import folder_contents, make_source, make_target, numbered
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


def _pop3_count(dovecot: DovecotServer, user: MailUser) -> int:
    return dovecot.status(user, "INBOX")["messages"]


def _setup(dovecot: DovecotServer, mail_user: MailUser, settings: Any, count: int,
           **fields: Any) -> tuple[Pop3Source, MailUser]:
    account = make_target(dovecot, mail_user, settings)
    pop_user = dovecot.add_user()
    for i in range(count):
        dovecot.deliver(pop_user, numbered(i))
    source = make_source(account, host=dovecot.host, port=dovecot.pop3_port,
                         username=pop_user.name, password=pop_user.password, **fields)
    return source, pop_user


def test_import_moves_every_message_once_with_its_date_unread(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    source, pop_user = _setup(dovecot, mail_user, settings, 5)
    assert pop3_job.fetch_source(source.pk) is False
    found = folder_contents(dovecot, mail_user)
    assert sorted(subject for subject, *_ in found) == [f"pop3 message {i}" for i in range(5)]
    # Newest first: the last delivered is appended first.
    assert [s for s, *_ in found][0] == "pop3 message 4"
    for subject, when, seen, body in found:
        i = int(subject.rsplit(" ", 1)[1])
        assert when == datetime(2026, 3, 2, 9, 0, i, tzinfo=UTC)
        assert not seen
        assert b"\r\n.dot-stuffed line" in body
    assert _pop3_count(dovecot, pop_user) == 0
    source.refresh_from_db()
    assert (source.imported_count, source.running, source.last_error_code) == (5, False, "")
    assert source.last_success_at is not None
    assert Pop3Import.objects.filter(source=source, state="stored").count() == 5
    assert all(r.appended_uid for r in Pop3Import.objects.filter(source=source))
    # A second run finds nothing new and appends nothing.
    dovecot.deliver(pop_user, numbered(9))
    pop3_job.fetch_source(source.pk)
    assert len(folder_contents(dovecot, mail_user)) == 6


def test_keep_on_server_leaves_the_mailbox_untouched(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    source, pop_user = _setup(dovecot, mail_user, settings, 3, keep_on_server=True)
    pop3_job.fetch_source(source.pk)
    pop3_job.fetch_source(source.pk)
    assert len(folder_contents(dovecot, mail_user)) == 3
    assert _pop3_count(dovecot, pop_user) == 3


def test_delete_after_days_removes_only_old_records(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    source, pop_user = _setup(
        dovecot, mail_user, settings, 3, keep_on_server=True, delete_after_days=7
    )
    pop3_job.fetch_source(source.pk)
    assert _pop3_count(dovecot, pop_user) == 3
    old = datetime(2026, 1, 1, tzinfo=UTC)
    first = Pop3Import.objects.filter(source=source).order_by("id").first()
    assert first is not None
    Pop3Import.objects.filter(pk=first.pk).update(stored_at=old)
    pop3_job.fetch_source(source.pk)
    assert _pop3_count(dovecot, pop_user) == 2
    assert len(folder_contents(dovecot, mail_user)) == 3


def test_batches_end_with_quit_and_continue(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    settings.POSTA_POP3_BATCH = 4
    source, pop_user = _setup(dovecot, mail_user, settings, 10)
    assert pop3_job.fetch_source(source.pk) is True
    assert _pop3_count(dovecot, pop_user) == 6  # the first batch is gone at QUIT
    source.refresh_from_db()
    assert (source.running, source.progress_done, source.progress_total) == (True, 4, 10)
    assert pop3_job.fetch_source(source.pk) is True
    assert pop3_job.fetch_source(source.pk) is False
    source.refresh_from_db()
    assert (source.running, source.progress_done, source.imported_count) == (False, 10, 10)
    assert len(folder_contents(dovecot, mail_user)) == 10
    assert _pop3_count(dovecot, pop_user) == 0


def test_another_folder_and_a_missing_one(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    dovecot.create_folder(mail_user, "Imported")
    source, pop_user = _setup(dovecot, mail_user, settings, 2, folder="Imported")
    pop3_job.fetch_source(source.pk)
    assert len(folder_contents(dovecot, mail_user, "Imported")) == 2
    dovecot.deliver(pop_user, numbered(7))
    dovecot.delete_folder(mail_user, "Imported")
    pop3_job.fetch_source(source.pk)
    source.refresh_from_db()
    assert source.last_error_code == "target_folder_missing"
    assert not source.running
    assert _pop3_count(dovecot, pop_user) == 1  # waits, deletes nothing


def test_wrong_pop3_password_is_recorded_and_nothing_moves(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    source, pop_user = _setup(dovecot, mail_user, settings, 2)
    from posta.core.crypto import seal

    Pop3Source.objects.filter(pk=source.pk).update(password_secret=seal("wrong"))
    pop3_job.fetch_source(source.pk)
    source.refresh_from_db()
    assert source.last_error_code == "auth_failed"
    assert source.last_error_detail.startswith("pop3:")
    assert "wrong" not in source.last_error_detail
    assert _pop3_count(dovecot, pop_user) == 2
    assert folder_contents(dovecot, mail_user) == []


@pytest.mark.parametrize(
    "point", ["pop3.after_intent", "pop3.after_append", "pop3.after_record", "pop3.after_dele"]
)
def test_a_kill_at_each_step_neither_loses_nor_doubles(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, point: str
) -> None:
    source, pop_user = _setup(dovecot, mail_user, settings, 4)
    faults.arm(point)
    with pytest.raises(faults.SimulatedCrash):
        pop3_job.fetch_source(source.pk)
    # The dead worker's lease: what a takeover after it ran out finds.
    Pop3Source.objects.filter(pk=source.pk).update(lease_owner="", lease_until=None)
    if point == "pop3.after_dele":
        assert _pop3_count(dovecot, pop_user) == 4  # DELE without QUIT removes nothing
    pop3_job.fetch_source(source.pk)
    subjects = sorted(s for s, *_ in folder_contents(dovecot, mail_user))
    assert subjects == [f"pop3 message {i}" for i in range(4)]
    assert _pop3_count(dovecot, pop_user) == 0
    source.refresh_from_db()
    assert source.imported_count == 4


def test_a_kill_after_append_of_a_message_without_message_id(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_target(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, numbered(100, msgid=False))  # already in the target
    pop_user = dovecot.add_user()
    for i in range(3):
        dovecot.deliver(pop_user, numbered(i, msgid=False))
    source = make_source(account, host=dovecot.host, port=dovecot.pop3_port,
                         username=pop_user.name, password=pop_user.password)
    faults.arm("pop3.after_append")
    with pytest.raises(faults.SimulatedCrash):
        pop3_job.fetch_source(source.pk)
    Pop3Source.objects.filter(pk=source.pk).update(lease_owner="", lease_until=None)
    pop3_job.fetch_source(source.pk)
    subjects = sorted(s for s, *_ in folder_contents(dovecot, mail_user))
    assert subjects == sorted(f"pop3 message {i}" for i in (0, 1, 2, 100))


def test_a_held_source_is_not_fetched_twice(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    from posta.rules import pop3_lease

    source, pop_user = _setup(dovecot, mail_user, settings, 2)
    assert pop3_lease.claim(source.pk, "another-worker")
    assert pop3_job.fetch_source(source.pk) is None
    assert folder_contents(dovecot, mail_user) == []
    pop3_lease.release(source.pk, "another-worker")
    pop3_job.fetch_source(source.pk)
    assert len(folder_contents(dovecot, mail_user)) == 2


def test_imported_inbox_mail_arrives_like_any_new_mail(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second store: the copy reaches Posta by the sync of the target folder,
    which records it for the arrival pipeline (filters, out-of-office) once."""
    from posta.rules.arrival_models import Arrival
    from posta.sync.account_pass import sync_account_once

    monkeypatch.setattr("posta.rules.tasks.enqueue_arrivals", lambda user_id: None)
    source, _pop_user = _setup(dovecot, mail_user, settings, 2)
    pop3_job.fetch_source(source.pk)
    sync_account_once(source.account_id)
    arrived = Arrival.objects.filter(user=source.user).select_related("message", "folder")
    assert sorted(a.message.subject for a in arrived) == ["pop3 message 0", "pop3 message 1"]
    assert {a.folder.name for a in arrived} == {"INBOX"}
