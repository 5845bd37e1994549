"""The hostile corpus (tests/corpus/hostile_html) in the real reader, in Chromium.

Every vector of the DOMPurify, bleach and OWASP sets and the CSS loading set, and the
html5lib parser cases on foreign content, templates and raw text, is delivered in
batches, one message a batch, and each message is opened in the reader. Every
address the vectors name is pointed at a local HTTP server that counts requests.
Every request the browser makes, from the page, its frames or any popup, goes through
a route that lets only Posta's own origin through. Proven for each message: no
dialog, no console message (a script the sandbox stopped or a load the CSP refused
would log one), no request off Posta's origin, no request to the image proxy before
"Show images", none to the counting server but the proxy's own afterwards, no new
window, and the top page never navigated.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, Request, Route, expect

from posta.mail.remote_images import USER_AGENT
from posta.sync.account_pass import sync_account_once
from tests import hostile_corpus
from tests.browser.test_mail_hostile import counting_server, proxied_account, sign_in
from tests.integration.test_mail_screen import CountingServer, rich_message
from tests.servers.dovecot import DovecotServer, MailUser

__all__ = ["counting_server"]  # the fixture, for this module's test

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BATCH = 70
# Closes whatever a vector leaves open (a comment, a quote, a raw-text element), so
# that the next vector in the batch is read as markup, as it would be on its own.
RESET = (
    "\n<!-- -->\"'></title></textarea></style></script></xmp></noembed></noframes>"
    "</noscript></iframe></template></select></option></table></svg></math>\n<hr>\n"
)
# A named host, with its scheme if it has one: the counting server speaks plain HTTP,
# so an https address is pointed at it as http (else the proxy's fetch fails and the
# frame logs the proxy's 404, which says nothing about the sanitizer).
HOST = re.compile(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]+(?::\d+)?")
FOREIGN = ("<svg", "<math", "<template", "<noscript", "<style", "<script", "<plaintext")


def vectors() -> list[str]:
    chosen = []
    for ident, payload in hostile_corpus.load():
        if ident.startswith("html5lib") and not any(t in payload.lower() for t in FOREIGN):
            continue
        chosen.append(payload)
    return chosen


def batches(local: str) -> list[str]:
    """The vectors, every host pointed at `local`, in batches; `<plaintext>` (which
    nothing closes) only at the end of a batch."""
    def point(match: re.Match[str]) -> str:
        return ("http:" if match.group(1) else "") + "//" + local

    chosen = [HOST.sub(point, payload) for payload in vectors()]
    chosen.sort(key=lambda payload: "<plaintext" in payload.lower())
    out = []
    for start in range(0, len(chosen), BATCH):
        part = chosen[start : start + BATCH]
        part.sort(key=lambda payload: "<plaintext" in payload.lower())
        out.append(RESET.join(part))
    return out


class Watch:
    """Everything the browser does that the test may not allow."""

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.off_origin: list[str] = []
        self.proxied: list[str] = []
        self.popups: list[str] = []
        self.top_navigations: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.context.on("page", lambda popup: self.popups.append(popup.url))
        page.on("framenavigated", self._navigated)
        page.context.route("**/*", self._route)
        self.page = page

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def _navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.top_navigations.append(frame.url)

    def _route(self, route: Route, request: Request) -> None:
        url = request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.off_origin.append(url)
            route.abort()
            return
        if parts.path.startswith("/mail/img/"):
            self.proxied.append(url)
        route.continue_()


def test_the_corpus_runs_nothing_and_loads_nothing_in_the_reader(
    page: Page,
    live_server: object,
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    counting_server: CountingServer,
) -> None:
    site = str(live_server)
    account = proxied_account(dovecot, mail_user, settings, counting_server)
    local = f"127.0.0.1:{counting_server.port}"
    bodies = batches(local)
    for number, html in enumerate(bodies, start=1):
        dovecot.deliver(mail_user, rich_message(f"Corpus batch {number:02d}", html))
    sync_account_once(account.pk)

    watch = Watch(page, site.rstrip("/"))
    sign_in(page, site, account.user.username)
    expect(page.locator("#msglist li.msg").first).to_be_visible()
    assert not watch.console, watch.console  # the app's own pages are quiet

    shown_images = 0
    for number in range(1, len(bodies) + 1):
        subject = f"Corpus batch {number:02d}"
        proxied, hits = len(watch.proxied), len(counting_server.hits)
        page.locator("#msglist li.msg", has_text=subject).locator("a.open").click()
        frame = page.locator("iframe.body-frame")
        expect(frame).to_be_visible()
        expect(page.locator("#reader")).to_contain_text(subject)
        content = frame.element_handle().content_frame()
        assert content is not None
        content.wait_for_load_state("load")
        top = page.url
        navigations = len(watch.top_navigations)
        # What a victim would do: click the links whose javascript: or data: address
        # the sanitizer took away (an http link is the user's own way out).
        links = content.locator("a:not([href]):visible")
        for index in range(min(links.count(), 5)):
            links.nth(index).click(timeout=3000, force=True, no_wait_after=True)
        assert watch.proxied[proxied:] == [], (subject, watch.proxied[proxied:][:5])
        assert counting_server.hits[hits:] == [], (subject, counting_server.hits[hits:][:5])

        show = page.get_by_role("button", name="Show images")
        if show.count():
            show.click()
            shown_images += 1
            content.wait_for_url(re.compile(r"[?&]images=1"))
            content.wait_for_load_state("load")
        assert page.url == top and len(watch.top_navigations) == navigations, subject
        assert watch.dialogs == [], (subject, watch.dialogs)
        assert watch.console == [], (subject, watch.console[:5])
        assert watch.off_origin == [], (subject, watch.off_origin[:5])
        assert watch.popups == [], (subject, watch.popups)

    assert shown_images, "no batch had remote images to show"
    # Once shown, the images came through the proxy only: its User-Agent, never the
    # browser's; the browser itself never asked the counting server for anything.
    expect(page.locator("iframe.body-frame")).to_be_visible()
    assert watch.proxied, "Show images asked the proxy for nothing"
    assert set(counting_server.agents) <= {USER_AGENT}
