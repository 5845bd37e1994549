"""The arrival pipeline (posta.rules.arrivals): new inbox mail recorded once,
processed once through the registered steps in order, resumed after a kill
without repeating a done step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.mail.models import Message
from posta.rules import arrivals, tasks
from posta.rules.arrivals import Outcome
from posta.rules.models import Arrival
from posta.sync.account_pass import sync_account_once
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


class Log:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Iterator[Log]:
    """Only this test's steps; no queue (the test runs the pipeline itself)."""
    monkeypatch.setattr(arrivals, "_steps", {})
    woken: list[int] = []
    monkeypatch.setattr(tasks, "enqueue_arrivals", woken.append)
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    yield Log()


def _inbox(account: Account) -> Folder:
    return Folder.objects.get(account=account, role=Folder.Role.INBOX)


def _first_synced(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> Account:
    account = make_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("old one"))
    dovecot.create_folder(mail_user, "Archive")
    sync_account_once(account.pk)
    return account


def test_new_inbox_mail_is_recorded_once_old_mail_and_other_folders_are_not(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, steps: Log
) -> None:
    account = _first_synced(dovecot, mail_user, settings)
    old = Message.objects.get(subject="old one")
    assert Arrival.objects.get(message=old).state == Arrival.State.SKIPPED

    dovecot.deliver(mail_user, message("new one"))
    dovecot.deliver(mail_user, message("archived"), folder="Archive")
    sync_account_once(account.pk)
    new = Message.objects.get(subject="new one")
    arrival = Arrival.objects.get(message=new)
    assert arrival.state == Arrival.State.PENDING
    assert arrival.folder_id == _inbox(account).pk
    assert not Arrival.objects.filter(message__subject="archived").exists()

    # A resync and a UIDVALIDITY reset record nothing more.
    dovecot.reset_uidvalidity(mail_user, "INBOX")
    sync_account_once(account.pk)
    assert Arrival.objects.count() == 2
    # Recording the same announcement again changes nothing (unique per message).
    assert arrivals.do_record_arrivals(
        user_id=account.user_id, message_ids=[new.pk], folder_id=_inbox(account).pk,
        source="sync",
    ) == 1
    assert Arrival.objects.count() == 2


def test_steps_run_in_order_share_the_outcome_and_run_once(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, steps: Log
) -> None:
    account = _first_synced(dovecot, mail_user, settings)
    seen: list[tuple[str, int, Outcome]] = []

    def filters(batch: Sequence[Arrival], outcomes: dict[int, Outcome]) -> None:
        for a in batch:
            seen.append(("filters", a.message_id, Outcome(**outcomes[a.message_id].to_dict())))
            if "stop" in a.message.subject:
                outcomes[a.message_id].stopped = True
                outcomes[a.message_id].disposition = "moved"
                outcomes[a.message_id].target_folder_id = 42

    def reply(batch: Sequence[Arrival], outcomes: dict[int, Outcome]) -> None:
        for a in batch:
            seen.append(("reply", a.message_id, Outcome(**outcomes[a.message_id].to_dict())))

    arrivals.register_step("reply", 20, reply)
    arrivals.register_step("filters", 10, filters)
    for subject in ("plain", "please stop"):
        dovecot.deliver(mail_user, message(subject))
    sync_account_once(account.pk)
    plain = Message.objects.get(subject="plain").pk
    stop = Message.objects.get(subject="please stop").pk

    assert arrivals.process_pending(account.user_id) is None
    assert [(name, mid) for name, mid, _o in seen] == [
        ("filters", plain), ("filters", stop), ("reply", plain), ("reply", stop)
    ]
    assert seen[3][2] == Outcome(stopped=True, disposition="moved", target_folder_id=42)
    done = Arrival.objects.get(message_id=stop)
    assert done.state == Arrival.State.DONE
    assert done.steps_done == ["filters", "reply"]
    assert done.outcome["disposition"] == "moved"

    seen.clear()
    assert arrivals.process_pending(account.user_id) is None
    assert seen == []


