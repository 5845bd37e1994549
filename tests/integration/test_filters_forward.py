"""A filter's "forward a copy" through Posta's executor: a system send through the
outbox with the message attached whole, from the account it arrived in; never to
the account's own address, and never for a message Posta itself sent (loop)."""

from __future__ import annotations

from typing import Any

import pytest

from posta.mail.models import Message, OutgoingMessage
from posta.rules import arrivals
from posta.rules.filter_models import FilterServer
from posta.sync.account_pass import sync_account_once
from tests.filters_harness import save_rule, use_test_port
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


def test_forward_is_a_system_send_with_loop_protection(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    monkeypatch.setattr("posta.rules.tasks.enqueue_arrivals", lambda user_id: None)
    account = make_account(dovecot, mail_user, settings)
    use_test_port(account, dovecot)
    FilterServer.objects.filter(account=account).update(use_server=False)
    sync_account_once(account.pk)
    save_rule(account, "to the boss", [{"field": "subject", "op": "contains", "value": "fwd"}],
              [{"kind": "forward", "address": "boss@example.test"}])
    save_rule(account, "to myself", [{"field": "subject", "op": "contains", "value": "self"}],
              [{"kind": "forward", "address": account.email.upper()}])

    dovecot.deliver(mail_user, message("please fwd"))
    dovecot.deliver(mail_user, message("self fwd? no: self only", msgid="<own@example.test>"))
    sync_account_once(account.pk)
    arrivals.process_pending(account.user_id)
    sent = list(OutgoingMessage.objects.filter(user=account.user))
    forwarded = Message.objects.get(subject="please fwd")
    boss = [o for o in sent if o.to == [["", "boss@example.test"]]]
    assert len(boss) == 2  # "please fwd" and "self fwd? ..." both contain "fwd"
    row = next(o for o in boss if o.subject == "Fwd: please fwd")
    assert row.state == OutgoingMessage.State.QUEUED and row.account_id == account.pk
    attachment = row.attachments.get()
    assert attachment.content_type == "message/rfc822"
    assert attachment.blob_key == forwarded.blob_key
    # Never to the account's own address.
    assert not [o for o in sent if o.to[0][1].lower() == account.email.lower()]

    # A message Posta itself sent coming back is not forwarded again.
    dovecot.deliver(mail_user, message("fwd loop", msgid=f"<{row.message_id}>"))
    sync_account_once(account.pk)
    arrivals.process_pending(account.user_id)
    assert not OutgoingMessage.objects.filter(subject="Fwd: fwd loop").exists()
