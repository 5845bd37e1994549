"""Posta's executor writes a batch's intents by kind: the statements a batch of
new inbox mail costs do not grow with the number of messages the rules act on
(posta.rules.executor.run_batch), and every message still gets its intents."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from posta.accounts.models import Account
from posta.mail.models import Location, RemoteAction
from posta.rules import filter_step
from posta.rules.arrivals import Outcome
from posta.rules.filter_models import FilterServer
from posta.rules.models import Arrival
from posta.sync.account_pass import sync_account_once
from tests.filters_harness import add_folders, folder, save_rule, use_test_port
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


def _filter_new_mail(account: Account) -> int:
    """Run the filter step over the pending arrivals; returns its statements."""
    batch = list(Arrival.objects.filter(user=account.user, state="pending").order_by("id"))
    outcomes = {a.message_id: Outcome() for a in batch}
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        assert filter_step.filter_arrivals(batch, outcomes) == []
    Arrival.objects.filter(pk__in=[a.pk for a in batch]).update(state="done")
    return len(queries.captured_queries)


def _arrive(dovecot: DovecotServer, mail_user: MailUser, account: Account, n: int,
            start: int) -> None:
    for i in range(start, start + n):
        sender = "ada@acme.test" if i % 2 else "bob@other.test"
        dovecot.deliver(mail_user, message(f"offer {i}", from_=sender))
    sync_account_once(account.pk)


def test_a_batch_costs_the_same_statements_for_4_or_16_messages(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    monkeypatch.setattr("posta.rules.tasks.enqueue_arrivals", lambda user_id: None)
    add_folders(dovecot, mail_user)
    account = make_account(dovecot, mail_user, settings)
    use_test_port(account, dovecot)
    FilterServer.objects.filter(account=account).update(use_server=False)
    sync_account_once(account.pk)
    save_rule(account, "acme", [{"field": "from", "op": "contains", "value": "@acme.test"}],
              [{"kind": "flag"}, {"kind": "move", "folder": "Clienti"}])
    save_rule(account, "offers", [{"field": "subject", "op": "contains", "value": "offer"}],
              [{"kind": "seen"}])

    _arrive(dovecot, mail_user, account, 4, 0)
    small = _filter_new_mail(account)
    _arrive(dovecot, mail_user, account, 16, 4)
    large = _filter_new_mail(account)
    assert large == small

    clienti = folder(account, "Clienti")
    moved = Location.objects.filter(folder=clienti)
    assert sorted(c.message.subject for c in moved) == sorted(
        f"offer {i}" for i in range(20) if i % 2
    )
    # RFC 5232 §3: a filed copy has the flags set when it was filed, not later ones.
    assert all(c.flagged and not c.seen for c in moved)
    assert all(c.seen and not c.flagged for c in Location.objects.filter(
        folder__account=account, folder__role="inbox"
    ))
    kinds = sorted(RemoteAction.objects.values_list("kind", flat=True))
    assert kinds == sorted(["seen"] * 10 + ["flag"] * 10 + ["move"] * 10)
