"""Behind HTTPS: Secure session and CSRF cookies and HSTS on HTTPS requests, the
proxy's X-Forwarded-Proto believed only when configured, plain HTTP still working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.users.models import User
from posta.web.middleware import SetupMiddleware

pytestmark = pytest.mark.django_db

PASSWORD = "Sicura-Parola-26"


@pytest.fixture
def carla() -> User:
    User.objects.create_superuser("admin", "admin@example.test", "Amministra-26")
    SetupMiddleware.set_ready()
    return User.objects.create_user("carla", "carla@example.test", PASSWORD)


def log_in(client: Client, **extra: Any) -> Any:
    client.get(reverse("login"), **extra)  # the CSRF cookie, as a browser gets it
    return client.post(
        reverse("login"), {"username": "carla", "password": PASSWORD}, **extra
    )


def test_over_https_the_cookies_are_secure_and_hsts_is_sent(carla: User) -> None:
    client = Client(enforce_csrf_checks=False)
    page = client.get(reverse("login"), secure=True)
    assert page.cookies["csrftoken"]["secure"] is True
    assert page["Strict-Transport-Security"].startswith("max-age=31536000")
    answer = client.post(
        reverse("login"), {"username": "carla", "password": PASSWORD}, secure=True
    )
    assert answer.status_code == 302
    assert answer.cookies["sessionid"]["secure"] is True
    assert answer.cookies["sessionid"]["httponly"] is True
    assert "Strict-Transport-Security" in answer
    chosen = client.post(reverse("set_language"), {"language": "it"}, secure=True)
    assert chosen.cookies["django_language"]["secure"] is True


def test_plain_http_in_development_still_works(carla: User) -> None:
    client = Client()
    answer = log_in(client)
    assert answer.status_code == 302
    assert answer.cookies["sessionid"]["secure"] == ""
    assert "Strict-Transport-Security" not in answer
    assert client.get(reverse("profile")).status_code == 200


def test_behind_a_configured_proxy_x_forwarded_proto_marks_https(
    carla: User, settings: Any
) -> None:
    settings.POSTA_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()
    answer = log_in(client, HTTP_X_FORWARDED_PROTO="https")
    assert answer.status_code == 302
    assert answer.cookies["sessionid"]["secure"] is True
    assert "Strict-Transport-Security" in answer
    plain = Client().get(reverse("login"), HTTP_X_FORWARDED_PROTO="http")
    assert "Strict-Transport-Security" not in plain
    assert plain.cookies["csrftoken"]["secure"] == ""


def test_posta_secure_cookies_makes_them_secure_even_on_plain_http(
    carla: User, settings: Any
) -> None:
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    answer = log_in(Client())
    assert answer.cookies["sessionid"]["secure"] is True


def settings_from(environment: dict[str, str]) -> dict[str, Any]:
    """The HTTPS settings a process started with this environment computes."""
    script = (
        "import json, posta.settings as s; print(json.dumps({"
        "'proxy': getattr(s, 'SECURE_PROXY_SSL_HEADER', None),"
        "'trusted': s.POSTA_TRUSTED_PROXIES, 'hsts': s.SECURE_HSTS_SECONDS,"
        "'subdomains': s.SECURE_HSTS_INCLUDE_SUBDOMAINS, 'secure': s.SESSION_COOKIE_SECURE,"
        "'csrf_secure': s.CSRF_COOKIE_SECURE, 'redirect': s.SECURE_SSL_REDIRECT}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTA_HSTS", "POSTA_SECURE",
                                                                    "POSTA_TRUSTED", "POSTA_SSL"))}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env | environment, check=True,
        capture_output=True, text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_environment_configures_proxy_cookies_and_hsts() -> None:
    default = settings_from({})
    assert default["proxy"] is None and default["trusted"] == []
    assert default["hsts"] == 31536000 and default["secure"] is False
    assert default["redirect"] is False
    behind = settings_from({
        "POSTA_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8",
        "POSTA_SECURE_COOKIES": "1",
        "POSTA_HSTS_SECONDS": "600",
        "POSTA_HSTS_INCLUDE_SUBDOMAINS": "yes",
        "POSTA_SSL_REDIRECT": "1",
    })
    assert behind["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert behind["trusted"] == ["127.0.0.1", "10.0.0.0/8"]
    assert behind["secure"] is True and behind["csrf_secure"] is True
    assert behind["hsts"] == 600 and behind["subdomains"] is True
    assert behind["redirect"] is True
