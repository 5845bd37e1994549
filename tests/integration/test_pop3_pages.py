"""The POP3 tab's pages: each user sees and touches only their own sources (a
second user gets 404 for every URL of someone else's), "Fetch now" writes the wish
and wakes the worker after commit, and the state reads in words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Folder
from posta.core.errors import PostaError
from posta.rules.pop3_models import Pop3Source
from posta.rules.pop3_services import check_save_source
from posta.users.models import User
from tests.integration.pop3_setup import make_source, make_target
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.pop3 import Pop3Server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def woken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr("posta.rules.pop3_tasks.fetch_pop3_source", calls.append)
    return calls


def test_another_users_source_is_not_found(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any,
    pop3_factory: Callable[..., Pop3Server], woken: list[int],
) -> None:
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    server = pop3_factory()
    owner = make_target(dovecot, mail_user, settings)
    source = make_source(owner, host=server.host, port=server.port,
                         username=server.username, password="secret")
    other = make_target(dovecot, dovecot.add_user(), settings)
    client = Client()
    client.force_login(other.user)
    for name in ("pop3_edit", "pop3_delete", "pop3_fetch"):
        url = reverse(name, args=[source.pk])
        assert client.get(url).status_code in (404, 405), name
        assert client.post(url).status_code == 404, name
    assert server.username not in client.get(reverse("pop3_sources")).content.decode()
    assert server.username not in client.get(reverse("pop3_status")).content.decode()
    assert Pop3Source.objects.filter(pk=source.pk, fetch_requested_at__isnull=True).exists()
    assert woken == []
    # Nor can a source be pointed at someone else's folder.
    theirs = Folder.objects.get(account=owner)
    with pytest.raises(PostaError):
        check_save_source(other.user, Pop3Source(host=server.host, port=server.port,
                                                 security="none", username="x"),
                          folder=theirs, password="secret")


def test_fetch_now_and_the_state_in_words(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any,
    pop3_factory: Callable[..., Pop3Server], woken: list[int],
) -> None:
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    server = pop3_factory()
    account = make_target(dovecot, mail_user, settings)
    source = make_source(account, host=server.host, port=server.port,
                         username=server.username, password="secret")
    client = Client()
    client.force_login(account.user)
    assert client.post(reverse("pop3_fetch", args=[source.pk])).status_code == 302
    assert woken == [source.pk]
    Pop3Source.objects.filter(pk=source.pk).update(
        running=True, progress_done=3200, progress_total=10000, imported_count=3200,
        last_error_code="target_folder_missing", last_error_detail="imap:INBOX",
    )
    page = client.get(reverse("pop3_status"), HTTP_HX_REQUEST="true").content.decode()
    assert "Importing 3,200 of 10,000" in page
    assert 'hx-trigger="every 2s"' in page  # the page follows the import
    assert "is not in Office any more" in page
    italian = client.get(reverse("pop3_status"), HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert "Importazione di 3.200 su 10.000" in italian
    Pop3Source.objects.filter(pk=source.pk).update(running=False, fetch_requested_at=None)
    assert "hx-trigger" not in client.get(reverse("pop3_status")).content.decode()
