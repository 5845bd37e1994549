"""Account rules that need no server: presets, defaults, main account, permissions."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from posta.accounts.models import Account, MailServer
from posta.accounts.presets import PRESETS
from posta.accounts.services import (
    apply_account_type,
    check_save_account,
    do_delete_account,
    do_make_main,
    sender_accounts,
)
from posta.core.errors import PostaError
from posta.users.models import User

pytestmark = pytest.mark.django_db


def make_user(name: str = "anna", *, admin: bool = False) -> User:
    return User.objects.create_user(name, f"{name}@example.test", "pw-12345678", is_staff=admin)


def make_account(user: User, username: str, **fields: object) -> Account:
    return Account.objects.create(
        user=user,
        username=username,
        email=username,
        description=username,
        imap_host="imap.example.test",
        **fields,
    )


def test_gmail_preset_fills_servers_and_ignores_typed_ones() -> None:
    account = Account(preset="gmail", imap_host="evil.example.test", imap_port=1, smtp_host="x")
    apply_account_type(account)
    assert (account.imap_host, account.imap_port, account.imap_security) == (
        "imap.gmail.com",
        993,
        "ssl",
    )
    assert (account.smtp_host, account.smtp_port, account.smtp_security) == (
        "smtp.gmail.com",
        465,
        "ssl",
    )


@pytest.mark.parametrize(
    ("code", "imap", "smtp"),
    [
        (
            "office365",
            ("outlook.office365.com", 993, "ssl"),
            ("smtp.office365.com", 587, "starttls"),
        ),
        ("yahoo", ("imap.mail.yahoo.com", 993, "ssl"), ("smtp.mail.yahoo.com", 465, "ssl")),
        ("aruba", ("imaps.aruba.it", 993, "ssl"), ("smtps.aruba.it", 587, "starttls")),
        ("pec_aruba", ("imaps.pec.aruba.it", 993, "ssl"), ("smtps.pec.aruba.it", 587, "starttls")),
        (
            "pec_legalmail",
            ("mbox.cert.legalmail.it", 993, "ssl"),
            ("sendm.cert.legalmail.it", 465, "ssl"),
        ),
    ],
)
def test_presets_match_the_reference(
    code: str, imap: tuple[object, ...], smtp: tuple[object, ...]
) -> None:
    preset = PRESETS[code]
    assert (preset.imap_host, preset.imap_port, preset.imap_security) == imap
    assert (preset.smtp_host, preset.smtp_port, preset.smtp_security) == smtp


def test_custom_smtp_on_a_preset_keeps_what_the_user_typed() -> None:
    account = Account(
        preset="aruba", smtp_custom=True, smtp_host="relay.example.test", smtp_port=25
    )
    apply_account_type(account)
    assert account.imap_host == "imaps.aruba.it"
    assert (account.smtp_host, account.smtp_port) == ("relay.example.test", 25)


def test_custom_type_keeps_every_server_field() -> None:
    account = Account(
        preset="custom", imap_host="mail.example.test", imap_port=143, imap_security="starttls"
    )
    apply_account_type(account)
    assert (account.imap_host, account.imap_port, account.imap_security) == (
        "mail.example.test",
        143,
        "starttls",
    )
    assert account.smtp_custom


def test_administrator_server_fills_the_account() -> None:
    server = MailServer.objects.create(
        name="Sede",
        imap_host="imap.sede.test",
        imap_port=143,
        imap_security="starttls",
        smtp_host="smtp.sede.test",
        smtp_port=25,
        smtp_security="none",
        smtp_auth=False,
    )
    account = Account(preset="server", server=server)
    apply_account_type(account)
    assert (account.imap_host, account.imap_port) == ("imap.sede.test", 143)
    assert (account.smtp_host, account.smtp_port, account.smtp_auth) == (
        "smtp.sede.test",
        25,
        False,
    )


def test_only_administrators_share_a_sender() -> None:
    user = make_user()
    with pytest.raises(PostaError) as caught:
        check_save_account(
            user,
            Account(preset="custom", imap_host="h", username="u"),
            password="x",
            smtp_password=None,
            make_main=False,
            shared_sender=True,
        )
    assert caught.value.code == "forbidden_shared_sender"
    assert not Account.objects.exists()


def test_an_oauth2_account_is_not_saved_before_its_sign_in() -> None:
    user = make_user()
    account = Account(preset="gmail", username="u@gmail.com", auth_method="oauth2")
    with pytest.raises(PostaError) as caught:
        check_save_account(
            user, account, password="x", smtp_password=None, make_main=False, shared_sender=False
        )
    assert caught.value.code == "oauth2_signin_needed"
    assert not Account.objects.exists()


def test_one_main_account_per_user_is_enforced_by_the_database() -> None:
    user = make_user()
    make_account(user, "a@example.test", is_main=True)
    with pytest.raises(IntegrityError):
        make_account(user, "b@example.test", is_main=True)


def test_making_another_account_main_clears_the_old_one() -> None:
    user = make_user()
    first = make_account(user, "a@example.test", is_main=True)
    second = make_account(user, "b@example.test")
    do_make_main(second)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_main, second.is_main) == (False, True)


def test_deleting_the_main_account_promotes_the_oldest_remaining() -> None:
    user = make_user()
    main = make_account(user, "a@example.test", is_main=True)
    oldest = make_account(user, "b@example.test")
    make_account(user, "c@example.test")
    do_delete_account(main)
    oldest.refresh_from_db()
    assert oldest.is_main
    assert Account.objects.filter(user=user, is_main=True).count() == 1


def test_shared_senders_are_offered_to_everyone_but_stay_their_owners() -> None:
    boss = make_user("boss", admin=True)
    clerk = make_user("clerk")
    shared = make_account(boss, "info@example.test", is_shared_sender=True)
    own = make_account(clerk, "clerk@example.test", is_main=True)
    assert sender_accounts(clerk) == [own, shared]
    assert shared.user == boss
