"""The "List only" switch kept on the server for the user (issue 19): the mail
screen renders with it, bad input changes nothing, and it is the user's own."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.users.models import User
from tests.integration.test_mail_screen import setup_account
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db


def test_list_only_is_kept_for_the_user_and_rendered_by_the_server(
    client: Client, dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    anna = setup_account(dovecot, mail_user, settings).user
    bruno = User.objects.create_user("bruno", "bruno@example.test", "pw-unused-123")
    url = reverse("mail_list_only")
    client.force_login(anna)

    assert client.post(url, {"on": "1"}).status_code == 204
    anna.refresh_from_db()
    bruno.refresh_from_db()
    assert anna.list_only and not bruno.list_only
    page = client.get(reverse("mail_index"), follow=True).content.decode()
    assert 'list-only"' in page
    assert 'id="layout-switch" aria-pressed="true"' in page

    # A bad value is refused with a message and leaves the choice as it was.
    refused = client.post(url, {"on": "yes"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 400 and 'role="alert"' in refused.content.decode()
    anna.refresh_from_db()
    assert anna.list_only
    assert client.get(url).status_code == 405

    assert client.post(url, {"on": "0"}).status_code == 204
    anna.refresh_from_db()
    assert not anna.list_only
    page = client.get(reverse("mail_index"), follow=True).content.decode()
    assert 'id="layout-switch" aria-pressed="false"' in page and 'list-only"' not in page

    # Not signed in: sent to sign in, nothing changes.
    anonymous = Client()
    assert anonymous.post(url, {"on": "1"}).status_code == 302
    bruno.refresh_from_db()
    assert not bruno.list_only
