"""OAuth2 sign-in in Chromium: an administrator sets up the custom provider (the
redirect URI shown ready to copy), a user chooses OAuth2 on the Account tab, signs in
on the provider's login and consent page, and the account syncs and sends with the
tokens. When the provider withdraws the grant, the account says "Sign in again",
and the button does it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from posta.accounts.models import Account, OAuthProvider, OAuthToken
from posta.core.crypto import unseal
from posta.delivery import sending
from posta.mail import outbox
from posta.mail.models import Message, OutgoingMessage
from posta.sync.account_pass import sync_account_once
from posta.sync.service import AccountWorker
from posta.sync.watchers import Timing
from posta.users.models import User
from tests.integration.test_send import send_now, write
from tests.integration.test_sync_checker import message
from tests.oauth_setup import CLIENT_ID, CLIENT_SECRET, start_oauth_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.oauth import OAuthServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_PASSWORD = "Amministra-2026!"
USER_PASSWORD = "Utente-posta-2026!"


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    with recorded_wakeups(sends=[]):
        yield


def log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    expect(page).not_to_have_url(re.compile(r"/login/"))


def consent(page: Page, name: str, password: str) -> None:
    """The provider's own login and consent page."""
    expect(page.locator("h1")).to_have_text("Sign in to the test provider")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#allow")


