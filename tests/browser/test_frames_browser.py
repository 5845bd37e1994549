"""Message bodies sized to their content (issue 19): in the reader, in a
conversation's several frames, in a shared conversation, after remote images are
allowed, on resize and on a phone; without script the frame keeps its fixed
height. The frame is same-origin for the page's script to measure it, so the
hostile test here shows that nothing inside still runs or navigates the page,
even when the sanitizer is bypassed and the raw HTML reaches the frame."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from posta.accounts.models import Account
from posta.mail.models import Message, Thread
from posta.shares.models import Access
from posta.shares.services import do_share
from posta.sync.account_pass import sync_account_once
from tests.browser.test_csp_browser import Violations
from tests.browser.test_mail_browser import log_in, row
from tests.browser.test_mail_hostile import hostile_html
from tests.integration.test_mail_screen import CountingServer, rich_message, setup_account
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
TALL = "".join(f"<p>Riga {n} del preventivo, con un po' di testo per andare a capo.</p>"
               for n in range(120))  # fmt: skip
SHORT = "<p>Grazie, a presto.</p>"

# The frame's element height against its document's: (frame box, root box,
# root scrollHeight, root clientHeight).
MEASURE = """frame => {
  if (!frame.contentDocument) { return [0, -100, 0, 0]; }  // not loaded yet
  const root = frame.contentDocument.documentElement;
  return [frame.clientHeight, root.getBoundingClientRect().height,
          root.scrollHeight, root.clientHeight];
}"""


def fits(frame: Locator) -> None:
    """The frame is as tall as its content: no scrollbar inside, no empty space."""
    expect(frame).to_have_class("body-frame fitted")

    def measured() -> bool:
        inner, content, scroll, client = frame.evaluate(MEASURE)
        return abs(inner - content) <= 2 and scroll <= client + 1

    page = frame.page
    for _ in range(100):  # layout settles as the images and the fonts arrive
        if measured():
            return
        page.wait_for_timeout(100)
    assert measured(), frame.evaluate(MEASURE)


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.stop()


def synced(dovecot: DovecotServer, mail_user: MailUser, settings: Any, *mails: bytes) -> Account:
    account = setup_account(dovecot, mail_user, settings)
    for mail in mails:
        dovecot.deliver(mail_user, mail)
    sync_account_once(account.pk)
    return account


def height(frame: Locator) -> float:
    return float(frame.evaluate("frame => frame.clientHeight"))


def test_reader_frames_fit_tall_and_short_bodies_on_resize_and_on_a_phone(
    new_page: Callable[..., Page],
    live_server: object,
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
) -> None:
    site = str(live_server)
    account = synced(dovecot, mail_user, settings, rich_message("Lungo", f"<div>{TALL}</div>"),
                     rich_message("Breve", SHORT))  # fmt: skip
    page = new_page(viewport=DESKTOP)
    violations = Violations(page)
    log_in(page, site, account.user.username)

    row(page, "Lungo").locator("a.open").click()
    frame = page.locator("#reader iframe.body-frame")
    expect(page.frame_locator("#reader iframe.body-frame").get_by_text("Riga 119")).to_be_attached()
    fits(frame)
    wide = height(frame)
    assert wide > 1500  # 120 paragraphs are not squeezed into a fixed box

    # A narrower window wraps the lines: the frame grows with them.
    page.set_viewport_size({"width": 900, "height": 900})
    fits(frame)
    assert height(frame) > wide

    row(page, "Breve").locator("a.open").click()
    expect(page.frame_locator("#reader iframe.body-frame").get_by_text("a presto")).to_be_visible()
    frame = page.locator("#reader iframe.body-frame")
    fits(frame)
    assert height(frame) < 120  # one line: no empty space under it
    violations.assert_none("reader frames")

    phone = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(phone, site, account.user.username)
    tall = Message.objects.get(user=account.user, subject="Lungo")
    phone.goto(f"{site}/mail/m/{tall.pk}/")
    phone.wait_for_load_state("load")
    frame = phone.locator("iframe.body-frame")
    fits(frame)
    assert height(frame) > wide
    box = frame.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1

    # Without script: the fixed height of the style sheet (24rem at least), and
    # the long body scrolls inside it.
    still = new_page(viewport=DESKTOP, java_script_enabled=False)
    log_in(still, site, account.user.username)
    still.goto(f"{site}/mail/m/{tall.pk}/")
    still.wait_for_load_state("load")
    frame = still.locator("iframe.body-frame")
    expect(frame).to_be_visible()
    expect(frame).not_to_have_class("body-frame fitted")
    assert 380 <= height(frame) < 1500


def test_conversation_and_shared_frames_fit_each_body(
    page: Page,
    live_server: object,
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
) -> None:
    site = str(live_server)
    account = setup_account(dovecot, mail_user, settings)
    user = account.user
    user.thread_view = True
    user.save()
    dovecot.deliver(mail_user, rich_message("Offerta", f"<div>{TALL}</div>"))
    answer_mail = message_from_bytes(
        rich_message("Re: Offerta", SHORT, sender="Bob <bob@example.test>"), policy=policy.default
    )
    answer_mail["In-Reply-To"] = answer_mail["References"] = "<Offerta@example.test>"
    dovecot.deliver(mail_user, answer_mail.as_bytes())
    sync_account_once(account.pk)
    first = Message.objects.get(user=user, subject="Offerta")
    answer = Message.objects.get(user=user, subject="Re: Offerta")
    assert first.thread_id == answer.thread_id
    page.set_viewport_size(DESKTOP)
    violations = Violations(page)
    log_in(page, site, user.username)

    thread = Thread.objects.get(pk=first.thread_id)
    page.goto(f"{site}/mail/t/{thread.pk}/")
    page.wait_for_load_state("load")
    frames = page.locator(".conversation iframe.body-frame")
    expect(frames).to_have_count(2)
    heights = []
    for index in range(2):
        fits(frames.nth(index))
        heights.append(height(frames.nth(index)))
    assert max(heights) > 1500 and min(heights) < 120

    share = do_share(user, answer, people=[], access=Access.READ)
    page.goto(f"{site}/mail/s/shared/?share={share.pk}")
    page.wait_for_load_state("load")
    frames = page.locator("#reader-share iframe.body-frame")
    expect(frames).to_have_count(2)
    for index in range(2):
        fits(frames.nth(index))
    violations.assert_none("conversation frames")


def test_allowed_remote_images_grow_the_frame(
    page: Page,
    live_server: object,
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    counting_server: CountingServer,
) -> None:
    site = str(live_server)
    settings.POSTA_IMAGE_PROXY_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.POSTA_IMAGE_PROXY_PORTS = [counting_server.port]
    picture = counting_server.url("/banner.png")
    body = f'<p>Prima</p><img src="{picture}" style="width: 400px" alt=""><p>Dopo</p>'
    account = synced(dovecot, mail_user, settings, rich_message("Newsletter", body))
    page.set_viewport_size(DESKTOP)
    log_in(page, site, account.user.username)
    row(page, "Newsletter").locator("a.open").click()
    frame = page.locator("#reader iframe.body-frame")
    expect(page.frame_locator("#reader iframe.body-frame").get_by_text("Dopo")).to_be_visible()
    fits(frame)
    before = height(frame)

    page.get_by_role("button", name="Show images").click()
    expect(page.frame_locator("#reader iframe.body-frame").locator("img")).to_have_count(1)
    for _ in range(100):
        if height(frame) >= before + 300:
            break
        page.wait_for_timeout(100)
    fits(frame)
    assert height(frame) >= before + 300  # the 400-pixel picture is inside the frame
    assert counting_server.hits == ["/banner.png"]


HOSTILE_EXTRA = """
<base href="{base}/based/">
<a id="top" href="{base}/top" target="_top">top link</a>
<svg><script>parent.document.title = "PWNED-svg-script"</script></svg>
<div style="width: expression(parent.document.title='PWNED-expr')">expression</div>
<math><a href="javascript:parent.document.title='PWNED-math'">math link</a></math>
<form action="{base}/top-form" target="_top"><button id="go">go</button></form>
<iframe srcdoc="<script>parent.parent.document.title='PWNED-srcdoc'</script>"></iframe>
<img src="x" onerror="top.location='{base}/onerror'">
<script>top.location = "{base}/script-nav"; parent.document.body.innerHTML = "PWNED";</script>
"""


def test_hostile_bodies_run_nothing_even_unsanitized_in_the_same_origin_frame(
    page: Page,
    live_server: object,
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    counting_server: CountingServer,
) -> None:
    site = str(live_server)
    base = counting_server.url("")
    hostile = hostile_html(base).replace("</body>", HOSTILE_EXTRA.format(base=base) + "</body>")
    account = synced(dovecot, mail_user, settings, rich_message("Hostile offer", hostile),
                     rich_message("Bypass", "<p>harmless once sanitized</p>"))  # fmt: skip
    bypass = Message.objects.get(user=account.user, subject="Bypass")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    popups: list[Page] = []
    page.context.on("page", lambda popup: popups.append(popup))

    # As if the sanitizer had let everything through: the raw hostile HTML is
    # served for this one body, with the frame's real headers (its policy).
    def unsanitized(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=hostile)

    page.route(f"**/mail/m/{bypass.pk}/body/**", unsanitized)
    page.set_viewport_size(DESKTOP)
    log_in(page, site, account.user.username)
    screen_url = page.url
    for subject, body_text in (("Hostile offer", "Hostile content"), ("Bypass", "top link")):
        row(page, subject).locator("a.open").click()
        inside = page.frame_locator("#reader iframe.body-frame")
        expect(inside.get_by_text(body_text, exact=True)).to_be_visible()
        fits(page.locator("#reader iframe.body-frame"))
        for text in ("click me", "top link", "math link"):
            found = inside.get_by_text(text, exact=True)
            if found.count() and found.is_visible():
                found.click(timeout=3000)
        if inside.locator("#go").count() and inside.locator("#go").is_visible():
            inside.locator("#go").click(timeout=3000)
        page.wait_for_timeout(1500)  # a refresh, a script or a late image has its chance
        assert "PWNED" not in page.title(), subject
        expect(page.locator("#mail-screen")).to_be_visible()
        assert page.url.split("/mail/")[0] == screen_url.split("/mail/")[0]
        assert "/top" not in page.url and "nav" not in page.url and "onerror" not in page.url
    assert dialogs == []
    # Nothing reached the sender's server: not the refresh, nor a script, nor a form,
    # nor the top link (the sanitized one opens a new tab, and only that tab
    # asked the sender's server for anything).
    assert [hit for hit in counting_server.hits if hit not in ("/top", "/favicon.ico")] == []
    for popup in popups:
        assert not popup.url.startswith(site)
