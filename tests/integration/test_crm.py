"""CRM records and their links to mail synced from the test Dovecot: pages, search,
visibility, links that follow a message's identity (UIDVALIDITY reset, a colleague's
copy), automatic linking, records made from a message, and the Imported folder."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from posta.crm import services as crm
from posta.crm.models import Contact, CrmSettings, CrmUserPrefs, Link, Organization, RecordEmail
from posta.mail import autolink_queue, keepers
from posta.mail.models import Location, Message
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

SIGNED = (
    "Buongiorno,\nvi mando il preventivo.\n\n--\nGiulia Bianchi\nFerrari Impianti S.r.l.\n"
    "Tel. 02 1234 5678 - cell. +39 347 123 4567\n"
)


@pytest.fixture(autouse=True)
def admin() -> User:
    return User.objects.create_superuser(username="admin", password="pw-unused-123")


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def link_new_mail(user: User) -> None:
    """Run the auto-linking worker's job for the user's new mail."""
    autolink_queue.process_pending(user.pk)


def contact(owner: User, first: str, last: str, *emails: str) -> Contact:
    record = crm.do_save_record(Contact(owner=owner, first_name=first, last_name=last),
                                emails=list(emails))
    assert isinstance(record, Contact)
    return record


def test_records_list_create_edit_search_page_and_delete(admin: User) -> None:
    client = client_for(admin)
    answer = client.post("/crm/contact/new/", {
        "first_name": "Mario", "last_name": "Rossi", "title": "Buyer",
        "emails": "Mario.Rossi@Ferrari-Impianti.test, m.rossi@example.test",
        "phones": "02 1234 5678", "notes": "",
    })  # fmt: skip
    assert answer.status_code == 302
    mario = Contact.objects.get()
    assert crm.emails_of(mario) == ["mario.rossi@ferrari-impianti.test", "m.rossi@example.test"]
    assert mario.phones == ["+390212345678"]
    bad = client.post("/crm/contact/new/", {"first_name": "X", "emails": "not an address"})
    assert bad.status_code == 200 and "is not an email address" in bad.content.decode()
    assert "Mario Rossi" in client.get("/crm/contact/?q=ferrari-impianti").content.decode()
    assert "Mario Rossi" not in client.get("/crm/contact/?q=nobody").content.decode()

    for i in range(120):
        contact(admin, f"Person{i:03d}", "Zed", f"p{i}@example.test")
    first = crm.search_records(admin, "contact", "zed")
    assert len(first.records) == crm.PAGE_SIZE and first.next_cursor
    names: list[str] = [r.display_name for r in first.records]
    cursor = first.next_cursor
    while cursor:
        page = crm.search_records(admin, "contact", "zed", cursor=cursor)
        names += [r.display_name for r in page.records]
        cursor = page.next_cursor
    assert names == sorted(names) and len(names) == len(set(names)) == 120
    listed = client.get("/crm/contact/", {"q": "zed", "after": first.next_cursor})
    assert "Person050 Zed" in listed.content.decode()

    edit = client.post(f"/crm/contact/{mario.pk}/edit/", {
        "first_name": "Mario", "last_name": "Rossi", "emails": "m.rossi@example.test",
    })  # fmt: skip
    assert edit.status_code == 302
    assert crm.emails_of(mario) == ["m.rossi@example.test"]
    assert client.get(f"/crm/contact/{mario.pk}/delete/").status_code == 200
    assert client.post(f"/crm/contact/{mario.pk}/delete/").status_code == 302
    assert not Contact.objects.filter(pk=mario.pk).exists()
    assert not RecordEmail.objects.filter(record_id=mario.pk, kind="contact").exists()


def test_users_see_the_records_they_own_when_the_administrator_says_so(admin: User) -> None:
    anna = User.objects.create_user(username="anna", password="pw-unused-123")
    bruno = User.objects.create_user(username="bruno", password="pw-unused-123")
    hers = contact(anna, "Carla", "Verdi", "carla@example.test")
    assert client_for(bruno).get(f"/crm/contact/{hers.pk}/").status_code == 200
    client_for(admin).post(
        "/crm/settings/", {"visibility": "own", "extra_free_domains": "", "phone_region": "IT"}
    )
    assert CrmSettings.objects.get().visibility == "own"
    bruno_client = client_for(bruno)
    for url in (
        f"/crm/contact/{hers.pk}/", f"/crm/contact/{hers.pk}/edit/",
        f"/crm/contact/{hers.pk}/delete/",
    ):  # fmt: skip
        assert bruno_client.get(url).status_code == 404, url
    assert bruno_client.post(f"/crm/contact/{hers.pk}/delete/").status_code == 404
    assert "Carla" not in bruno_client.get("/crm/contact/").content.decode()
    found = json.loads(bruno_client.get("/crm/search/?q=carla").content)
    assert found["records"] == []
    assert client_for(anna).get(f"/crm/contact/{hers.pk}/").status_code == 200
    assert client_for(admin).get(f"/crm/contact/{hers.pk}/").status_code == 200
    assert bruno_client.get("/crm/settings/").status_code == 404


def test_a_link_follows_the_identity_across_a_uidvalidity_reset_and_a_colleagues_copy(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    mail = message("Offerta", from_="Giulia Bianchi <giulia@ferrari-impianti.test>", body=SIGNED)
    dovecot.deliver(mail_user, mail)
    account = make_account(dovecot, mail_user, settings)
    sync_account_once(account.pk)
    user = account.user
    giulia = contact(user, "Giulia", "Bianchi", "giulia@ferrari-impianti.test")
    msg = Message.objects.get(user=user)
    # Auto-linking happened when the mail was stored only if the record existed: not yet.
    client = client_for(user)
    panel = client.get(f"/crm/panel/{msg.pk}/").content.decode()
    assert "Suggested" in panel and f'data-ref="contact:{giulia.pk}"' in panel
    client.post(f"/crm/panel/{msg.pk}/link/", {"record": giulia.ref})
    assert Link.objects.filter(kind="contact", record_id=giulia.pk).count() == 1

    dovecot.reset_uidvalidity(mail_user, "INBOX")
    sync_account_once(account.pk)
    again = Message.objects.get(user=user)
    assert Location.objects.filter(message=again).exists()
    linked = client.get(f"/crm/panel/{again.pk}/").content.decode()
    assert "Giulia Bianchi" in linked.split("Suggested")[0]

    # A colleague holds the same mail in their own mailbox: they see the link while
    # they may see the record, and not once records are private to their owners.
    other_box = dovecot.add_user()
    dovecot.deliver(other_box, mail)
    colleague_account = make_account(dovecot, other_box, settings)
    sync_account_once(colleague_account.pk)
    colleague = colleague_account.user
    theirs = Message.objects.get(user=colleague)
    assert theirs.identity == again.identity
    seen = client_for(colleague).get(f"/crm/panel/{theirs.pk}/").content.decode()
    assert f'data-ref="contact:{giulia.pk}"' in seen.split("Suggested")[0]
    CrmSettings.objects.update_or_create(pk=1, defaults={"visibility": "own"})
    hidden = client_for(colleague).get(f"/crm/panel/{theirs.pk}/").content.decode()
    assert f"contact:{giulia.pk}" not in hidden
    # Nor may they link or read what is not theirs.
    assert client_for(colleague).post(
        f"/crm/panel/{theirs.pk}/link/", {"record": giulia.ref}
    ).status_code == 404
    assert client_for(colleague).get(f"/crm/panel/{again.pk}/").status_code == 404


def test_new_mail_is_linked_to_existing_records_unless_the_user_turned_it_off(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    giulia = contact(user, "Giulia", "Bianchi", "giulia@ferrari-impianti.test")
    dovecot.deliver(mail_user, message("Uno", from_="Giulia <giulia@ferrari-impianti.test>"))
    dovecot.deliver(mail_user, message("Due", from_="Stranger <who@else.test>"))
    dovecot.deliver(mail_user, message(
        "Tre", from_=f"Me <{mail_user.address}>", to="Giulia <GIULIA@ferrari-impianti.test>",
    ))  # fmt: skip
    sync_account_once(account.pk)
    link_new_mail(user)
    linked = set(
        Message.objects.filter(
            user=user, identity__in=Link.objects.filter(record_id=giulia.pk).values("identity")
        ).values_list("subject", flat=True)
    )
    assert linked == {"Uno", "Tre"}
    assert Contact.objects.count() == 1  # never creates records
    page = client_for(user).get(f"/crm/contact/{giulia.pk}/").content.decode()
    assert "Uno" in page and "Tre" in page
    outgoing_only = client_for(user).get(f"/crm/contact/{giulia.pk}/?direction=out").content
    assert b"Tre" in outgoing_only and b"Uno" not in outgoing_only

    CrmUserPrefs.objects.update_or_create(user=user, defaults={"auto_link": "off"})
    dovecot.deliver(mail_user, message("Quattro", from_="Giulia <giulia@ferrari-impianti.test>"))
    sync_account_once(account.pk)
    link_new_mail(user)
    four = Message.objects.get(user=user, subject="Quattro")
    assert not Link.objects.filter(identity=four.identity).exists()


def test_a_record_from_a_message_takes_name_phones_and_organization(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    dovecot.deliver(mail_user, message(
        "Preventivo", from_="Giulia Bianchi <giulia@ferrari-impianti.test>",
        cc="Luca <luca@gmail.com>", body=SIGNED,
    ))  # fmt: skip
    account = make_account(dovecot, mail_user, settings)
    sync_account_once(account.pk)
    user = account.user
    msg = Message.objects.get(user=user)
    client = client_for(user)
    panel = client.get(f"/crm/panel/{msg.pk}/").content.decode()
    # luca@gmail.com is free mail: no organization proposed for it.
    luca = panel.split('data-email="luca@gmail.com"')[1].split("</li>")[0]
    assert 'value="organization"' not in luca
    client.post(f"/crm/panel/{msg.pk}/create/", {"kind": "organization",
                                                "email": "giulia@ferrari-impianti.test"})
    org = Organization.objects.get()
    assert org.name == "Ferrari Impianti" and crm.domains_of(org) == ["ferrari-impianti.test"]
    client.post(f"/crm/panel/{msg.pk}/create/", {"kind": "contact",
                                                "email": "giulia@ferrari-impianti.test"})
    giulia = Contact.objects.get()
    assert (giulia.first_name, giulia.last_name) == ("Giulia", "Bianchi")
    assert giulia.organization == org
    assert giulia.phones == ["+390212345678", "+393471234567"]
    assert {(link.kind, link.record_id) for link in Link.objects.filter(identity=msg.identity)} == {
        ("organization", org.pk), ("contact", giulia.pk),
    }
    refused = client.post(
        f"/crm/panel/{msg.pk}/create/", {"kind": "organization", "email": "luca@gmail.com"}
    )
    assert "free mail provider" in refused.content.decode()
    assert Organization.objects.count() == 1


def test_linked_mail_deleted_on_the_server_stays_in_imported_and_can_be_replied_to(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    dovecot.deliver(mail_user, message("Contratto", from_="Giulia <giulia@ferrari-impianti.test>"))
    dovecot.deliver(mail_user, message("Volantino", from_="who@else.test"))
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    giulia = contact(user, "Giulia", "Bianchi", "giulia@ferrari-impianti.test")
    sync_account_once(account.pk)
    link_new_mail(user)  # auto-links "Contratto"
    dovecot.doveadm("expunge", "-u", mail_user.name, "mailbox", "INBOX", "all")
    sync_account_once(account.pk)
    keepers.do_sweep()
    keepers.do_sweep(now=timezone.now() + keepers.SWEEP_GRACE + timedelta(minutes=1))
    assert list(Message.objects.filter(user=user).values_list("subject", flat=True)) == [
        "Contratto"
    ]
    kept = Message.objects.get(user=user)
    client = client_for(user)
    imported = client.get("/mail/s/imported/").content.decode()
    assert "Contratto" in imported and "Volantino" not in imported
    assert "Contratto" in client.get("/mail/s/imported/?q=contr").content.decode()
    assert 'id="imported-rows"></ul>' in client.get(
        "/mail/s/imported/?q=nothing"
    ).content.decode().replace("\n", "")
    # The search of all mail finds it too, outside Imported, shown without an account.
    found = client.get("/mail/search/?q=contratto").content.decode()
    assert "Contratto" in found and f'data-id="{kept.pk}"' in found
    assert 'class="acct imported"' in found and f"/mail/m/{kept.pk}/\"" in found
    assert "Volantino" not in client.get("/mail/search/?q=volantino").content.decode()
    opened = client.get(f"/mail/m/{kept.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "Contratto" in opened and "In no mailbox" in opened
    assert client.get(f"/compose/reply/{kept.pk}/").status_code == 200
    # Unlinking its last link asks first, then lets it go.
    ask = client.post(f"/crm/panel/{kept.pk}/unlink/", {"record": giulia.ref}).content.decode()
    assert "Unlink it and let it go?" in ask
    assert Message.objects.filter(pk=kept.pk).exists()
    client.post(f"/crm/panel/{kept.pk}/unlink/", {"record": giulia.ref, "confirm": "1"})
    assert not Message.objects.filter(pk=kept.pk).exists()

    stranger = User.objects.create_user(username="intruder", password="pw-unused-123")
    other = client_for(stranger)
    assert other.get(f"/crm/contact/{giulia.pk}/").status_code == 200  # visibility "all"
    assert other.get(f"/crm/panel/{kept.pk}/").status_code == 404


def test_compose_links_replies_write_from_a_record_and_sent_mail(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    from posta.mail.ingest import do_store_sent

    dovecot.deliver(mail_user, message("Domanda", from_="Giulia <giulia@ferrari-impianti.test>"))
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    giulia = contact(user, "Giulia", "Bianchi", "giulia@ferrari-impianti.test")
    sync_account_once(account.pk)
    link_new_mail(user)
    received = Message.objects.get(user=user)
    assert Link.objects.filter(identity=received.identity, record_id=giulia.pk).exists()
    client = client_for(user)

    reply = client.get(f"/compose/reply/{received.pk}/").content.decode()
    assert f'value="{giulia.ref}"' in reply and "Linked to:" in reply
    record_page = client.get(f"/crm/contact/{giulia.pk}/").content.decode()
    assert f"/compose/?link={giulia.ref}&amp;to=giulia@ferrari-impianti.test" in record_page
    write = client.get(f"/compose/?link={giulia.ref}&to=giulia@ferrari-impianti.test")
    page = write.content.decode()
    assert f'value="{giulia.ref}"' in page and "giulia@ferrari-impianti.test" in page

    lead = crm.do_save_record(Contact(owner=user, first_name="Other"), emails=[])
    saved = client.post("/compose/start/", {
        "origin": "new", "draft_key": "b" * 32, "account": str(account.pk),
        "to": "giulia@ferrari-impianti.test", "subject": "Proposta", "body": "<p>Ciao</p>",
        "link_to": f"{giulia.ref}, {lead.ref}", "action": "save",
    })  # fmt: skip
    assert saved.status_code == 302
    outgoing = user.outgoing_messages.get(subject="Proposta")
    assert outgoing.crm_links == [giulia.ref, lead.ref]
    stranger = User.objects.create_user(username="nosy", password="pw-unused-123")
    hidden = crm.do_save_record(Contact(owner=stranger, first_name="Private"), emails=[])
    CrmSettings.objects.update_or_create(pk=1, defaults={"visibility": "own"})
    refused = client.post(f"/compose/{outgoing.pk}/", {
        "account": str(account.pk), "subject": "Proposta", "link_to": hidden.ref,
        "action": "save",
    })  # fmt: skip
    assert "This record does not exist, or you may not see it." in refused.content.decode()
    outgoing.refresh_from_db()
    assert outgoing.crm_links == [giulia.ref, lead.ref]
    CrmSettings.objects.update_or_create(pk=1, defaults={"visibility": "all"})

    # Sent: the stored message joins the records chosen in compose.
    outgoing.message_id = "proposta.1@example.test"
    outgoing.save()
    raw = message("Proposta", msgid="<proposta.1@example.test>",
                  from_=f"Me <{mail_user.address}>", to="giulia@ferrari-impianti.test")
    sent = do_store_sent(user_id=user.pk, raw=raw, blob_key="", now=timezone.now())
    assert sent is not None
    linked = set(Link.objects.filter(identity=sent.identity).values_list("kind", "record_id"))
    assert linked == {("contact", giulia.pk), ("contact", lead.pk)}
    timeline = client.get(f"/crm/contact/{giulia.pk}/").content.decode()
    assert "Domanda" in timeline and "Proposta" in timeline


def test_eml_and_mbox_files_are_stored_linked_and_shown_in_imported(admin: User) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.integration.test_mail_screen import rich_message

    user = User.objects.create_user(username="carla", password="pw-unused-123")
    giulia = contact(user, "Giulia", "Bianchi", "giulia@ferrari-impianti.test")
    eml = rich_message("Ordine firmato", "<p>firmato</p>", sender="giulia@ferrari-impianti.test")
    mbox = b"".join(
        b"From giulia@ferrari-impianti.test Mon Mar  2 10:00:00 2026\n" + message(subject) + b"\n"
        for subject in ("Vecchia uno", "Vecchia due")
    )
    client = client_for(user)

    def upload() -> Any:
        return client.post("/crm/import-mail/", {
            "record": giulia.ref, "files": [
                SimpleUploadedFile("ordine.eml", eml, "message/rfc822"),
                SimpleUploadedFile("archivio.mbox", mbox, "application/mbox"),
                SimpleUploadedFile("note.txt", b"just some words\n", "text/plain"),
            ],
        }, follow=True)  # fmt: skip

    answer = upload().content.decode()
    assert "3 messages imported and linked." in answer
    assert "note.txt is not an email message." in answer
    subjects = set(Message.objects.filter(user=user).values_list("subject", flat=True))
    assert subjects == {"Ordine firmato", "Vecchia uno", "Vecchia due"}
    assert Link.objects.filter(record_id=giulia.pk, how="imported").count() == 3
    imported = client.get("/mail/s/imported/").content.decode()
    for subject in subjects:
        assert subject in imported
    ordine = Message.objects.get(user=user, subject="Ordine firmato")
    assert ordine.has_attachments
    opened = client.get(f"/mail/m/{ordine.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "preventivo 2026.pdf" in opened
    upload()  # again: nothing stored twice
    assert Message.objects.filter(user=user).count() == 3
    assert Link.objects.filter(record_id=giulia.pk).count() == 3
    # Another user may not import into a record they do not see, nor read this mail.
    CrmSettings.objects.update_or_create(pk=1, defaults={"visibility": "own"})
    other = client_for(User.objects.create_user(username="dario", password="pw-unused-123"))
    refused = other.post("/crm/import-mail/", {
        "record": giulia.ref, "files": [SimpleUploadedFile("x.eml", eml, "message/rfc822")],
    })  # fmt: skip
    assert refused.status_code == 404
    assert other.get(f"/mail/m/{ordine.pk}/", HTTP_HX_REQUEST="true").status_code == 404


def test_csv_import_maps_columns_reports_rows_and_imports_nothing_twice(admin: User) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from posta.crm.models import RecordImport

    user = User.objects.create_user(username="elena", password="pw-unused-123")
    contact(user, "Già", "Presente", "gia@example.test")
    text = (
        "Nome;Cognome;E-mail;Telefono;Ruolo\n"
        "Mario;Rossi;mario@example.test;02 1234 5678;Buyer\n"
        ";;nobody@example.test;;\n"
        "Anna;Verdi;not-an-address;;\n"
        "Già;Presente;GIA@example.test;333 1234567;\n"
        "Luca;Neri;;;\n"
        '"Bad;Row\n'
    )
    client = client_for(user)

    def run(duplicates: str) -> RecordImport:
        upload = SimpleUploadedFile("clienti.csv", text.encode("cp1252"), "text/csv")
        answer = client.post("/crm/contact/import/", {"file": upload})
        assert answer.status_code == 302
        job = RecordImport.objects.filter(owner=user).latest("pk")
        page = client.get(f"/crm/import/{job.pk}/").content.decode()
        assert "Mario" in page and "Rossi" in page  # the preview
        assert job.mapping == {"first_name": 0, "last_name": 1, "emails": 2, "phones": 3,
                               "title": 4}
        client.post(f"/crm/import/{job.pk}/", {
            **{f"map_{k}": str(v) for k, v in job.mapping.items()}, "duplicates": duplicates,
        })  # fmt: skip
        while True:
            progress = client.post(f"/crm/import/{job.pk}/step/").content.decode()
            job.refresh_from_db()
            if job.state == "done":
                break
        assert "Import finished." in progress
        return job

    first = run("skip")
    assert (first.created, first.total) == (3, 6)  # Mario, Luca, and the "Bad;Row" name
    errors = dict(first.errors)
    assert "neither a first nor a last name" in errors[3]
    assert "is not an email address" in errors[4]
    assert Contact.objects.filter(owner=user).count() == 4
    mario = Contact.objects.get(owner=user, first_name="Mario")
    assert mario.phones == ["+390212345678"] and mario.title == "Buyer"

    again = run("merge")
    assert again.created == 0
    assert Contact.objects.filter(owner=user).count() == 4
    gia = Contact.objects.get(owner=user, first_name="Già")
    assert gia.phones == ["+393331234567"]  # merged into the existing record

    exported = b"".join(client.get("/crm/contact/export/").streaming_content).decode()
    assert exported.splitlines()[0].startswith("first_name,last_name")
    assert "Mario,Rossi,Buyer,,mario@example.test,+390212345678," in exported
    # Another user's import is not theirs to see.
    other = client_for(User.objects.create_user(username="franco", password="pw-unused-123"))
    assert other.get(f"/crm/import/{first.pk}/").status_code == 404
    assert other.post(f"/crm/import/{first.pk}/step/").status_code == 404


def test_vcard_contacts_import(admin: User) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from posta.crm import importing

    user = User.objects.create_user(username="gina", password="pw-unused-123")
    cards = (
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Paola Gialli\r\nN:Gialli;Paola;;;\r\n"
        "EMAIL;TYPE=work:paola@gialli.test\r\nTEL;TYPE=cell:+39 347 765 4321\r\n"
        "ORG:Gialli SpA\r\nTITLE:CEO\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Solo Nome\r\nEND:VCARD\r\n"
    )
    client = client_for(user)
    client.post("/crm/contact/import/", {
        "file": SimpleUploadedFile("rubrica.vcf", cards.encode(), "text/vcard"),
    })  # fmt: skip
    job = importing.access_import(user, user.pk and __import__(
        "posta.crm.models", fromlist=["RecordImport"]).RecordImport.objects.get(owner=user).pk)
    client.post(f"/crm/import/{job.pk}/", {
        **{f"map_{k}": str(v) for k, v in job.mapping.items()}, "duplicates": "skip",
    })  # fmt: skip
    client.post(f"/crm/import/{job.pk}/step/")
    paola = Contact.objects.get(owner=user, last_name="Gialli")
    assert crm.emails_of(paola) == ["paola@gialli.test"]
    assert paola.phones == ["+393477654321"] and paola.title == "CEO"
    assert Contact.objects.filter(owner=user, first_name="Solo", last_name="Nome").exists()


def test_removing_an_account_keeps_exactly_its_linked_messages(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    for subject, sender in (("Collegato", "giulia@ferrari-impianti.test"),
                            ("Qualsiasi", "who@else.test")):
        dovecot.deliver(mail_user, message(subject, from_=sender))
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    contact(user, "Giulia", "Bianchi", "giulia@ferrari-impianti.test")
    sync_account_once(account.pk)
    link_new_mail(user)
    client = client_for(user)
    confirm = client.get(f"/settings/accounts/{account.pk}/delete/").content.decode()
    assert "1 message linked to CRM records will be kept in Imported" in confirm
    client.post(f"/settings/accounts/{account.pk}/delete/")
    assert list(Message.objects.filter(user=user).values_list("subject", flat=True)) == [
        "Collegato"
    ]
    assert "Collegato" in client.get("/mail/s/imported/").content.decode()


def test_merging_two_duplicates_keeps_addresses_and_links(admin: User) -> None:
    user = User.objects.create_user(username="hugo", password="pw-unused-123")
    keep = contact(user, "Mario", "Rossi", "mario@example.test")
    twin = contact(user, "Mario", "Rossi", "m.rossi@example.test")
    Link.objects.create(kind="contact", record_id=twin.pk, identity="a" * 64)
    client = client_for(user)
    page = client.get(f"/crm/contact/{keep.pk}/").content.decode()
    assert f'value="{twin.ref}"' in page  # offered as a duplicate (same name)
    client.post(f"/crm/contact/{keep.pk}/merge/", {"duplicate": twin.ref})
    assert not Contact.objects.filter(pk=twin.pk).exists()
    assert crm.emails_of(keep) == ["mario@example.test", "m.rossi@example.test"]
    assert Link.objects.filter(kind="contact", record_id=keep.pk, identity="a" * 64).exists()
    page = client.get(f"/crm/contact/{keep.pk}/delete/").content.decode()
    assert "1 message is linked to this record" in page


def test_a_second_user_gets_404_for_every_crm_url_that_is_not_theirs(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import URLPattern, URLResolver, get_resolver

    from posta.crm import importing

    dovecot.deliver(mail_user, message("Riservato", from_="giulia@ferrari-impianti.test"))
    account = make_account(dovecot, mail_user, settings)
    owner = account.user
    giulia = contact(owner, "Giulia", "Bianchi", "giulia@ferrari-impianti.test")
    sync_account_once(account.pk)
    link_new_mail(owner)
    msg = Message.objects.get(user=owner)
    job = importing.check_start_import(owner, "contact", "a.csv", b"Name,Email\nA,a@b.test\n")
    CrmSettings.objects.update_or_create(pk=1, defaults={"visibility": "own"})
    values = {"record_kind": "contact", "record_id": giulia.pk, "message_id": msg.pk,
              "import_id": job.pk}
    # Pages that name nothing of the owner's: the other user's own lists and forms.
    open_to_all = {"crm_home", "crm_search", "crm_prefs", "crm_list", "crm_new", "crm_export",
                   "crm_import", "crm_import_mail"}

    def walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for entry in patterns:
            if isinstance(entry, URLResolver):
                out += walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and (entry.name or "").startswith("crm_"):
                out.append((entry.name or "", prefix + str(entry.pattern)))
        return out

    routes = walk(get_resolver().url_patterns)
    assert len(routes) >= 18
    intruder = client_for(User.objects.create_user(username="intruso", password="pw-unused-1"))
    checked = 0
    for name, route in routes:
        if name in open_to_all:
            continue
        url = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), route)
        form = {"record": giulia.ref, "duplicate": giulia.ref, "email": msg.from_email,
                "kind": "contact"}
        for method in ("get", "post"):
            answer = getattr(intruder, method)(url, form)
            assert answer.status_code in (404, 405), (name, method, answer.status_code)
            checked += answer.status_code == 404
    assert checked >= 14
    # The open ones show nothing of the owner's and cannot reach the owner's record.
    assert "Giulia" not in intruder.get("/crm/contact/").content.decode()
    assert b"Giulia" not in b"".join(intruder.get("/crm/contact/export/").streaming_content)
    assert intruder.post("/crm/import-mail/", {
        "record": giulia.ref, "files": [SimpleUploadedFile("a.eml", b"From: a@b.test\n\nx\n")],
    }).status_code == 404  # fmt: skip
    assert Contact.objects.filter(pk=giulia.pk).exists()
    assert Link.objects.filter(record_id=giulia.pk).count() == 1  # auto-linked, untouched