def test_a_kill_between_steps_resumes_without_repeating_a_done_step(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, steps: Log
) -> None:
    account = _first_synced(dovecot, mail_user, settings)
    runs: list[tuple[str, int]] = []
    killed = {"armed": True}

    def first(batch: Sequence[Arrival], outcomes: dict[int, Outcome]) -> None:
        runs.extend(("first", a.message_id) for a in batch)
        for a in batch:
            outcomes[a.message_id].disposition = "trash"

    def second(batch: Sequence[Arrival], outcomes: dict[int, Outcome]) -> None:
        if killed["armed"]:
            killed["armed"] = False
            raise SystemExit("killed")  # not an Exception: nothing catches it
        runs.extend(("second", a.message_id) for a in batch)
        assert all(outcomes[a.message_id].disposition == "trash" for a in batch)

    arrivals.register_step("first", 10, first)
    arrivals.register_step("second", 20, second)
    dovecot.deliver(mail_user, message("killed mid-way"))
    sync_account_once(account.pk)
    mid = Message.objects.get(subject="killed mid-way").pk

    with pytest.raises(SystemExit):
        arrivals.process_pending(account.user_id)
    row = Arrival.objects.get(message_id=mid)
    assert row.steps_done == ["first"] and row.state == Arrival.State.PENDING
    # Another worker before the dead one's lease runs out finds nothing to take.
    arrivals.process_pending(account.user_id)
    assert runs == [("first", mid)]
    Arrival.objects.update(lease_until=timezone.now() - arrivals.LEASE)
    assert account.user_id in arrivals.users_due()
    arrivals.process_pending(account.user_id)
    assert runs == [("first", mid), ("second", mid)]
    assert Arrival.objects.get(message_id=mid).state == Arrival.State.DONE


def test_a_deferred_message_waits_and_later_steps_wait_for_it(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, steps: Log
) -> None:
    account = _first_synced(dovecot, mail_user, settings)
    ready = {"now": False}
    later: list[int] = []

    def waits(batch: Sequence[Arrival], outcomes: dict[int, Outcome]) -> list[int]:
        return [] if ready["now"] else [a.message_id for a in batch]

    arrivals.register_step("waits", 10, waits)
    arrivals.register_step("after", 20, lambda b, o: later.extend(a.message_id for a in b))
    dovecot.deliver(mail_user, message("not yet"))
    sync_account_once(account.pk)
    due = arrivals.process_pending(account.user_id)
    assert due is not None and due > timezone.now()
    assert later == []
    assert arrivals.users_due() == []  # not due yet
    ready["now"] = True
    Arrival.objects.update(next_attempt_at=timezone.now())
    assert arrivals.process_pending(account.user_id) is None
    assert later == [Message.objects.get(subject="not yet").pk]


def test_a_failing_step_is_retried_then_given_up_and_the_others_go_on(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, steps: Log
) -> None:
    account = _first_synced(dovecot, mail_user, settings)
    after: list[int] = []

    def broken(batch: Sequence[Arrival], outcomes: dict[int, Outcome]) -> None:
        for a in batch:
            if a.message.subject == "poison":
                raise RuntimeError("cannot read it")

    arrivals.register_step("broken", 10, broken)
    arrivals.register_step("after", 20, lambda b, o: after.extend(a.message_id for a in b))
    dovecot.deliver(mail_user, message("poison"))
    dovecot.deliver(mail_user, message("fine"))
    sync_account_once(account.pk)
    poison = Message.objects.get(subject="poison").pk
    fine = Message.objects.get(subject="fine").pk
    arrivals.process_pending(account.user_id)
    assert after == [fine]  # the good message is not held back by the bad one
    for _attempt in range(arrivals.MAX_ATTEMPTS):
        Arrival.objects.update(next_attempt_at=timezone.now())
        arrivals.process_pending(account.user_id)
    row = Arrival.objects.get(message_id=poison)
    assert row.state == Arrival.State.DONE
    assert "cannot read it" in row.steps_failed["broken"]
    assert after == [fine, poison]


def test_the_sweep_records_an_announcement_that_was_lost(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, steps: Log
) -> None:
    account = _first_synced(dovecot, mail_user, settings)
    from posta.mail import signals

    signals.messages_stored.disconnect(dispatch_uid="posta-rules-arrivals")
    try:
        dovecot.deliver(mail_user, message("lost"))
        sync_account_once(account.pk)
    finally:
        signals.messages_stored.connect(
            tasks.on_messages_stored, dispatch_uid="posta-rules-arrivals"
        )
    lost = Message.objects.get(subject="lost")
    assert not Arrival.objects.filter(message=lost).exists()
    assert arrivals.recover_unrecorded() == set()  # too recent: the receiver may run yet
    later = timezone.now() + arrivals.RECOVERY_GRACE * 2
    assert arrivals.recover_unrecorded(now=later) == {account.user_id}
    assert Arrival.objects.get(message=lost).state == Arrival.State.PENDING
    # The old message, recorded as skipped, stays so.
    assert Arrival.objects.get(message__subject="old one").state == Arrival.State.SKIPPED
