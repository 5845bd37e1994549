"""Every `next` a view follows stays on this site.

The views that redirect to a place named in the request: the Scheduled/Outbox
actions, the mail screen's actions without htmx, log in (also when already logged
in), log out and the language switch. Each gets the usual ways out of the site.
Last, the one read on GET pages that used to write: the company settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from posta.accounts.models import Account
from posta.mail import outbox_models
from posta.mail.models import OutgoingMessage
from posta.users.models import User
from posta.web.middleware import SetupMiddleware
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db

PASSWORD = "Redirect-Posta-26"
HOSTILE = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "http:///evil.example",
    " //evil.example/",
]


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    with recorded_wakeups():
        yield


@pytest.fixture
def user() -> User:
    User.objects.create_superuser("admin", password=PASSWORD)
    SetupMiddleware.set_ready()
    return User.objects.create_user(username="rita", password=PASSWORD)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def scheduled_row(user: User) -> OutgoingMessage:
    account = Account.objects.create(
        user=user, email="rita@example.test", username="rita", description="rita",
        is_main=True, imap_host="127.0.0.1", smtp_host="127.0.0.1",
    )
    when = timezone.now() + timedelta(days=1)
    return OutgoingMessage.objects.create(
        user=user, account=account, state=OutgoingMessage.State.SCHEDULED,
        to=[["", "bruno@example.test"]], subject="Later", send_at=when, scheduled_for=when,
        message_id=f"{outbox_models.new_draft_key()}.posta@example.test",
    )


def assert_stays(location: str, expected: str) -> None:
    assert location == expected
    assert "evil" not in location and not location.startswith(("//", "/\\", "javascript"))


@pytest.mark.parametrize("target", HOSTILE)
def test_scheduled_actions_never_follow_next_off_the_site(user: User, target: str) -> None:
    row = scheduled_row(user)
    client = logged_in(user)
    done = client.post(reverse("compose_act", args=[row.pk, "pause"]), {"next": target})
    assert_stays(done["Location"], reverse("compose_scheduled"))
    assert OutgoingMessage.objects.get(pk=row.pk).state == OutgoingMessage.State.PAUSED
    # The "changed meanwhile" answer follows `next` too.
    refused = client.post(reverse("compose_act", args=[row.pk, "pause"]), {"next": target})
    assert_stays(refused["Location"], reverse("compose_scheduled"))


def test_scheduled_actions_go_back_to_the_list_the_form_names(user: User) -> None:
    row = scheduled_row(user)
    client = logged_in(user)
    back = client.post(reverse("compose_act", args=[row.pk, "pause"]),
                       {"next": "compose_outbox"})
    assert back["Location"] == reverse("compose_outbox")
    on_site = client.post(reverse("compose_act", args=[row.pk, "resume"]), {"next": "/mail/"})
    assert on_site["Location"] == "/mail/"
    # A bare word is no URL name the form gives: never handed to reverse().
    word = client.post(reverse("compose_act", args=[row.pk, "pause"]), {"next": "logout"})
    assert word["Location"] == reverse("compose_scheduled")
    # Over HTTPS, a plain-HTTP URL of this very host is refused as well.
    secure = client.post(reverse("compose_act", args=[row.pk, "resume"]),
                         {"next": "http://testserver/mail/"}, secure=True)
    assert secure["Location"] == reverse("compose_scheduled")


@pytest.mark.parametrize("target", HOSTILE)
def test_mail_actions_without_htmx_never_follow_next_off_the_site(
    user: User, target: str
) -> None:
    client = logged_in(user)
    response = client.post(reverse("mail_act"), {"action": "seen", "ids": "1", "next": target})
    assert_stays(response["Location"], reverse("mail_index"))
    kept = client.post(reverse("mail_act"), {"action": "seen", "ids": "1",
                                             "next": "/mail/?m=1"})
    assert kept["Location"] == "/mail/?m=1"


@pytest.mark.parametrize("target", HOSTILE)
def test_login_never_follows_next_off_the_site(user: User, target: str) -> None:
    client = Client()
    response = client.post(
        reverse("login"), {"username": "rita", "password": PASSWORD, "next": target}
    )
    assert_stays(response["Location"], "/")
    # Already logged in, the login page leads on at once: to this site only.
    again = client.get(reverse("login"), {"next": target})
    assert_stays(again["Location"], "/")
    back = Client().post(
        reverse("login"), {"username": "rita", "password": PASSWORD, "next": "/compose/"}
    )
    assert back["Location"] == "/compose/"


@pytest.mark.parametrize("target", HOSTILE)
def test_logout_and_language_never_follow_next_off_the_site(user: User, target: str) -> None:
    client = logged_in(user)
    language = client.post(
        reverse("set_language"), {"language": "it", "next": target}, HTTP_REFERER=target
    )
    assert_stays(language["Location"], "/")
    out = client.post(reverse("logout"), {"next": target})
    assert_stays(out["Location"], reverse("login"))


def test_reading_company_settings_on_a_get_page_creates_no_row(user: User) -> None:
    """The editor reads the attachment limit; before the administrator saved the
    settings, that read shows the defaults and stores nothing."""
    from posta.accounts.models import CompanySettings

    scheduled_row(user)  # an account to write from
    CompanySettings.objects.all().delete()
    assert logged_in(user).get(reverse("compose_new")).status_code == 200
    assert not CompanySettings.objects.exists()
    admin = logged_in(User.objects.get(username="admin"))
    assert admin.get(reverse("admin_company")).status_code == 200
    assert not CompanySettings.objects.exists()
    saved = admin.post(reverse("admin_company"), {
        "company_name": "Acme", "company_signature": "", "allowed_mail_hosts": "",
        "max_attachment_mb": "7",
    })
    assert saved.status_code == 302
    assert CompanySettings.objects.get().max_attachment_mb == 7
    assert CompanySettings.load().company_name == "Acme"
