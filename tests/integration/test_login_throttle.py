"""Login throttling through the sign-in page: per user name, per address, the
administrator's unlock, both languages, and whose X-Forwarded-For is believed."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from posta.users import throttle
from posta.users.models import LoginThrottle, User
from posta.web.middleware import SetupMiddleware
from posta.web.security import client_address

pytestmark = pytest.mark.django_db

PASSWORD = "Giusta-Parola-26"
ADMIN_PASSWORD = "Amministra-26"
LOCKED_EN = "Too many failed sign-in attempts. Try again after"
LOCKED_IT = "Troppi tentativi di accesso non riusciti. Riprova dopo le"
WRONG_EN = "Please enter a correct"


@pytest.fixture(autouse=True)
def quick_hashes(settings: Any) -> None:
    """Dozens of sign-ins per test: a fast hasher (the throttle never sees hashes)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def anna() -> User:
    User.objects.create_superuser("admin", "admin@example.test", ADMIN_PASSWORD)
    SetupMiddleware.set_ready()
    return User.objects.create_user("anna", "anna@example.test", PASSWORD)


def sign_in(client: Client, username: str, password: str, **extra: Any) -> Any:
    return client.post(
        reverse("login"), {"username": username, "password": password}, **extra
    )


def signed_in_as(client: Client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id).username if user_id else None


def test_forty_wrong_passwords_then_the_right_one_is_refused_with_a_message(
    anna: User, client: Client
) -> None:
    answers = [sign_in(client, "anna", f"wrong-{n}") for n in range(40)]
    assert all(a.status_code in (200, 429) for a in answers)
    assert WRONG_EN in answers[0].content.decode()
    # The lock starts at the limit and every later attempt is refused outright.
    assert [a.status_code for a in answers].index(429) == 4
    assert all(a.status_code == 429 for a in answers[4:])
    right = sign_in(client, "anna", PASSWORD)
    assert right.status_code == 429
    assert LOCKED_EN in right.content.decode()
    assert signed_in_as(client) is None
    # Attempts while locked did not count: the count stopped at the limit.
    assert LoginThrottle.objects.get(kind="account", key="anna").failures == 5
    # The same name in other letters is the same name.
    assert sign_in(client, "ANNA", PASSWORD).status_code == 429


def test_the_administrator_unlocks_and_the_right_password_then_signs_in(
    anna: User, client: Client
) -> None:
    for n in range(6):
        sign_in(client, "anna", f"wrong-{n}")
    assert sign_in(client, "anna", PASSWORD).status_code == 429

    admin = Client()
    assert sign_in(admin, "admin", ADMIN_PASSWORD).status_code == 302
    page = admin.get(reverse("admin_users")).content.decode()
    assert 'data-lock="account:anna"' in page and "sign-in locked" in page
    assert 'data-lock="address:127.0.0.1"' not in page  # 6 failures: the address is open
    unlocked = admin.post(reverse("admin_login_unlock"), {"kind": "account", "key": "anna"})
    assert unlocked.status_code == 302
    assert "No sign-in is locked." in admin.get(reverse("admin_users")).content.decode()

    assert sign_in(client, "anna", PASSWORD).status_code == 302
    assert signed_in_as(client) == "anna"
    # Nobody but an administrator may unlock.
    assert client.post(
        reverse("admin_login_unlock"), {"kind": "account", "key": "anna"}
    ).status_code == 404


def test_many_names_from_one_address_lock_that_address_only(
    anna: User, client: Client, settings: Any
) -> None:
    settings.POSTA_LOGIN_ADDRESS_FAILURES = 12
    attacker = {"REMOTE_ADDR": "198.51.100.7"}
    for n in range(12):
        assert sign_in(client, f"guess{n}", "password", **attacker).status_code in (200, 429)
    refused = sign_in(client, "anna", PASSWORD, **attacker)
    assert refused.status_code == 429 and LOCKED_EN in refused.content.decode()
    # Anna herself, from her own address, is not affected.
    elsewhere = Client()
    assert sign_in(elsewhere, "anna", PASSWORD, REMOTE_ADDR="192.0.2.10").status_code == 302
    # The administrator sees the address and unlocks it.
    admin = Client()
    sign_in(admin, "admin", ADMIN_PASSWORD, REMOTE_ADDR="192.0.2.11")
    assert 'data-lock="address:198.51.100.7"' in admin.get(reverse("admin_users")).content.decode()
    admin.post(reverse("admin_login_unlock"), {"kind": "address", "key": "198.51.100.7"})
    assert sign_in(client, "anna", PASSWORD, **attacker).status_code == 302


def test_the_message_is_in_italian_for_an_italian_browser(anna: User) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="it")
    for n in range(5):
        sign_in(client, "anna", f"sbagliata-{n}")
    refused = sign_in(client, "anna", PASSWORD)
    assert refused.status_code == 429
    assert LOCKED_IT in refused.content.decode()


