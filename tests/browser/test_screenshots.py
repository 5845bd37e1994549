"""The mail screen at 1440 × 900 and 390 × 844, photographed (issue 19).

As a test it checks that both layouts render a filled mailbox with the reader
open and no policy violation; `bench/screenshots.py` runs it with
POSTA_SCREENSHOTS_DIR set so the pictures land in docs/screenshots/ (otherwise
they go to the test's temporary directory)."""

from __future__ import annotations

import os
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.sync.account_pass import sync_account_once
from tests.browser.test_csp_browser import Violations
from tests.browser.test_mail_browser import log_in, row
from tests.integration.test_mail_screen import setup_account
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAILBOX = [
    ("Anna Bianchi <anna@example.it>", "Preventivo impianto fotovoltaico",
     "Buongiorno, in allegato trova il preventivo aggiornato per l'impianto."),
    ("Mario Rossi <mario@example.it>", "Riunione di giovedì",
     "Confermo la riunione di giovedì alle 10 in sala Verdi."),
    ("Zoë Müller <zoe@example.de>", "Quarterly report Q1 2026",
     "Please find the figures for the first quarter below."),
    ("Ferrari Impianti <ordini@ferrari-impianti.example>", "Ordine n. 2026/118 confermato",
     "Il vostro ordine è stato confermato e sarà spedito entro venerdì."),
    ("Li Lei <li.lei@example.cn>", "Samples shipped",
     "The samples left our warehouse this morning; tracking number to follow."),
    ("Giulia Verdi <giulia@example.it>", "Nuovo lead dal sito",
     "Un nuovo contatto ha compilato il modulo: Studio Tecnico Neri, Bologna."),
    ("José Álvarez <jose@example.es>", "Visita allo stabilimento",
     "¿Podemos visitar el estabelecimento la próxima semana?"),
    ("Amministrazione <amministrazione@example.it>", "Fattura 2026/041 in scadenza",
     "Ricordiamo che la fattura 2026/041 scade il 31 marzo."),
]  # fmt: skip


def message(subject: str, *, from_: str, body: str, date: str) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = from_
    msg["To"] = "Ufficio vendite <vendite@example.it>"
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = f"<{abs(hash(subject))}@example.it>"
    msg.set_content(body)
    return msg.as_bytes()


def _out(tmp_path: Path) -> Path:
    out = Path(os.environ.get("POSTA_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_the_mail_screen_photographed_at_desktop_and_phone_sizes(
    new_page: Callable[..., Page], live_server: object, dovecot: DovecotServer,
    mail_user: MailUser, settings: Any, tmp_path: Path,
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    user = account.user
    user.language = "it"
    user.thread_view = False
    user.save()
    for n, (sender, subject, body) in enumerate(MAILBOX):
        when = f"Mon, 02 Mar 2026 {9 + n:02d}:15:00 +0100"
        dovecot.deliver(mail_user, message(subject, from_=sender, body=body + "\n", date=when))
    sync_account_once(account.pk)
    out = _out(tmp_path)

    for name, viewport in (("mail-1440x900", {"width": 1440, "height": 900}),
                           ("mail-390x844", {"width": 390, "height": 844})):  # fmt: skip
        page = new_page(locale="it-IT", viewport=viewport)
        seen = Violations(page)
        log_in(page, str(live_server), user.username)
        expect(row(page, "Riunione di giovedì")).to_be_visible()
        page.evaluate("() => document.fonts.ready.then(() => true)")
        page.screenshot(path=str(out / f"{name}-list.png"))
        row(page, "Preventivo impianto fotovoltaico").locator("a.open").click()
        expect(page.locator("#reader-message h2.subject")).to_have_text(
            "Preventivo impianto fotovoltaico"
        )
        body = page.frame_locator("#reader-message iframe").first.locator("body")
        expect(body).to_contain_text("preventivo aggiornato")
        page.screenshot(path=str(out / f"{name}-reader.png"))
        seen.assert_none(name)
        page.close()
    assert sorted(p.name for p in out.glob("mail-*.png")) == [
        "mail-1440x900-list.png", "mail-1440x900-reader.png",
        "mail-390x844-list.png", "mail-390x844-reader.png",
    ]
