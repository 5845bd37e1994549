"""Saving an account tests it against real servers and applies the account rules."""

from __future__ import annotations

import pytest
from django.utils import translation

from posta.accounts.models import Account, CompanySettings, Folder
from posta.accounts.services import (
    account_error_message,
    check_save_account,
    do_set_folder_roles,
    missing_roles,
)
from posta.core.crypto import unseal
from posta.users.models import User
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def allow_loopback() -> None:
    CompanySettings.objects.update_or_create(pk=1, defaults={"allowed_mail_hosts": "127.0.0.1"})


def custom_account(dovecot: DovecotServer, smtp: SmtpServer, mail_user: MailUser) -> Account:
    return Account(
        preset="custom",
        username=mail_user.name,
        imap_host="127.0.0.1",
        imap_port=dovecot.imap_port,
        imap_security="none",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_auth=True,
    )


def save(user: User, account: Account, password: str, **options: bool) -> object:
    return check_save_account(
        user,
        account,
        password=password,
        smtp_password=None,
        make_main=options.get("make_main", False),
        shared_sender=False,
        save_anyway=options.get("save_anyway", False),
    )


def test_good_account_is_saved_with_defaults_folders_and_roles(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_user = dovecot.add_user()
    for name in ("Sent", "Drafts", "Trash", "Junk", "Clienti/Rossi"):
        dovecot.create_folder(mail_user, name)
    smtp_server.require_auth(mail_user.name, mail_user.password)
    user = User.objects.create_user("anna", "anna@example.test", "pw-12345678")

    outcome = save(user, custom_account(dovecot, smtp_server, mail_user), mail_user.password)

    assert outcome.saved and not outcome.errors
    account = Account.objects.get(user=user)
    assert account.email == mail_user.name and account.description == mail_user.name
    assert account.is_main
    assert mail_user.password not in account.password_secret
    assert unseal(account.password_secret) == mail_user.password
    roles = dict(
        Folder.objects.filter(account=account).exclude(role="").values_list("role", "name")
    )
    assert roles == {
        "inbox": "INBOX",
        "sent": "Sent",
        "drafts": "Drafts",
        "trash": "Trash",
        "spam": "Junk",
    }
    names = set(Folder.objects.filter(account=account).values_list("display_name", flat=True))
    assert "Clienti/Rossi" in names
    assert missing_roles(account) == []

    second_user = dovecot.add_user()
    smtp_server.require_auth(second_user.name, second_user.password)
    save(user, custom_account(dovecot, smtp_server, second_user), second_user.password)
    assert Account.objects.filter(user=user, is_main=True).count() == 1
    assert Account.objects.get(username=second_user.name).is_main is False


def test_wrong_password_is_not_saved_unless_asked_and_then_shows_its_error(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_user = dovecot.add_user()
    smtp_server.require_auth(mail_user.name, mail_user.password)
    user = User.objects.create_user("bea", "bea@example.test", "pw-12345678")

    with translation.override("en"):
        outcome = save(user, custom_account(dovecot, smtp_server, mail_user), "wrong")
    assert not outcome.saved
    assert any("refused the user name or password" in e for e in outcome.errors)
    assert not Account.objects.exists()

    outcome = save(user, custom_account(dovecot, smtp_server, mail_user), "wrong", save_anyway=True)
    assert outcome.saved
    account = Account.objects.get(user=user)
    assert account.sync_state == Account.SyncState.ERROR
    with translation.override("it"):
        message = account_error_message(account)
    assert "127.0.0.1" in message and "wrong" not in message


def test_user_mapping_survives_a_new_folder_listing(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_user = dovecot.add_user()
    for name in ("Posta inviata", "Bozze", "Cestino", "Archivio 2025"):
        dovecot.create_folder(mail_user, name)
    smtp_server.require_auth(mail_user.name, mail_user.password)
    user = User.objects.create_user("carla", "carla@example.test", "pw-12345678")
    account = custom_account(dovecot, smtp_server, mail_user)
    save(user, account, mail_user.password)
    roles = dict(
        Folder.objects.filter(account=account).exclude(role="").values_list("role", "name")
    )
    assert roles == {
        "inbox": "INBOX",
        "sent": "Posta inviata",
        "drafts": "Bozze",
        "trash": "Cestino",
    }

    archive = Folder.objects.get(account=account, name="Archivio 2025")
    do_set_folder_roles(account, {"archive": archive.pk, "drafts": None})
    assert missing_roles(account) == ["drafts"]

    # Saving again lists the folders again; the user's choices stay.
    save(user, Account.objects.get(pk=account.pk), mail_user.password)
    roles = dict(
        Folder.objects.filter(account=account).exclude(role="").values_list("role", "name")
    )
    assert roles["archive"] == "Archivio 2025"
    assert "drafts" not in roles