def test_a_right_password_starts_the_name_again_from_zero(anna: User, client: Client) -> None:
    for n in range(4):
        sign_in(client, "anna", f"wrong-{n}")
    assert sign_in(client, "anna", PASSWORD).status_code == 302
    client.logout()
    for n in range(4):
        assert sign_in(client, "anna", f"wrong-again-{n}").status_code == 200
    assert sign_in(client, "anna", PASSWORD).status_code == 302


def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(
    anna: User, settings: Any
) -> None:
    settings.POSTA_LOGIN_ADDRESS_FAILURES = 6
    client = Client()
    # Not configured: a client choosing its own X-Forwarded-For still counts as itself.
    for n in range(6):
        sign_in(client, f"who{n}", "x", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert sign_in(client, "anna", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429
    LoginThrottle.objects.all().delete()

    settings.POSTA_TRUSTED_PROXIES = ["127.0.0.1"]
    for n in range(6):
        sign_in(client, f"who{n}", "x", HTTP_X_FORWARDED_FOR="203.0.113.5, 127.0.0.1")
    assert LoginThrottle.objects.filter(kind="address", key="203.0.113.5").exists()
    assert not LoginThrottle.objects.filter(kind="address", key="127.0.0.1").exists()
    # Another client behind the same proxy signs in.
    other = sign_in(client, "anna", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert other.status_code == 302


def test_client_address_takes_the_rightmost_hop_that_is_not_a_proxy(settings: Any) -> None:
    factory = RequestFactory()
    settings.POSTA_TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1"]
    spoofed = "1.2.3.4, 203.0.113.9, 10.1.2.3"
    behind = factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=spoofed)
    assert client_address(behind) == "203.0.113.9"
    direct = factory.get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR=spoofed)
    assert client_address(direct) == "198.51.100.1"
    garbage = factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_address(garbage) == "127.0.0.1"
    settings.POSTA_TRUSTED_PROXIES = []
    assert client_address(behind) == "127.0.0.1"


def test_lockouts_double_up_to_the_maximum_and_quiet_time_forgets(settings: Any) -> None:
    settings.POSTA_LOGIN_ACCOUNT_FAILURES = 3
    settings.POSTA_LOGIN_ADDRESS_FAILURES = 1000
    settings.POSTA_LOGIN_LOCKOUT_SECONDS = 60
    settings.POSTA_LOGIN_LOCKOUT_MAX_SECONDS = 300
    settings.POSTA_LOGIN_FAILURE_WINDOW_SECONDS = 3600
    start = timezone.now()

    def fail(at: timedelta) -> None:
        throttle.do_record_failure(username="bruno", address="192.0.2.1", now=start + at)

    def until(at: timedelta) -> timedelta | None:
        when = throttle.locked_until(username="bruno", address="192.0.2.1", now=start + at)
        return None if when is None else when - start

    fail(timedelta(0))
    fail(timedelta(seconds=1))
    assert until(timedelta(seconds=2)) is None
    fail(timedelta(seconds=2))
    assert until(timedelta(seconds=3)) == timedelta(seconds=62)
    with pytest.raises(Exception, match="Too many failed sign-in attempts"):
        throttle.check_login_allowed(username="bruno", address="", now=start + timedelta(seconds=3))
    # Each failure after a lock locks again for twice as long, up to the maximum.
    fail(timedelta(seconds=70))
    assert until(timedelta(seconds=71)) == timedelta(seconds=70 + 120)
    fail(timedelta(seconds=200))
    assert until(timedelta(seconds=201)) == timedelta(seconds=200 + 240)
    fail(timedelta(seconds=500))
    assert until(timedelta(seconds=501)) == timedelta(seconds=500 + 300)
    # An hour of quiet after the last lock ended: the count starts again, and
    # counts of other names that went quiet are gone.
    throttle.do_record_failure(username="once", address="", now=start + timedelta(seconds=600))
    fail(timedelta(seconds=800 + 3601))
    assert until(timedelta(seconds=800 + 3602)) is None
    assert LoginThrottle.objects.get(kind="account", key="bruno").failures == 1
    assert not LoginThrottle.objects.filter(key="once").exists()


def test_the_command_line_unlocks_a_locked_out_administrator(client: Client) -> None:
    User.objects.create_superuser("boss", "boss@example.test", PASSWORD)
    SetupMiddleware.set_ready()
    for n in range(5):
        sign_in(client, "boss", f"wrong-{n}")
    assert sign_in(client, "boss", PASSWORD).status_code == 429
    out = io.StringIO()
    call_command("unlock_login", "--list", stdout=out)
    assert "account\tboss\t5" in out.getvalue()
    call_command("unlock_login", "Boss", stdout=out)
    assert "Boss: unlocked" in out.getvalue()
    assert sign_in(client, "boss", PASSWORD).status_code == 302
