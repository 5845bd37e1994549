"""The Filters tab through its pages: saving, the summary line, the order, where
each filter runs, broken filters shown in the tab and on the folder list, the
reader's "Create a filter", apply to existing mail, and another user's ids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Folder
from posta.mail.models import Message, RemoteAction
from posta.rules import arrivals, scan
from posta.rules.filter_models import FilterRule
from posta.rules.models import ScanJob
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_mail_screen import setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    monkeypatch.setattr("posta.rules.tasks.enqueue_arrivals", lambda user_id: None)
    monkeypatch.setattr("posta.rules.tasks.enqueue_filter_servers", lambda ids: None)
    monkeypatch.setattr("posta.rules.tasks.on_scan_requested", lambda *a, **k: None)
    yield


@pytest.fixture
def world(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> dict[str, Any]:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Clienti")
    dovecot.create_folder(mail_user, "Clienti/Acme")
    dovecot.deliver(mail_user, message(
        "list mail", List_Id="Developers <dev.lists.example.test>"))
    sync_account_once(account.pk)
    client = Client()
    client.force_login(account.user)
    folders = {f.name: f for f in Folder.objects.filter(account=account)}
    return {"account": account, "client": client, "folders": folders,
            "dovecot": dovecot, "mail_user": mail_user}


def _post_rule(client: Client, folder: Folder, **extra: Any) -> Any:
    data = {
        "name": "Acme", "enabled": "1", "match": "all",
        "cond_field": ["from", ""], "cond_op": ["contains", "contains"],
        "cond_value": ["@acme.it", ""], "cond_header": ["", ""],
        "act_kind": ["move", ""], "act_folder": [str(folder.pk), ""],
        "act_address": ["", ""],
    }
    data.update(extra)
    return client.post(reverse("filter_new"), data)


def test_a_saved_filter_is_listed_with_its_summary_and_where_it_runs(
    world: dict[str, Any]
) -> None:
    client = world["client"]
    response = _post_rule(client, world["folders"]["Clienti/Acme"])
    assert response.status_code == 302
    page = client.get(reverse("filters")).content.decode()
    assert "From contains “@acme.it” → move to Clienti/Acme" in page
    assert "run by Posta" in page
    rule = FilterRule.objects.get()
    assert rule.conditions == [{"field": "from", "op": "contains", "value": "@acme.it"}]
    assert rule.actions == [{"kind": "move", "folder": "Clienti/Acme", "label": "Clienti/Acme"}]

    client.cookies["django_language"] = "it"
    italian = client.get(reverse("filters"), HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert "Filtri" in italian and "sposta in Clienti/Acme" in italian


def test_bad_rules_are_refused_in_words(world: dict[str, Any]) -> None:
    client = world["client"]
    folder = world["folders"]["Clienti"]
    cases = {
        "Give the filter a name.": {"name": ""},
        "A condition needs a value to look for.": {"cond_value": ["", ""]},
        "A filter needs at least one action.": {"act_kind": ["", ""]},
        "is not a header name": {"cond_field": ["header", ""], "cond_header": ["Bad:Name", ""]},
        "“is” cannot be used with Size.": {"cond_field": ["size", ""], "cond_op": ["is", ""]},
        "is not an email address": {"act_kind": ["forward", ""],
                                    "act_address": ["not an address", ""]},
    }
    for words, change in cases.items():
        response = _post_rule(client, folder, **change)
        assert response.status_code == 400, words
        assert words in response.content.decode(), words
    assert not FilterRule.objects.exists()


def test_up_down_and_drag_order(world: dict[str, Any]) -> None:
    client = world["client"]
    folder = world["folders"]["Clienti"]
    for name in ("one", "two", "three"):
        assert _post_rule(client, folder, name=name).status_code == 302
    ids = {r.name: r.pk for r in FilterRule.objects.all()}

    def order() -> list[str]:
        return list(FilterRule.objects.values_list("name", flat=True))

    client.post(reverse("filter_move", args=[ids["three"]]), {"direction": "up"})
    assert order() == ["one", "three", "two"]
    client.post(reverse("filter_move", args=[ids["one"]]), {"direction": "down"})
    assert order() == ["three", "one", "two"]
    client.post(reverse("filter_order"),
                {"ids": f"{ids['two']},{ids['three']},{ids['one']}"})
    assert order() == ["two", "three", "one"]
    client.post(reverse("filter_toggle", args=[ids["two"]]))
    assert not FilterRule.objects.get(pk=ids["two"]).enabled
    client.post(reverse("filter_delete", args=[ids["one"]]))
    assert order() == ["two", "three"]


def test_a_filter_whose_folder_is_gone_is_broken_in_the_tab_and_the_folder_list(
    world: dict[str, Any]
) -> None:
    client = world["client"]
    account = world["account"]
    _post_rule(client, world["folders"]["Clienti/Acme"])
    world["dovecot"].delete_folder(world["mail_user"], "Clienti/Acme")
    sync_account_once(account.pk)
    assert not Folder.objects.filter(account=account, name="Clienti/Acme").exists()

    page = client.get(reverse("filters")).content.decode()
    assert "broken" in page
    assert "The folder “Clienti/Acme” no longer exists" in page
    screen = client.get(reverse("mail_index"), follow=True).content.decode()
    assert "1 filter points to a folder that no longer exists." in screen
    folders_tab = client.get(reverse("account_folders", args=[account.pk])).content.decode()
    assert "1 filter points to a folder that no longer exists." in folders_tab

    # Posta's executor leaves the broken filter out: the message stays in INBOX.
    world["dovecot"].deliver(world["mail_user"], message("from acme", from_="x@acme.it"))
    sync_account_once(account.pk)
    arrivals.process_pending(account.user_id)
    new = Message.objects.get(subject="from acme")
    assert not RemoteAction.objects.filter(message=new).exists()


def test_create_a_filter_from_a_message_prefers_the_list_id(world: dict[str, Any]) -> None:
    client = world["client"]
    listed = Message.objects.get(subject="list mail")
    reader = client.get(reverse("mail_message", args=[listed.pk]), follow=True).content.decode()
    assert f"{reverse('filter_new')}?message={listed.pk}" in reader
    form = client.get(reverse("filter_new"), {"message": listed.pk}).content.decode()
    assert 'value="dev.lists.example.test"' in form
    assert 'value="List-Id"' in form

    world["dovecot"].deliver(world["mail_user"], message("plain", from_="Carla <c@acme.it>"))
    sync_account_once(world["account"].pk)
    plain = Message.objects.get(subject="plain")
    form = client.get(reverse("filter_new"), {"message": plain.pk}).content.decode()
    assert 'value="c@acme.it"' in form


def test_apply_to_existing_mail_shows_progress_and_can_be_cancelled(
    world: dict[str, Any]
) -> None:
    client = world["client"]
    inbox = world["folders"]["INBOX"]
    _post_rule(client, world["folders"]["Clienti"], cond_value=["alice@", ""])
    assert client.post(reverse("filter_scan"), {"folder": inbox.pk}).status_code == 302
    job = ScanJob.objects.get()
    assert job.total == Message.objects.filter(user=world["account"].user).count()
    status = client.get(reverse("filter_scan_status", args=[job.pk])).content.decode()
    assert f"0 of {job.total}" in status and 'hx-trigger="every 1s"' in status
    # A second scan of the same folder while one runs is refused in words.
    client.post(reverse("filter_scan"), {"folder": inbox.pk})
    assert ScanJob.objects.count() == 1
    assert scan.run_scan(job.pk) == ScanJob.State.DONE
    job.refresh_from_db()
    assert job.done == job.total and job.acted == job.total  # all from alice@
    status = client.get(reverse("filter_scan_status", args=[job.pk])).content.decode()
    assert f"{job.total} of {job.total}" in status and "every 1s" not in status

    # Cancelled before it ran: nothing is done.
    world["dovecot"].deliver(world["mail_user"], message("later"))
    sync_account_once(world["account"].pk)
    client.post(reverse("filter_scan"), {"folder": inbox.pk})
    second = ScanJob.objects.latest("id")
    client.post(reverse("filter_scan_cancel", args=[second.pk]))
    assert scan.run_scan(second.pk) == ScanJob.State.CANCELLED
    assert ScanJob.objects.get(pk=second.pk).done == 0


def test_another_user_gets_404_for_every_filter_url(world: dict[str, Any]) -> None:
    client = world["client"]
    _post_rule(client, world["folders"]["Clienti"])
    rule = FilterRule.objects.get()
    client.post(reverse("filter_scan"), {"folder": world["folders"]["INBOX"].pk})
    job = ScanJob.objects.get()
    listed = Message.objects.get(subject="list mail")
    other = User.objects.create_user(username="mallory", password="pw-unused-123")
    intruder = Client()
    intruder.force_login(other)
    gets = [
        reverse("filter_edit", args=[rule.pk]),
        reverse("filter_scan_status", args=[job.pk]),
        reverse("filter_new") + f"?message={listed.pk}",
    ]
    posts = [
        (reverse("filter_edit", args=[rule.pk]), {"name": "mine"}),
        (reverse("filter_delete", args=[rule.pk]), {}),
        (reverse("filter_toggle", args=[rule.pk]), {}),
        (reverse("filter_move", args=[rule.pk]), {"direction": "up"}),
        (reverse("filter_server", args=[world["account"].pk]), {"use_server": "0"}),
        (reverse("filter_scan"), {"folder": world["folders"]["INBOX"].pk}),
        (reverse("filter_scan_cancel", args=[job.pk]), {}),
    ]
    for url in gets:
        assert intruder.get(url).status_code == 404, url
    for url, data in posts:
        assert intruder.post(url, data).status_code == 404, url
    # A new rule of the intruder cannot point at the victim's folder.
    response = intruder.post(reverse("filter_new"), {
        "name": "steal", "cond_field": "from", "cond_op": "contains", "cond_value": "x",
        "act_kind": "move", "act_folder": str(world["folders"]["Clienti"].pk),
    })
    assert response.status_code == 400
    # Reordering with the victim's ids changes nothing of theirs.
    intruder.post(reverse("filter_order"), {"ids": str(rule.pk)})
    assert FilterRule.objects.get(pk=rule.pk).name == "Acme"
    assert "Acme" not in intruder.get(reverse("filters")).content.decode()
    assert not ScanJob.objects.filter(user=other).exists()
    assert FilterRule.objects.filter(pk=rule.pk, enabled=True).exists()
