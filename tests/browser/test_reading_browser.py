"""Reading at desktop size (issue 19): a resizable list/reader split, by pointer and
by keyboard, remembered per user; marks that do not overlap; the attachment icon and
the favicon served by Posta."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.accounts.models import Folder
from posta.mail.models import Location
from posta.sync.account_pass import sync_account_once
from tests.browser.test_csp_browser import Violations
from tests.browser.test_mail_browser import log_in, row
from tests.integration.test_mail_screen import rich_message, setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}


def list_width(page: Page) -> float:
    page.wait_for_load_state("load")  # measured with every stylesheet applied
    box = page.locator("#mail-list").bounding_box()
    assert box is not None
    return float(box["width"])


def overlap(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    assert a is not None and b is not None
    return not (
        a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
    )  # fmt: skip


def test_split_resizes_by_pointer_and_keyboard_and_is_remembered(
    new_page: Callable[..., Page], live_server: object, dovecot: DovecotServer,
    mail_user: MailUser, settings: Any,
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    user = account.user
    user.thread_view = True
    user.save()
    dovecot.deliver(mail_user, rich_message("Preventivo", "<p>ciao</p>"))
    dovecot.deliver(mail_user, message("Offerta"))
    dovecot.deliver(
        mail_user,
        message("Re: Offerta", msgid="<re.offerta@example.test>",
                In_Reply_To="<Offerta@example.test>", References="<Offerta@example.test>",
                date="Mon, 02 Mar 2026 11:00:00 +0100"),
    )  # fmt: skip
    sync_account_once(account.pk)
    Location.objects.filter(
        folder__account=account, folder__name="INBOX", message__subject="Re: Offerta"
    ).update(answered=True)
    page = new_page(viewport=DESKTOP)
    seen = Violations(page)
    log_in(page, str(live_server), user.username)
    expect(row(page, "Preventivo")).to_be_visible()

    # Favicon and attachment icon: files Posta serves.
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and page.request.get(f"{live_server}{icon}").ok
    attach = row(page, "Preventivo").locator("img.mark-attach")
    expect(attach).to_be_visible()
    assert page.evaluate("img => img.naturalWidth > 0", attach.element_handle())

    # The answered mark and the thread count sit side by side, not on top.
    offer = row(page, "Offerta")
    expect(offer.locator(".count")).to_have_text("2")
    expect(offer.locator(".mark-answered")).to_be_visible()
    assert not overlap(offer.locator(".count").bounding_box(),
                       offer.locator(".mark-answered").bounding_box())

    # Drag the split to the right: the list grows.
    before = list_width(page)
    split = page.locator("#split")
    box = split.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 160, box["y"] + 200, steps=5)
    page.mouse.up()
    dragged = list_width(page)
    assert dragged > before + 100

    # The keyboard moves it too, and the separator says where it is.
    split.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    keyed = list_width(page)
    assert keyed < dragged
    expect(split).to_have_attribute("aria-valuenow", str(round(keyed)))
    page.keyboard.press("Home")
    narrowest = list_width(page)
    assert narrowest < keyed

    # Remembered: a new page load keeps the width.
    page.keyboard.press("ArrowRight")
    kept = list_width(page)
    inbox = Folder.objects.get(account=account, name="INBOX")
    page.goto(f"{live_server}/mail/f/{inbox.pk}/")
    expect(row(page, "Preventivo")).to_be_visible()
    assert abs(list_width(page) - kept) < 1
    seen.assert_none("split")  # the width is set without a style attribute