def test_admin_sets_up_the_provider_and_a_user_signs_in_syncs_and_sends(
    new_page: Callable[..., Page],
    live_server: object,
    oauth_server: OAuthServer,
    dovecot_factory: Callable[..., DovecotServer],
    smtp_server: SmtpServer,
) -> None:
    base = str(live_server)
    callback = f"{base}/settings/accounts/signin/callback/"
    mail = start_oauth_mail(oauth_server, dovecot_factory, smtp_server, redirect_uris=[callback])
    mail_user = mail.add_user()
    User.objects.create_superuser("root", "root@example.test", ADMIN_PASSWORD)
    User.objects.create_user("anna", "anna@example.test", USER_PASSWORD)

    # The administrator: the user's Account tab says sign-in is not set up yet.
    admin = new_page(locale="en-US")
    log_in(admin, base, "root", ADMIN_PASSWORD)
    admin.goto(f"{base}/settings/accounts/new/")
    admin.select_option("#id_auth_method", "oauth2")
    expect(admin.locator("#oauth-unconfigured")).to_be_visible()
    admin.click("#oauth-setup-link")
    expect(admin).to_have_url(f"{base}/manage/signin/")
    admin.click("#provider-custom")
    expect(admin.locator("#redirect-uri")).to_have_value(callback)
    admin.fill("#id_name", "Example SSO")
    admin.fill("#id_client_id", CLIENT_ID)
    admin.fill("#id_client_secret", CLIENT_SECRET)
    admin.fill("#id_authorization_endpoint", f"{oauth_server.url}/authorize")
    admin.fill("#id_token_endpoint", f"{oauth_server.url}/token")
    admin.fill("#id_revocation_endpoint", f"{oauth_server.url}/revoke")
    admin.fill("#id_userinfo_endpoint", f"{oauth_server.url}/userinfo")
    admin.fill("#id_scopes", "openid email offline_access")
    admin.click("#provider-save")
    expect(admin.get_by_text("Sign-in provider saved.")).to_be_visible()
    provider = OAuthProvider.objects.get(kind="custom")
    assert provider.configured
    assert CLIENT_SECRET not in provider.client_secret_secret  # sealed
    assert unseal(provider.client_secret_secret) == CLIENT_SECRET
    admin.goto(f"{base}/manage/signin/custom/")
    assert CLIENT_SECRET not in admin.content()

    # The user: OAuth2 on a Custom account, no user name or password typed.
    page = new_page(locale="en-US")
    log_in(page, base, "anna", USER_PASSWORD)
    page.goto(f"{base}/settings/accounts/new/")
    page.select_option("#id_auth_method", "oauth2")
    expect(page.locator("#field-password")).to_be_hidden()
    save = page.locator("#account-save")
    expect(save).to_have_text("Sign in with Example SSO")
    page.fill("#id_imap_host", "127.0.0.1")
    page.fill("#id_imap_port", str(mail.dovecot.imap_port))
    page.select_option("#id_imap_security", "none")
    page.fill("#id_smtp_host", "127.0.0.1")
    page.fill("#id_smtp_port", str(mail.smtp.port))
    page.select_option("#id_smtp_security", "none")
    save.click()
    expect(page).to_have_url(re.compile(re.escape(oauth_server.url) + "/authorize"))
    assert "code_challenge_method=S256" in page.url
    consent(page, mail_user.name, mail_user.password)
    expect(page.get_by_text("Signed in and connected.")).to_be_visible()

    account = Account.objects.get(user__username="anna")
    assert account.auth_method == Account.AuthMethod.OAUTH2
    assert account.username == mail_user.name  # named by the provider (userinfo)
    assert account.password_secret == ""
    token = OAuthToken.objects.get(account=account)
    access = unseal(token.access_secret)
    assert access not in token.access_secret
    assert oauth_server.grants == ["authorization_code"]

    # It syncs and sends with the tokens.
    mail.dovecot.deliver(mail_user, message("hello over oauth"))
    sync_account_once(account.pk)
    assert Message.objects.filter(user=account.user, subject="hello over oauth").exists()
    row = send_now(write(account, to=mail_user.address, subject="sent over oauth"))
    assert row.state == OutgoingMessage.State.SENT
    (received,) = mail.smtp.messages
    assert received.authenticated_as == mail_user.name  # by XOAUTH2, the token checked

    # The grant is withdrawn: the account pauses and asks to sign in again.
    oauth_server.revoke_refresh_tokens(mail_user.name)
    OAuthToken.objects.filter(account=account).update(expires_at=token.refreshed_at)
    assert AccountWorker(account.pk, timing=Timing())._connected_once() is None
    # A message sent meanwhile meets the refusal too, and waits for the sign-in.
    waiting = outbox.check_send(account.user, write(account, to=mail_user.address,
                                                    subject="after the sign-in"))
    Account.objects.filter(pk=account.pk).update(sync_state=Account.SyncState.IDLE)
    assert sending.deliver(waiting.pk, now=waiting.send_at)
    waiting.refresh_from_db()
    assert waiting.state == OutgoingMessage.State.QUEUED
    assert waiting.error_code == "oauth2_signin_required"
    page.goto(f"{base}/settings/accounts/{account.pk}/")
    expect(page.locator(".status.error")).to_contain_text("sign in again")
    page.click("#signin-again")
    consent(page, mail_user.name, mail_user.password)
    expect(page.get_by_text("Signed in again: the account works again.")).to_be_visible()
    account.refresh_from_db()
    assert account.sync_state == Account.SyncState.NEW and account.last_error_code == ""
    sync_account_once(account.pk)
    # The waiting message leaves now, not at its next slow retry.
    waiting.refresh_from_db()
    assert waiting.send_at is not None and waiting.send_at <= timezone.now()
    assert sending.deliver(waiting.pk)
    waiting.refresh_from_db()
    assert waiting.state == OutgoingMessage.State.SENT

    # Removing the account revokes its refresh token at the provider (RFC 7009).
    refresh = unseal(OAuthToken.objects.get(account=account).refresh_secret)
    page.goto(f"{base}/settings/accounts/{account.pk}/delete/")
    expect(page.locator("#revoke-note")).to_be_visible()
    page.locator("form button.danger").click()
    expect(page.get_by_text("Account deleted.")).to_be_visible()
    assert oauth_server.revoked == [refresh]
    assert not Account.objects.filter(pk=account.pk).exists()
