"""The CRM in Chromium (issue 15): a received message linked to a suggested contact,
an organization made from its sender, mail written from the contact's page, both in
the contact's timeline; the linked message deleted on the server by another client
stays in Imported with its attachment and can be answered."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from posta.crm import services as crm
from posta.crm.models import Contact, Link, Organization
from posta.delivery import sending
from posta.mail.models import Location, Message, OutgoingMessage
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.browser.test_csp_browser import Violations
from tests.browser.test_mail_browser import log_in
from tests.integration.test_mail_screen import rich_message
from tests.integration.test_send import make_sender
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}


def test_link_write_timeline_and_imported(
    new_page: Any, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer,
    settings: Any,
) -> None:  # fmt: skip
    base = str(live_server)
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    mail_user = dovecot.add_user()
    account = make_sender(dovecot, smtp_server, mail_user)
    user = account.user
    dovecot.deliver(mail_user, rich_message(
        "Preventivo impianto", "<p>In allegato il preventivo.</p>",
        sender="Giulia Bianchi <giulia@ferrari-impianti.test>",
    ))  # fmt: skip
    sync_account_once(account.pk)
    received = Message.objects.get(user=user, subject="Preventivo impianto")
    giulia = crm.do_save_record(
        Contact(owner=user, first_name="Giulia", last_name="Bianchi"),
        emails=["giulia@ferrari-impianti.test"],
    )

    page = new_page(viewport=DESKTOP)
    seen = Violations(page)
    log_in(page, base, user.username)
    inbox = Location.objects.get(message=received).folder_id
    page.goto(f"{base}/mail/f/{inbox}/?m={received.pk}")
    panel = page.locator(f"#crm-panel-{received.pk}")
    suggestion = panel.locator(f'.crm-suggested li[data-ref="{giulia.ref}"]')
    expect(suggestion).to_be_visible()
    suggestion.locator("button.link-record").click()
    expect(panel.locator(f'.crm-linked li[data-ref="{giulia.ref}"]')).to_be_visible()
    assert Link.objects.filter(identity=received.identity, record_id=giulia.pk).exists()

    # An organization from the sender's domain, linked at once.
    sender = panel.locator('.crm-candidates li[data-email="giulia@ferrari-impianti.test"]')
    sender.locator('button[value="organization"]').click()
    expect(panel.locator(".notice")).to_contain_text("Ferrari Impianti")
    org = Organization.objects.get()
    assert crm.domains_of(org) == ["ferrari-impianti.test"]
    expect(panel.locator(f'.crm-linked li[data-ref="{org.ref}"]')).to_be_visible()

    # Write from the contact's page: the address and the link are filled in.
    page.goto(f"{base}/crm/contact/{giulia.pk}/")
    page.click("#record-write")
    expect(page.locator("#id_link_to")).to_have_value(giulia.ref)
    expect(page.locator("#id_to")).to_have_value("giulia@ferrari-impianti.test")
    page.fill("#id_subject", "Conferma ordine")
    page.locator("#field-body [contenteditable=true]").click()
    page.keyboard.type("Confermiamo l'ordine.")
    page.click("#send-button")
    expect(page.locator("#undo-button")).to_be_visible()
    page.goto("about:blank")
    outgoing = OutgoingMessage.objects.get(user=user, subject="Conferma ordine")
    assert outgoing.crm_links == [giulia.ref]
    assert outgoing.send_at is not None
    assert sending.deliver(outgoing.pk, now=outgoing.send_at)

    page.goto(f"{base}/crm/contact/{giulia.pk}/")
    timeline = page.locator("#record-timeline li")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(0)).to_contain_text("Conferma ordine")
    expect(timeline.nth(1)).to_contain_text("Preventivo impianto")

    # Another IMAP client deletes the received message on the server.
    client = dovecot.imap(mail_user)
    try:
        client.select("INBOX")
        client.store("1:*", "+FLAGS", "(\\Deleted)")
        client.expunge()
    finally:
        client.logout()
    sync_account_once(account.pk)
    assert not Location.objects.filter(message=received).exists()

    page.goto(f"{base}/mail/s/imported/")
    kept = page.locator("#imported-rows li.msg", has_text="Preventivo impianto")
    expect(kept).to_be_visible()
    kept.locator("a.open").click()
    reader = page.locator("#reader")
    expect(reader.locator(".subject").first).to_have_text("Preventivo impianto")
    expect(reader).to_contain_text("preventivo 2026.pdf")
    reader.locator("a[data-key=r]").click()
    # The reply opens in the editor under the message.
    editor = page.frame_locator(".compose-panel iframe")
    expect(editor.locator("#id_subject")).to_have_value("Re: Preventivo impianto")
    expect(editor.locator("#id_to")).to_have_value("Giulia Bianchi <giulia@ferrari-impianti.test>")
    expect(editor.locator("#id_link_to")).to_have_value(f"{org.ref}, {giulia.ref}")
    seen.assert_none("the CRM pages")


def test_csv_import_of_ten_thousand_contacts_shows_progress(
    new_page: Any, live_server: object, tmp_path: Any
) -> None:
    base = str(live_server)
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    user = User.objects.create_user(username="importer", password="pw-unused-123")
    lines = ["First name,Last name,Email,Phone"]
    for i in range(10_000):
        email = f"person{i}@clients.example.test" if i % 1000 else "broken address"
        lines.append(f"Person{i},Client,{email},+39 02 {1000000 + i}")
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("\n".join(lines) + "\n")

    page = new_page(viewport=DESKTOP)
    seen = Violations(page)
    log_in(page, base, user.username)
    page.goto(f"{base}/crm/contact/")
    page.click("#crm-import")
    page.set_input_files("#import-file", str(csv_file))
    page.click("#import-form button[type=submit]")
    expect(page.locator("#import-preview tbody tr")).to_have_count(5)
    expect(page.locator("#map-emails")).to_have_value("2")
    page.click("#start-import")
    progress = page.locator("#import-progress progress")
    expect(progress).to_be_visible()
    # Progress moves while the import runs, chunk by chunk.
    expect(page.locator("#import-status")).to_contain_text("Importing", timeout=30_000)
    expect(page.locator("#import-status")).to_contain_text("Import finished.", timeout=600_000)
    expect(page.locator("#import-status")).to_contain_text("9990 created")
    expect(page.locator("#import-errors li")).to_have_count(10)
    assert Contact.objects.filter(owner=user).count() == 9990
    seen.assert_none("the import pages")
