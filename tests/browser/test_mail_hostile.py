"""Hostile mail in Chromium (issue 4): no script runs, and a local HTTP server that
counts requests hears nothing until "Show images", and then only from the proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.accounts.models import Account
from posta.mail.remote_images import USER_AGENT
from posta.sync.account_pass import sync_account_once
from tests.integration.test_mail_screen import CountingServer, setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-unused-123"


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.stop()


def proxied_account(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, counting_server: CountingServer
) -> Account:
    """A synced account whose image proxy may reach the counting server."""
    account = setup_account(dovecot, mail_user, settings)
    # The image proxy's own allowance for the loopback server (not the mail hosts').
    settings.POSTA_IMAGE_PROXY_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.POSTA_IMAGE_PROXY_PORTS = [counting_server.port]
    return account


def sign_in(page: Page, site: str, username: str) -> None:
    page.goto(f"{site}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def hostile_html(base: str) -> str:
    return f"""<html><head>
<meta http-equiv="refresh" content="0;url={base}/refresh">
<link rel="stylesheet" href="{base}/link.css">
<style>@import url({base}/import.css); body {{ background: url({base}/style-bg.png); }}</style>
<script>parent.document.title = "PWNED-script"; new Image().src = "{base}/script";</script>
</head><body onload="parent.document.title='PWNED-onload'">
<p>Hostile content</p>
<img src="{base}/pixel.png" onerror="parent.document.title='PWNED-onerror'">
<img srcset="{base}/srcset.png 1x">
<div style="background-image: url('{base}/inline-bg.png')">styled</div>
<svg onload="parent.document.title='PWNED-svg'"><image href="{base}/svg.png"/></svg>
<a id="js" href="jav&#x61;script:parent.document.title='PWNED-link'">click me</a>
<form action="{base}/form" method="post"><input name="q" value="x"><button>send</button></form>
<iframe src="{base}/iframe"></iframe>
<object data="{base}/object"></object>
</body></html>"""


def hostile_message(base: str) -> bytes:
    raw = message("Hostile offer", body="plain part\n", from_="Mallory <mallory@example.test>")
    msg = message_from_bytes(raw, policy=policy.default)
    msg.add_alternative(hostile_html(base), subtype="html")  # type: ignore[attr-defined]
    return bytes(msg.as_bytes())


def test_hostile_mail_runs_no_script_and_loads_nothing_until_allowed(
    page: Page,
    live_server: object,
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    counting_server: CountingServer,
) -> None:
    site = str(live_server)
    account = proxied_account(dovecot, mail_user, settings, counting_server)
    dovecot.deliver(mail_user, hostile_message(counting_server.url("")))
    sync_account_once(account.pk)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(page, site, account.user.username)
    page.locator("#msglist li.msg", has_text="Hostile offer").locator("a.open").click()
    frame_element = page.locator("iframe.body-frame")
    expect(frame_element).to_be_visible()
    frame = page.frame_locator("iframe.body-frame")
    expect(frame.locator("text=Hostile content")).to_be_visible()
    # Click what a victim would click: the javascript: link (now without its href).
    frame.get_by_text("click me").click(timeout=3000)
    expect(frame.locator("form, input, button, script, svg, iframe, object")).to_have_count(0)
    page.wait_for_timeout(1500)  # give a refresh, a script or a late image its chance

    assert "PWNED" not in page.title()
    assert dialogs == []
    assert counting_server.hits == []
    expect(page.locator(".remote-bar")).to_be_visible()

    page.get_by_role("button", name="Show images").click()
    expect(frame.locator("text=Hostile content")).to_be_visible()
    page.wait_for_timeout(1500)
    # Images now come, and only through the proxy (its own User-Agent, never the
    # browser's); nothing else the mail asked for was ever requested.
    assert counting_server.hits, "the allowed images were not fetched"
    assert set(counting_server.agents) == {USER_AGENT}
    allowed = {"/pixel.png", "/inline-bg.png", "/style-bg.png"}
    assert set(counting_server.hits) <= allowed
    assert "PWNED" not in page.title()
    assert dialogs == []
    assert re.search(r"/mail/u/inbox/", page.url)
