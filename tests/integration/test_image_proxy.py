"""The remote-image proxy keeps its own rule: allowing a mail host (127.0.0.1 here, as
in development or for an on-premise server) does not let a sender's <img> reach that
machine's web services. Local HTTP servers count what reaches them."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Account, CompanySettings
from posta.mail.models import Message
from posta.mail.remote_images import ImageFetchError, ProxyRule, fetch_image
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_mail_screen import PNG, CountingServer, rich_message, setup_account
from tests.servers.dovecot import DovecotServer, MailUser


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a message queues its \\Seen flag; nothing consumes the queue here."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.stop()


class RedirectServer:
    """Answers every GET with a 302 to `target`, counting the requests."""

    def __init__(self, target: str) -> None:
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _proxied_urls(client: Client, account: Account, subject: str) -> list[str]:
    """The signed proxy URLs of a synced message's images, as its reader shows them."""
    sync_account_once(account.pk)
    msg = Message.objects.get(user=account.user, subject=subject)
    client.force_login(account.user)
    shown = client.get(reverse("mail_body", args=[msg.pk]) + "?images=1").content.decode()
    found = re.findall(r'src="http://testserver(/mail/img/[^"]+)"', shown)
    return [url.replace("&amp;", "&") for url in found]


@pytest.mark.django_db(transaction=True)
def test_an_allowed_mail_host_does_not_open_the_image_proxy(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    client: Client,
    counting_server: CountingServer,
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    # Both places a mail host can be allowed: the environment and Company settings.
    settings.POSTA_ALLOWED_MAIL_HOSTS = ["127.0.0.1", "localhost", "::1"]
    company = CompanySettings.load()
    assert "127.0.0.1" in company.allowed_hosts_list()
    port = counting_server.port
    images = [
        f"http://127.0.0.1:{port}/pixel.png",
        f"http://localhost:{port}/named.png",
        f"http://[::ffff:127.0.0.1]:{port}/mapped.png",
        f"http://[::ffff:0:127.0.0.1]:{port}/translated.png",
    ]
    html = "<p>Hello " + "".join(f'<img src="{src}">' for src in images) + "</p>"
    dovecot.deliver(mail_user, rich_message("proxy refuses", html))
    urls = _proxied_urls(client, account, "proxy refuses")
    assert len(urls) == len(images)

    # The default rule: public addresses, ports 80 and 443.
    for url in urls:
        assert client.get(url).status_code == 404, url
    # The proxy's own allowance for 127.0.0.1, still on its default ports.
    settings.POSTA_IMAGE_PROXY_ALLOWED_HOSTS = ["127.0.0.1"]
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert counting_server.hits == []

    # Allowed both ways, the image comes: the refusals above were the rule's doing.
    settings.POSTA_IMAGE_PROXY_PORTS = [80, 443, port]
    image = client.get(urls[0])
    assert image.status_code == 200 and image.content == PNG
    assert counting_server.hits == ["/pixel.png"]


@pytest.mark.django_db(transaction=True)
def test_a_redirect_is_held_to_the_same_rule(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    client: Client,
    counting_server: CountingServer,
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    redirect = RedirectServer(counting_server.url("/behind.png"))
    try:
        html = f'<p><img src="http://127.0.0.1:{redirect.port}/start.png"></p>'
        dovecot.deliver(mail_user, rich_message("proxy redirect", html))
        (url,) = _proxied_urls(client, account, "proxy redirect")
        settings.POSTA_IMAGE_PROXY_ALLOWED_HOSTS = ["127.0.0.1"]
        settings.POSTA_IMAGE_PROXY_PORTS = [redirect.port]
        assert client.get(url).status_code == 404
        assert redirect.hits == ["/start.png"]
        assert counting_server.hits == []  # the redirect's port is not the proxy's

        settings.POSTA_IMAGE_PROXY_PORTS = [redirect.port, counting_server.port]
        image = client.get(url)
        assert image.status_code == 200 and image.content == PNG
        assert counting_server.hits == ["/behind.png"]
    finally:
        redirect.stop()


def test_fetch_image_names_why_it_refused(counting_server: CountingServer) -> None:
    port = counting_server.port
    url = counting_server.url("/x.png")
    with pytest.raises(ImageFetchError) as info:
        fetch_image(url, rule=ProxyRule())
    assert info.value.code == "port_not_allowed"
    with pytest.raises(ImageFetchError) as info:
        fetch_image(url, rule=ProxyRule(ports=frozenset({port})))
    assert info.value.code == "host_not_allowed"
    for host in ("[::ffff:0:127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::1]"):
        with pytest.raises(ImageFetchError) as info:
            fetch_image(f"http://{host}:{port}/x.png", rule=ProxyRule(ports=frozenset({port})))
        assert info.value.code == "host_not_allowed", host
    assert counting_server.hits == []
    allowed = ProxyRule(allowed_hosts=("127.0.0.0/8",), ports=frozenset({port}))
    assert fetch_image(url, rule=allowed).data == PNG
    assert counting_server.hits == ["/x.png"]


def test_an_image_address_is_sent_encoded_as_a_browser_would(
    counting_server: CountingServer,
) -> None:
    """Mail names images with spaces and accents in their paths; the proxy asks for
    them percent-encoded, and leaves an address already encoded as it is."""
    allowed = ProxyRule(allowed_hosts=("127.0.0.0/8",), ports=frozenset({counting_server.port}))
    for path in ("/my logo.png?v=1 2", "/caf\u00e9.png", "/ready%20made.png"):
        assert fetch_image(counting_server.url(path), rule=allowed).data == PNG
    assert counting_server.hits == [
        "/my%20logo.png?v=1%202",
        "/caf%C3%A9.png",
        "/ready%20made.png",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "remote images in messages are never fetched from these hosts"),
        ("it", "le immagini remote dei messaggi non vengono mai scaricate da questi host"),
    ],
)
def test_company_settings_say_mail_hosts_do_not_open_images(
    client: Client, language: str, text: str
) -> None:
    admin = User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    admin.language = language
    admin.save()
    client.force_login(admin)
    page = client.get(reverse("admin_company"))
    assert page.status_code == 200
    assert text in " ".join(page.content.decode().split())
