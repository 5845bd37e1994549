"""Filters and out-of-office in one script on the test Dovecot, and the handover
to Posta: while the server runs them, mail delivered through LMTP is filtered by
Pigeonhole and answered once by its vacation, and Posta's responder sends
nothing; with server filters switched off Posta filters and answers; a message
a filter sends to Spam is answered by neither."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from sievelib.managesieve import Client

from posta.rules import (
    autoreply_handover,
    autoreply_responder,
    autoreply_settings,
    autoreply_sieve,
    sieve_upload,
)
from posta.rules.autoreply_models import AutoReply, AutoReplySettings
from posta.rules.filter_models import FilterServer
from tests.filters_harness import (
    add_folders,
    run_posta,
    save_rule,
    server_state,
    set_server_side,
    sync_account_once,
    use_test_port,
)
from tests.integration.test_send import make_sender
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_script_then_posta_one_reply_per_message(
    dovecot_factory: Callable[..., DovecotServer], smtp_server: SmtpServer
) -> None:
    dovecot = dovecot_factory(extra_config=f"submission_host = 127.0.0.1:{smtp_server.port}")
    mail_user = dovecot.add_user()
    add_folders(dovecot, mail_user)
    account = make_sender(dovecot, smtp_server, mail_user)
    use_test_port(account, dovecot)
    sync_account_once(account.pk)
    save_rule(account, "acme", [{"field": "from", "op": "contains", "value": "@acme.it"}],
              [{"kind": "move", "folder": "Clienti/Acme"}])
    save_rule(account, "offers", [{"field": "subject", "op": "contains", "value": "offerta"}],
              [{"kind": "spam"}])
    before = FilterServer.objects.get(account=account).wanted_revision
    now = timezone.now()
    autoreply_settings.do_save(account.user, {
        "enabled": True, "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(days=1), "all_day": False, "subject": "",
        "body_html": "<p>Back on Monday.</p>", "known_only": False, "days": 7, "aliases": "",
    }, [])
    # The tab's save asked for a new upload; the worker's job runs it.
    assert FilterServer.objects.get(account=account).wanted_revision > before
    server = sieve_upload.do_sync_server(account.pk)
    assert server is not None and server.runs_on_server

    client = Client(dovecot.host, dovecot.managesieve_port)
    assert client.connect(mail_user.name, mail_user.password, authmech="PLAIN")
    assert client.listscripts()[0] == sieve_upload.SCRIPT_NAME
    script = client.getscript(sieve_upload.SCRIPT_NAME)
    client.logout()
    assert script.index('fileinto "Clienti/Acme";') < script.index("vacation :days")
    assert script.index('fileinto "Junk";') < script.index("vacation :days")

    def deliver(subject: str, sender: str, tag: str) -> None:
        dovecot.deliver(mail_user, message(
            subject, from_=sender, to=mail_user.address, msgid=f"<{tag}@example.test>",
        ))

    # The server filters and answers.
    deliver("Preventivo", "luca@acme.it", "s-acme")
    deliver("Offerta imperdibile", "promo@shop.test", "s-offer")
    deliver("Ciao", "nora@example.test", "s-plain")
    smtp_server.wait_for(2, timeout=20)
    run_posta(account)
    autoreply_responder.respond_due()
    plain = AutoReply.objects.get(message__subject="Ciao")
    assert (plain.state, plain.reason_code) == ("skipped", "server_answers")
    assert not AutoReply.objects.filter(state__in=["sent", "uncertain"]).exists()
    state = server_state(dovecot, mail_user)
    assert {f for f, _ in state["Preventivo"]} == {"Clienti/Acme"}
    assert {f for f, _ in state["Offerta imperdibile"]} == {"Junk"}

    # Switched off: Posta's script steps aside and Posta filters and answers.
    server = set_server_side(account, False)
    assert server.state == FilterServer.State.POSTA
    assert not autoreply_handover.server_answered(
        account.pk, timezone.now() + autoreply_handover.MARGIN * 2
    )
    time.sleep(autoreply_handover.MARGIN.total_seconds() + 1)
    deliver("Preventivo due", "marco@acme.it", "p-acme")
    deliver("Offerta due", "promo2@shop.test", "p-offer")
    deliver("Ciao due", "ugo@example.test", "p-plain")
    run_posta(account)
    autoreply_responder.respond_due()
    smtp_server.wait_for(4, timeout=20)
    time.sleep(1)  # anything late from Pigeonhole would be here by now

    by_parent: dict[str, list[str]] = {}
    for received in smtp_server.messages:
        parsed = received.message()
        by_parent.setdefault(parsed["In-Reply-To"], []).append(parsed["Auto-Submitted"])
    assert sorted(by_parent) == [
        "<p-acme@example.test>", "<p-plain@example.test>",
        "<s-acme@example.test>", "<s-plain@example.test>",
    ]
    assert all(len(kinds) == 1 for kinds in by_parent.values())
    assert "(vacation)" in by_parent["<s-acme@example.test>"][0]  # Pigeonhole's
    assert "(vacation)" in by_parent["<s-plain@example.test>"][0]
    assert by_parent["<p-acme@example.test>"] == ["auto-replied"]  # Posta's
    assert by_parent["<p-plain@example.test>"] == ["auto-replied"]
    state = server_state(dovecot, mail_user)
    assert {f for f, _ in state["Preventivo due"]} == {"Clienti/Acme"}
    assert {f for f, _ in state["Offerta due"]} == {"Junk"}
    assert AutoReply.objects.get(message__subject="Offerta due").state == "skipped"


def test_without_date_the_reply_goes_up_and_comes_down_at_the_period_edges(
    dovecot_factory: Callable[..., DovecotServer], smtp_server: SmtpServer
) -> None:
    dovecot = dovecot_factory(extra_config="plugin {\n  sieve_extensions = -date\n}\n")
    mail_user = dovecot.add_user()
    account = make_sender(dovecot, smtp_server, mail_user)
    use_test_port(account, dovecot)
    now = timezone.now()
    autoreply_settings.do_save(account.user, {
        "enabled": True, "starts_at": now + timedelta(hours=1),
        "ends_at": now + timedelta(days=1), "all_day": False, "subject": "",
        "body_html": "<p>Back on Monday.</p>", "known_only": False, "days": 7, "aliases": "",
    }, [])

    def uploaded() -> str:
        server = sieve_upload.do_sync_server(account.pk)
        assert server is not None and server.runs_on_server
        assert "date" not in server.extensions
        client = Client(dovecot.host, dovecot.managesieve_port)
        assert client.connect(mail_user.name, mail_user.password, authmech="PLAIN")
        script: str = client.getscript(sieve_upload.SCRIPT_NAME)
        client.logout()
        return script

    assert "vacation :days" not in uploaded()
    assert not autoreply_handover.server_answered(account.pk, timezone.now())
    assert autoreply_sieve.uploads_due() == []

    # The period begins (moved, rather than waited for): the sweep finds the account.
    AutoReplySettings.objects.filter(user=account.user).update(
        starts_at=timezone.now()
    )
    assert autoreply_sieve.uploads_due() == [account.pk]
    assert "vacation :days" in uploaded()
    assert autoreply_handover.server_answered(account.pk, timezone.now())
    assert autoreply_sieve.uploads_due() == []

    # It ends: the reply comes out of the script and the server stops answering.
    AutoReplySettings.objects.filter(user=account.user).update(
        ends_at=timezone.now()
    )
    assert autoreply_sieve.uploads_due() == [account.pk]
    assert "vacation :days" not in uploaded()
    later = timezone.now() + autoreply_handover.MARGIN * 2
    assert not autoreply_handover.server_answered(account.pk, later)
    assert autoreply_sieve.uploads_due() == []
