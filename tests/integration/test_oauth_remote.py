"""OAuth2 accounts against real servers: Dovecot's oauth2 passdb and the test SMTP
server check every token at the local authorization server (RFC 7662).

An expired access token is refreshed by whoever connects, and the sync goes on; a
revoked grant pauses the account with "sign in again", and the mail it was to send
waits, not lost; two processes that need a refresh at once refresh once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from posta.accounts.models import Account, OAuthToken
from posta.core.crypto import unseal
from posta.delivery import sending
from posta.mail import outbox, outbox_sentences
from posta.mail.models import Message, OutgoingMessage
from posta.remote import connect, oauth, tokens
from posta.sync.account_pass import sync_account_once
from posta.sync.service import AccountWorker
from posta.sync.watchers import Timing
from tests.integration.test_scheduled_send import REPO, worker_env
from tests.integration.test_send import send_now, write
from tests.integration.test_sync_checker import message
from tests.oauth_setup import (
    OAuthMail,
    introspection_url,
    signed_in_account,
    start_oauth_mail,
)
from tests.servers.dovecot import DovecotServer
from tests.servers.oauth import OAuthServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)


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
    return start_oauth_mail(oauth_server, dovecot_factory, smtp_server)


def _expire(account: Account, mail: OAuthMail) -> None:
    """The access token ran out, for the authorization server and for Posta."""
    mail.oauth.expire_access_tokens()
    OAuthToken.objects.filter(account=account).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_imap_logs_in_with_oauthbearer_and_smtp_with_xoauth2(mail: OAuthMail) -> None:
    mail_user = mail.add_user()
    account = signed_in_account(mail, mail_user)
    session = connect.open_imap(account)
    connect.close(session)
    # Dovecot announces both; RFC 7628's OAUTHBEARER is preferred.
    assert f"user=<{mail_user.name}>, method=OAUTHBEARER" in mail.dovecot.log_tail(200)

    row = send_now(write(account, to=mail_user.address, subject="by token"))
    assert row.state == OutgoingMessage.State.SENT
    assert mail.smtp.oauth2_logins == [mail_user.name]  # the test server offers XOAUTH2 only
    assert mail.oauth.refresh_count() == 0  # the token was fresh


def test_imap_logs_in_with_xoauth2_where_only_that_is_announced(
    oauth_server: OAuthServer,
    dovecot_factory: Callable[..., DovecotServer],
    smtp_server: SmtpServer,
) -> None:
    mail = start_oauth_mail(oauth_server, dovecot_factory, smtp_server)
    mail.dovecot = dovecot_factory(
        oauth2_introspection_url=introspection_url(oauth_server), oauth2_mechanisms="xoauth2"
    )
    mail_user = mail.add_user()
    account = signed_in_account(mail, mail_user)
    session = connect.open_imap(account)
    connect.close(session)
    assert f"user=<{mail_user.name}>, method=XOAUTH2" in mail.dovecot.log_tail(200)
    # A token the server refuses: its error challenge is answered, and the login
    # fails as a refused login (then refreshed once, as for any early refusal).
    mail.oauth.revoke_access_tokens(mail_user.name)
    session = connect.open_imap(account)
    connect.close(session)
    assert mail.oauth.refresh_count() == 1
    assert "method=XOAUTH2" in mail.dovecot.log_tail(20)


def test_a_token_refused_before_its_time_is_refreshed_once(mail: OAuthMail) -> None:
    mail_user = mail.add_user()
    account = signed_in_account(mail, mail_user)
    mail.oauth.revoke_access_tokens(mail_user.name)  # the refresh token still works
    session = connect.open_imap(account)
    connect.close(session)
    assert mail.oauth.refresh_count() == 1


def test_sending_with_a_token_refused_before_its_time_refreshes_it_and_sends(
    mail: OAuthMail,
) -> None:
    mail_user = mail.add_user()
    account = signed_in_account(mail, mail_user)
    mail.oauth.revoke_access_tokens(mail_user.name)
    row = send_now(write(account, to=mail_user.address, subject="after an early refusal"))
    assert row.state == OutgoingMessage.State.SENT, (row.error_code, row.error_detail)
    assert mail.oauth.refresh_count() == 1
    (received,) = mail.smtp.messages
    assert received.authenticated_as == mail_user.name


def test_a_withdrawn_grant_at_login_is_sign_in_again_without_the_token_in_words(
    mail: OAuthMail, caplog: pytest.LogCaptureFixture
) -> None:
    mail_user = mail.add_user()
    account = signed_in_account(mail, mail_user)
    stored = OAuthToken.objects.get(account=account)
    secrets = [unseal(stored.access_secret), unseal(stored.refresh_secret)]
    mail.oauth.revoke_refresh_tokens(mail_user.name)  # the access token dies with it
    with caplog.at_level("DEBUG"), pytest.raises(oauth.SignInRequired) as caught:
        connect.open_imap(account)
    account.refresh_from_db()
    assert account.sync_state == Account.SyncState.PAUSED
    assert account.last_error_code == "oauth2_signin_required"
    for secret in secrets:
        assert secret not in str(caught.value)
        assert secret not in account.last_error_detail
        assert secret not in caplog.text


def test_an_expired_access_token_is_refreshed_and_the_sync_goes_on(mail: OAuthMail) -> None:
    mail_user = mail.add_user()
    account = signed_in_account(mail, mail_user)
    mail.dovecot.deliver(mail_user, message("before"))
    sync_account_once(account.pk)
    old = OAuthToken.objects.get(account=account)

    _expire(account, mail)
    mail.dovecot.deliver(mail_user, message("after expiry"))
    sync_account_once(account.pk)

    assert mail.oauth.refresh_count() == 1
    subjects = set(Message.objects.filter(user=account.user).values_list("subject", flat=True))
    assert subjects == {"before", "after expiry"}
    new = OAuthToken.objects.get(account=account)
    assert unseal(new.access_secret) != unseal(old.access_secret)
    # The provider rotates refresh tokens: the new one is stored, sealed.
    assert unseal(new.refresh_secret) != unseal(old.refresh_secret)
    assert new.expires_at is not None and new.expires_at > timezone.now() + timedelta(minutes=30)
    assert new.refresh_until is None and new.refresh_owner == ""
    account.refresh_from_db()
    assert account.sync_state != Account.SyncState.PAUSED


def test_a_token_close_to_expiry_is_refreshed_ahead(mail: OAuthMail) -> None:
    mail_user = mail.add_user()
    # Two minutes left: still good for the server, but inside REFRESH_AHEAD.
    account = signed_in_account(mail, mail_user, expires_in=120)
    session = connect.open_imap(account)
    connect.close(session)
    assert mail.oauth.refresh_count() == 1


def test_a_revoked_grant_pauses_the_account_and_sending_waits(mail: OAuthMail) -> None:
    mail_user = mail.add_user()
    account = signed_in_account(mail, mail_user)
    sync_account_once(account.pk)
    row = write(account, to=mail_user.address, subject="waits for sign-in")
    mail.oauth.revoke_refresh_tokens(mail_user.name)
    _expire(account, mail)

    # The sync service meets the refused refresh first.
    worker = AccountWorker(account.pk, timing=Timing())
    assert worker._connected_once() is None  # the thread ends: nothing to retry
    account.refresh_from_db()
    assert account.sync_state == Account.SyncState.PAUSED
    assert account.last_error_code == "oauth2_signin_required"

    # The message the user sends now waits and says why; nothing is lost.
    queued = outbox.check_send(row.user, row)
    assert queued.send_at is not None
    assert not sending.deliver(queued.pk, now=queued.send_at)  # the account is paused
    queued.refresh_from_db()
    assert queued.state == OutgoingMessage.State.QUEUED
    reason = outbox_sentences.waiting_reason(queued)
    assert "paused" in reason and "sign in again" in reason
    assert mail.smtp.messages == []

    # Sending itself meets the same refusal, and keeps the message for later.
    Account.objects.filter(pk=account.pk).update(sync_state=Account.SyncState.IDLE)
    assert sending.deliver(queued.pk, now=queued.send_at)
    queued.refresh_from_db()
    assert (queued.state, queued.error_code) == (
        OutgoingMessage.State.QUEUED,
        "oauth2_signin_required",
    )
    assert outbox_sentences.leads_to_settings(queued)
    account.refresh_from_db()
    assert account.sync_state == Account.SyncState.PAUSED


def test_no_token_means_sign_in_again(mail: OAuthMail) -> None:
    mail_user = mail.add_user()
    account = signed_in_account(mail, mail_user)
    OAuthToken.objects.filter(account=account).delete()
    with pytest.raises(oauth.SignInRequired):
        tokens.access_token(account)


_REFRESH_SCRIPT = """
import django, sys, time
django.setup()
from posta.accounts.models import Account
from posta.remote.tokens import access_token
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
print(access_token(Account.objects.get(pk=int(sys.argv[1]))))
"""


def test_two_processes_that_need_a_refresh_at_once_refresh_once(mail: OAuthMail) -> None:
    mail_user = mail.add_user()
    account = signed_in_account(mail, mail_user)
    _expire(account, mail)
    # The refresh takes a second, so the second process surely asks meanwhile.
    mail.oauth.refresh_delay = 1.0
    env = worker_env(DJANGO_SETTINGS_MODULE="posta.settings", POSTA_LOG_LEVEL="WARNING")
    start = time.time() + 3.0  # both have started Django by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _REFRESH_SCRIPT, str(account.pk), str(start)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
    printed = {out.decode().strip() for out, _err in outputs}

    assert mail.oauth.refresh_count() == 1
    stored = unseal(OAuthToken.objects.get(account=account).access_secret)
    assert printed == {stored}  # both use the one new token
    session = connect.open_imap(account)  # and it works
    connect.close(session)
