"""One error idiom and one wake-up idiom for the outbox.

- An `access_` function refuses another user's row with PostaError 404, which the
  middleware renders as a page (or an htmx partial): the views translate nothing.
- Every worker wake-up is a signal of posta.mail.signals sent after commit: none
  for work that rolls back, and none before the rows are visible.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Account
from posta.accounts.services import access_account
from posta.core.errors import PostaError
from posta.mail import outbox, queries, signals
from posta.mail.models import OutgoingMessage
from posta.users.models import User
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

SENDS: list[tuple[int, datetime | None]] = []
DRAFTS: list[int] = []


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    SENDS.clear()
    DRAFTS.clear()
    with recorded_wakeups(sends=SENDS, drafts=DRAFTS):
        yield


def make_account(name: str) -> Account:
    user = User.objects.create(username=name, email=f"{name}@example.test", first_name=name)
    return Account.objects.create(
        user=user, username=f"{name}@example.test", email=f"{name}@example.test",
        description=name, imap_host="imap.example.test", smtp_host="smtp.example.test",
        is_main=True,
    )


def write(account: Account) -> OutgoingMessage:
    row = outbox.do_new_draft(account.user, account=account)
    return outbox.check_save_draft(
        account.user, row,
        outbox.Draft(account_id=account.pk, to="bruno@example.test", subject="Hello",
                     body_html="<p>Hi</p>"),
    )


def test_access_functions_refuse_others_rows_with_a_404_posta_error() -> None:
    anna, bruno = make_account("anna"), make_account("bruno")
    row = write(anna)
    refusals = [
        lambda: outbox.access_outgoing(bruno.user, row.pk),
        lambda: outbox.access_sender(bruno.user, anna.pk),
        lambda: access_account(bruno.user, anna.pk),
        lambda: queries.access_folder(bruno.user, 0),
        lambda: queries.access_message(bruno.user, 0),
    ]
    for refuse in refusals:
        with pytest.raises(PostaError) as caught:
            refuse()
        assert caught.value.status == 404
        assert caught.value.code == "not_found"
        assert str(caught.value.message)
    assert outbox.access_outgoing(anna.user, row.pk).pk == row.pk


@pytest.mark.parametrize("htmx", [False, True])
def test_another_users_draft_is_a_404_page_in_the_readers_words(htmx: bool) -> None:
    anna, bruno = make_account("anna"), make_account("bruno")
    User.objects.filter(pk=anna.user_id).update(is_superuser=True)  # past first-run setup
    row = write(anna)
    client = Client()
    client.force_login(bruno.user)
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.get(reverse("compose_edit", args=[row.pk]), headers=headers)
    assert response.status_code == 404
    body = response.content.decode()
    assert "This message does not exist, or it was deleted." in body
    assert ("<html" in body.lower()) is not htmx
    # In Italian too: the message is translated, not Django's bare 404.
    User.objects.filter(pk=bruno.user_id).update(language="it")
    response = client.get(reverse("compose_edit", args=[row.pk]), headers=headers)
    assert response.status_code == 404
    assert "Questo messaggio non esiste" in response.content.decode()


def test_saving_a_draft_wakes_the_draft_worker_after_commit() -> None:
    anna = make_account("anna")
    with transaction.atomic():
        row = write(anna)
        assert DRAFTS == []  # not before the row is visible to a worker
    assert DRAFTS == [row.pk]


def test_a_send_that_rolls_back_wakes_nobody() -> None:
    anna = make_account("anna")
    row = write(anna)
    DRAFTS.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.check_send(anna.user, row)
        raise RuntimeError("the request failed after queueing")
    assert SENDS == []
    row.refresh_from_db()
    assert row.state == OutgoingMessage.State.DRAFT


def test_a_send_wakes_the_delivery_worker_at_the_end_of_the_undo_window() -> None:
    anna = make_account("anna")
    row = write(anna)
    queued = outbox.check_send(anna.user, row)
    assert queued.send_at is not None
    assert SENDS == [(row.pk, queued.send_at)]
    outbox.do_cancel(anna.user, queued)
    assert DRAFTS[-1] == row.pk


def test_a_failing_receiver_never_breaks_the_users_action() -> None:
    anna = make_account("anna")
    row = write(anna)

    def broken(sender: object, **kwargs: object) -> None:
        raise ConnectionError("the queue is down")

    signals.outgoing_queued.connect(broken, dispatch_uid="test-broken-queue")
    try:
        queued = outbox.check_send(anna.user, row)
    finally:
        signals.outgoing_queued.disconnect(dispatch_uid="test-broken-queue")
    # The row is the truth: queued, for the sweep to find.
    queued.refresh_from_db()
    assert queued.state == OutgoingMessage.State.QUEUED
    assert queued.send_at is not None
    assert SENDS == [(row.pk, queued.send_at)]
