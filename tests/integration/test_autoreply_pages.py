"""The Out-of-office tab and the mail screen's banner, through Django's client."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from posta.accounts.models import Account
from posta.mail.models import Message
from posta.rules.autoreply_models import AutoReply, AutoReplySettings
from posta.users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def installed() -> None:
    """An administrator exists, so the pages do not send everyone to set-up."""
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")


def make_user(name: str) -> tuple[User, Account, Client]:
    user = User.objects.create_user(username=name, password="pw-unused-123")
    account = Account.objects.create(
        user=user, username=name, email=f"{name}@example.test", description=name,
        is_main=True, imap_host="mail.example.test",
    )
    client = Client()
    client.force_login(user)
    return user, account, client


def form(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "enabled": "on", "starts_at": "2026-12-20T09:00", "ends_at": "2027-01-07T18:00",
        "subject": "", "body_html": "<p>I am away.</p>", "days": "7", "aliases": "",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def test_the_tab_saves_and_the_banner_follows(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Rome"
    user, account, client = make_user("anna")
    page = client.get(reverse("autoreply"))
    assert page.status_code == 200
    assert b'aria-current="page">Out of office' in page.content
    now = timezone.localtime()
    start = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    end = (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    saved = client.post(reverse("autoreply"), form(
        starts_at=start, ends_at=end, accounts=str(account.pk),
        aliases="anna.rossi@example.test\n\n  sales@example.test ",
    ))
    assert saved.status_code == 302
    found = AutoReplySettings.objects.get(user=user)
    assert found.enabled and found.days == 7
    assert found.body_text.strip() == "I am away."
    assert found.alias_list() == ["anna.rossi@example.test", "sales@example.test"]
    assert list(found.accounts.all()) == [account]
    assert found.ends_at is not None and found.starts_at is not None
    assert found.ends_at - found.starts_at == timedelta(days=2, hours=1)

    mail = client.get(reverse("mail_index"), follow=True).content.decode()
    assert 'id="autoreply-banner"' in mail
    assert "Automatic replies are on until" in mail
    assert " style=" not in mail
    off = client.post(reverse("autoreply_off"), {"next": reverse("mail_index")})
    assert off.status_code == 302 and off["Location"] == reverse("mail_index")
    assert not AutoReplySettings.objects.get(user=user).enabled
    again = client.get(reverse("mail_index"), follow=True).content.decode()
    assert 'id="autoreply-banner"' not in again


def test_all_day_covers_whole_days_in_the_users_zone(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Rome"
    user, _account, client = make_user("bruno")
    saved = client.post(reverse("autoreply"), form(all_day="on"))
    assert saved.status_code == 302
    found = AutoReplySettings.objects.get(user=user)
    assert found.starts_at is not None and found.ends_at is not None
    start, end = timezone.localtime(found.starts_at), timezone.localtime(found.ends_at)
    assert (start.date().isoformat(), start.hour) == ("2026-12-20", 0)
    assert (end.date().isoformat(), end.hour) == ("2027-01-08", 0)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"ends_at": "2026-12-19T09:00"}, "The end must come after the start."),
        ({"days": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"aliases": "not an address"}, "not an address is not an email address."),
        ({"body_html": ""}, "Write the message people will receive."),
        ({"starts_at": "yesterday"}, "Enter a valid date/time."),
    ],
)
def test_bad_input_is_refused_in_words(overrides: dict[str, Any], words: str) -> None:
    user, _account, client = make_user("carla")
    page = client.post(reverse("autoreply"), form(**overrides))
    assert page.status_code == 200
    assert words in page.content.decode()
    assert not AutoReplySettings.objects.filter(user=user).exists()


def test_nothing_of_another_user_is_reachable() -> None:
    _one, theirs, _ = make_user("dario")
    user, _account, client = make_user("elena")
    page = client.post(reverse("autoreply"), form(accounts=str(theirs.pk)))
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    # Their out-of-office history never shows on my tab.
    message = Message.objects.create(
        user=_one, identity="x" * 20, subject="Their secret", date=timezone.now()
    )
    AutoReply.objects.create(user=_one, account=theirs, message=message, state="sent")
    assert "Their secret" not in client.get(reverse("autoreply")).content.decode()
    # Their switch is not mine: turning off leaves theirs alone.
    AutoReplySettings.objects.create(user=_one, enabled=True, body_html="<p>x</p>")
    client.post(reverse("autoreply_off"))
    assert AutoReplySettings.objects.get(user=_one).enabled


def test_the_switch_refuses_get_and_foreign_next() -> None:
    user, _account, client = make_user("fabio")
    AutoReplySettings.objects.create(user=user, enabled=True, body_html="<p>x</p>")
    assert client.get(reverse("autoreply_off")).status_code == 405
    answer = client.post(reverse("autoreply_off"), {"next": "https://evil.example/"})
    assert answer["Location"] == reverse("mail_index")
