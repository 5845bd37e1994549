"""The sign-in flow through Posta's own pages (the test client) and the local
authorization server: the state is bound to the session that started the sign-in
and works once (RFC 6749 §10.12), the code flow uses PKCE S256 (RFC 7636), the
tokens are stored sealed, and nobody reaches another user's sign-in or the
administrator's provider pages."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Account, OAuthToken
from posta.core.crypto import unseal
from posta.users.models import User
from tests.oauth_setup import (
    OAuthMail,
    configure_custom_provider,
    consent_over_http,
    signed_in_account,
    start_oauth_mail,
)
from tests.servers.dovecot import DovecotServer
from tests.servers.oauth import OAuthServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

CALLBACK = "http://testserver/settings/accounts/signin/callback/"


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    with recorded_wakeups(sends=[]):
        yield


@pytest.fixture
def mail(
    oauth_server: OAuthServer,
    dovecot_factory: Callable[..., DovecotServer],
    smtp_server: SmtpServer,
) -> OAuthMail:
    # An installed Posta: an administrator exists (else every page leads to setup).
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    return start_oauth_mail(oauth_server, dovecot_factory, smtp_server, redirect_uris=[CALLBACK])


def _form(mail: OAuthMail, **extra: str) -> dict[str, str]:
    return {
        "account_type": "custom",
        "auth_method": "oauth2",
        "username": "",
        "imap_host": "127.0.0.1",
        "imap_port": str(mail.dovecot.imap_port),
        "imap_security": "none",
        "smtp_host": "127.0.0.1",
        "smtp_port": str(mail.smtp.port),
        "smtp_security": "none",
        "smtp_auth": "on",
        "signature_kind": "none",
        **extra,
    }


def _client(username: str) -> tuple[Client, User]:
    user = User.objects.create_user(username=username, password="pw-unused-123")
    client = Client()
    client.force_login(user)
    return client, user


def _callback_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_the_state_belongs_to_the_session_and_works_once(
    mail: OAuthMail, settings: Any
) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    configure_custom_provider(mail.oauth)
    mail_user = mail.add_user()
    client, user = _client("anna")
    intruder, _other = _client("mallory")

    started = client.post(reverse("account_new"), _form(mail, description="Sales"))
    assert started.status_code == 302
    authorize = started["Location"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
    assert authorize.startswith(f"{mail.oauth.url}/authorize?")
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [CALLBACK]
    assert not Account.objects.exists()  # nothing is saved before the sign-in
    back = _callback_path(consent_over_http(authorize, mail_user.name, mail_user.password))

    # Another session cannot use this answer (it would plant this mailbox on it).
    refused = intruder.get(back, follow=True)
    assert "was not started here" in refused.content.decode()
    assert not Account.objects.exists()

    done = client.get(back, follow=True)
    assert "Signed in and connected." in done.content.decode()
    account = Account.objects.get(user=user)
    assert account.username == mail_user.name and account.description == "Sales"
    token = OAuthToken.objects.get(account=account)
    assert unseal(token.refresh_secret) and token.refresh_secret != unseal(token.refresh_secret)
    assert mail.oauth.grants == ["authorization_code"]

    again = client.get(back, follow=True)  # the same answer a second time
    assert "already used" in again.content.decode()
    assert Account.objects.count() == 1


def test_a_denied_consent_changes_nothing(mail: OAuthMail, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    configure_custom_provider(mail.oauth)
    client, _user = _client("anna")
    started = client.post(reverse("account_new"), _form(mail))
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(started["Location"]).query)["state"][0]
    answer = client.get(reverse("oauth_callback"), {"error": "access_denied", "state": state},
                        follow=True)
    assert "did not grant access (access_denied)" in answer.content.decode()
    assert not Account.objects.exists()


def test_until_a_provider_is_set_up_the_account_tab_says_so(mail: OAuthMail) -> None:
    client, _user = _client("anna")
    answer = client.post(reverse("account_new"), _form(mail))
    assert answer.status_code == 200
    assert "an administrator must set it up first" in answer.content.decode()
    assert not Account.objects.exists()


def test_other_users_and_non_administrators_get_404(mail: OAuthMail) -> None:
    account = signed_in_account(mail, mail.add_user())
    client, _user = _client("mallory")
    assert client.post(reverse("account_signin_again", args=[account.pk])).status_code == 404
    assert client.get(reverse("admin_signin")).status_code == 404
    assert client.get(reverse("admin_signin_edit", args=["google"])).status_code == 404
    owner = Client()
    owner.force_login(account.user)
    assert owner.get(reverse("admin_signin_edit", args=["nobody"])).status_code == 404
    # The owner's own button leads to the provider.
    again = owner.post(reverse("account_signin_again", args=[account.pk]))
    assert again.status_code == 302 and again["Location"].startswith(mail.oauth.url)


def test_the_account_form_may_lead_to_the_provider_and_speaks_italian(mail: OAuthMail) -> None:
    configure_custom_provider(mail.oauth)
    client, _user = _client("anna")
    page = client.get(reverse("account_new"), HTTP_ACCEPT_LANGUAGE="it")
    # CSP form-action admits the provider's origin on this page only.
    assert f"form-action 'self' {mail.oauth.url}" in page["Content-Security-Policy"]
    text = page.content.decode()
    assert 'data-signin-label="Accedi con {provider}"' in text
    assert "non viene salvata alcuna password" in text
    other = client.get(reverse("profile"))
    assert mail.oauth.url not in other["Content-Security-Policy"]
