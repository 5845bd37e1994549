"""Posta's script on the test Dovecot through ManageSieve: uploaded and active;
a script the user made elsewhere is never destroyed (included where the server
can, and made active again when server filters are switched off); a rule the
server cannot run leaves the filters to Posta with the reason; a server without
ManageSieve is recorded as such."""

from __future__ import annotations

from typing import Any

import pytest
from sievelib.managesieve import Client

from posta.rules import sieve_upload
from posta.rules.filter_models import FilterServer
from posta.sync.account_pass import sync_account_once
from tests.filters_harness import (
    add_folders,
    save_rule,
    server_state,
    set_server_side,
    use_test_port,
)
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

OWN_SCRIPT = 'require "fileinto";\nif header :contains "subject" "mine" { fileinto "Copie"; }\n'


def _sieve(dovecot: DovecotServer, user: MailUser) -> Client:
    client = Client(dovecot.host, dovecot.managesieve_port)
    assert client.connect(user.name, user.password, authmech="PLAIN")
    return client


@pytest.fixture
def account(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> Any:
    add_folders(dovecot, mail_user)
    account = make_account(dovecot, mail_user, settings)
    use_test_port(account, dovecot)
    sync_account_once(account.pk)
    save_rule(account, "acme", [{"field": "from", "op": "contains", "value": "@acme.it"}],
              [{"kind": "move", "folder": "Clienti/Acme"}])
    return account


def test_the_script_is_uploaded_and_active(
    dovecot: DovecotServer, mail_user: MailUser, account: Any
) -> None:
    server = set_server_side(account, True)
    assert server.state == FilterServer.State.SERVER and server.runs_on_server
    assert "fileinto" in server.extensions
    client = _sieve(dovecot, mail_user)
    active, _names = client.listscripts()
    assert active == sieve_upload.SCRIPT_NAME
    assert 'fileinto "Clienti/Acme";' in client.getscript(sieve_upload.SCRIPT_NAME)
    client.logout()


def test_another_active_script_is_kept_and_included(
    dovecot: DovecotServer, mail_user: MailUser, account: Any
) -> None:
    client = _sieve(dovecot, mail_user)
    assert client.putscript("mine", OWN_SCRIPT) and client.setactive("mine")
    client.logout()
    server = set_server_side(account, True)
    assert server.state == FilterServer.State.SERVER
    assert server.other_script == "mine"
    dovecot.deliver(mail_user, message("mine too", from_="x@example.test"))
    dovecot.deliver(mail_user, message("acme one", from_="x@acme.it"))
    state = server_state(dovecot, mail_user)
    assert state["mine too"] == {("Copie", "")}  # the user's own rule ran
    assert state["acme one"] == {("Clienti/Acme", "")}

    # Switched off: the user's own script is active again, untouched.
    server = set_server_side(account, False)
    assert server.state == FilterServer.State.POSTA and not server.runs_on_server
    client = _sieve(dovecot, mail_user)
    active, names = client.listscripts()
    assert active == "mine"
    assert client.getscript("mine").strip() == OWN_SCRIPT.strip()
    client.logout()


def test_without_include_the_other_script_stays_and_posta_runs_the_filters(
    dovecot_factory: Any, settings: Any
) -> None:
    server_ = dovecot_factory(extra_config="plugin {\n  sieve_extensions = -include\n}\n")
    user = server_.add_user()
    add_folders(server_, user)
    account = make_account(server_, user, settings)
    use_test_port(account, server_)
    sync_account_once(account.pk)
    save_rule(account, "acme", [{"field": "from", "op": "contains", "value": "@acme.it"}],
              [{"kind": "move", "folder": "Clienti/Acme"}])
    client = _sieve(server_, user)
    assert client.putscript("mine", OWN_SCRIPT) and client.setactive("mine")
    client.logout()
    state = set_server_side(account, True)
    assert state.state == FilterServer.State.POSTA
    assert state.reason_code == "other_script" and state.reason_detail == "mine"
    client = _sieve(server_, user)
    assert client.listscripts()[0] == "mine"
    client.logout()


def test_a_rule_the_server_cannot_run_leaves_the_filters_to_posta(
    dovecot: DovecotServer, mail_user: MailUser, account: Any
) -> None:
    assert set_server_side(account, True).state == FilterServer.State.SERVER
    # Case-insensitive accented text needs i;unicode-casemap, which Pigeonhole lacks.
    save_rule(account, "città", [{"field": "subject", "op": "contains", "value": "Città"}],
              [{"kind": "flag"}])
    server = sieve_upload.do_sync_server(account.pk)
    assert server is not None
    assert server.state == FilterServer.State.POSTA
    assert server.reason_code == "missing_extensions"
    assert "comparator-i;unicode-casemap" in server.reason_detail
    client = _sieve(dovecot, mail_user)
    assert client.listscripts()[0] is None  # Posta's script no longer runs
    client.logout()


def test_no_managesieve_is_recorded(dovecot: DovecotServer, account: Any) -> None:
    FilterServer.objects.filter(account=account).update(port=1)
    server = sieve_upload.do_sync_server(account.pk)
    assert server is not None
    assert server.state == FilterServer.State.NONE and server.offered is False
    assert not server.runs_on_server
