"""Scheduled send and at-most-once delivery with real worker processes.

Workers are separate `posta delivery_worker` processes sharing the test database,
so these tests need a database other processes can open: PostgreSQL
(POSTA_DATABASE_URL) or an SQLite file. The in-memory SQLite test database cannot
be shared; there they are skipped with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from posta.delivery import sending
from posta.mail import outbox, outbox_queries, outbox_sentences
from posta.mail.models import OutgoingMessage
from tests.integration.test_send import make_sender, write
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

State = OutgoingMessage.State
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    with recorded_wakeups():
        yield


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a worker process that uses this test's database."""
    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.skip("worker processes need a shared database (PostgreSQL or an SQLite file)")
        url = f"sqlite:///{conf['NAME']}"
    elif connection.vendor == "postgresql":
        auth = conf["USER"] or "postgres"
        if conf["PASSWORD"]:
            auth += f":{conf['PASSWORD']}"
        host = f"{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}"
        url = f"postgres://{auth}@{host}/{conf['NAME']}"
    else:
        pytest.skip(f"no worker set-up for {connection.vendor}")
    env = dict(os.environ)
    env.pop("POSTA_KILL_AT", None)
    env.update(
        POSTA_DATABASE_URL=url,
        # The keys this process sealed the passwords with.
        POSTA_ENCRYPTION_KEYS=",".join(settings.POSTA_ENCRYPTION_KEYS),
        POSTA_SECRET_KEY=settings.SECRET_KEY,
        POSTA_DATA_DIR=str(settings.DATA_DIR),
        PYTHONPATH=str(REPO / "src"),
        **extra,
    )
    return env


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "posta.cli", "delivery_worker", *args],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def test_scheduled_message_leaves_once_with_two_workers(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    env = worker_env()
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    rows = []
    when = timezone.now() + timedelta(seconds=2)
    for i in range(3):
        rows.append(outbox.check_schedule(a.user, write(a, to="x@example.test", subject=f"s{i}"),
                                          when))
    assert [r.state for r in rows] == [State.SCHEDULED] * 3
    assert list(outbox_queries.scheduled_messages(a.user)) == rows
    workers = [start_worker(env, "--seconds", "8", "--interval", "0.05") for _ in range(2)]
    try:
        smtp_server.wait_for(3, timeout=30)
    finally:
        outputs = [w.communicate(timeout=60)[0].decode(errors="replace") for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    received = smtp_server.messages
    assert len(received) == 3
    ids = sorted(sending.header_message_id(m.data) for m in received)
    assert ids == sorted(r.message_id for r in rows)
    for row in rows:
        row.refresh_from_db()
        assert row.state == State.SENT
        assert row.attempts == 1
    assert list(outbox_queries.scheduled_messages(a.user)) == []


def test_paused_scheduled_message_waits(dovecot: DovecotServer, smtp_server: SmtpServer) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    when = timezone.now() + timedelta(hours=1)
    row = outbox.check_schedule(a.user, write(a, to="x@example.test"), when)
    assert outbox.do_pause(a.user, row)
    assert sending.deliver_due(now=when + timedelta(minutes=1)) == 0
    later = when + timedelta(hours=1)
    assert outbox.check_reschedule(a.user, row, later)
    assert sending.deliver_due(now=when + timedelta(minutes=1)) == 0
    assert sending.deliver_due(now=later) == 1
    row.refresh_from_db()
    assert row.state == State.SENT
    assert len(smtp_server.messages) == 1


def test_edit_takes_a_message_out_of_scheduled(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    when = timezone.now() + timedelta(hours=1)
    row = outbox.check_schedule(a.user, write(a, to="x@example.test"), when)
    message_id = row.message_id
    assert outbox.do_edit(a.user, row)
    row.refresh_from_db()
    assert row.state == State.DRAFT
    assert row.scheduled_for is None
    assert sending.deliver_due(now=when) == 0
    assert outbox.do_cancel(a.user, row)
    row.refresh_from_db()
    assert row.state == State.CANCELLED
    assert row.message_id == message_id  # chosen once, kept
    assert smtp_server.messages == []


def test_worker_killed_after_250_never_sends_twice(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    env = worker_env(POSTA_KILL_AT=sending.KILL_AFTER_ACCEPT)
    clean_env = worker_env()
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    rows = [outbox.check_send(a.user, write(a, to="x@example.test", subject=f"k{i}"))
            for i in range(3)]
    OutgoingMessage.objects.filter(pk__in=[r.pk for r in rows]).update(send_at=timezone.now())
    for expected in range(1, 4):
        # Each run sends one message and is killed right after the server's 250.
        worker = start_worker(env, "--once")
        worker.communicate(timeout=60)
        assert worker.returncode == -9
        assert len(smtp_server.messages) == expected
    assert OutgoingMessage.objects.filter(state=State.SENDING).count() == 3
    # More workers come and go, recovering what the dead ones left, many times.
    for _ in range(3):
        worker = start_worker(clean_env, "--once", "--stale-after", "0")
        worker.communicate(timeout=60)
        assert worker.returncode == 0
    assert len(smtp_server.messages) == 3
    ids = [sending.header_message_id(m.data) for m in smtp_server.messages]
    assert sorted(ids) == sorted(r.message_id for r in rows)
    for row in rows:
        row.refresh_from_db()
        # Nothing in Sent (the dead worker never appended): the user decides.
        assert row.state == State.NEEDS_REVIEW
        assert "may or may not have left" in outbox_sentences.outgoing_error_message(row)


def test_stalled_row_found_in_sent_is_recorded_as_sent(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    env = worker_env(POSTA_KILL_AT=sending.KILL_AFTER_ACCEPT)
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    row = outbox.check_send(a.user, write(a, to="x@example.test"))
    OutgoingMessage.objects.filter(pk=row.pk).update(send_at=timezone.now())
    worker = start_worker(env, "--once")
    worker.communicate(timeout=60)
    assert worker.returncode == -9
    (received,) = smtp_server.messages
    # The provider filed it in Sent itself (as Gmail does).
    client = dovecot.imap(mail_a)
    try:
        client.append("Sent", "(\\Seen)", None, received.data)
    finally:
        client.logout()
    assert sending.recover_stalled(stale_after=timedelta(0)) == 1
    row.refresh_from_db()
    assert row.state == State.SENT
    assert len(smtp_server.messages) == 1


def test_crash_before_data_is_sent_again_once(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    row = outbox.check_send(a.user, write(a, to="x@example.test"))
    assert row.send_at is not None
    token = sending.claim(row.pk, now=row.send_at)
    assert token is not None
    # A second worker cannot take it while it is claimed.
    assert sending.claim(row.pk, now=row.send_at) is None
    # The claiming worker died before DATA: nothing can have left.
    assert sending.recover_stalled(stale_after=timedelta(0)) == 1
    assert sending.deliver_due(now=timezone.now() + timedelta(seconds=1)) == 1
    row.refresh_from_db()
    assert row.state == State.SENT
    assert len(smtp_server.messages) == 1
