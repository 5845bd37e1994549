"""CRM auto-linking off the sync path (issue 15): the sync records each stored
batch in its own transaction, a worker links it, a killed worker's batch is taken
over once; and "link existing mail" on a record's page, by hand and automatically
when a record gets addresses, with its progress, resuming after a kill."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from posta.crm.models import Contact, CrmUserPrefs, Link
from posta.mail import autolink_queue, record_backfill
from posta.mail.models import LinkBatch, Message, RecordLinkJob
from posta.sync.account_pass import sync_account_once
from posta.users.models import User

# `admin`: the installation's administrator (an autouse fixture of test_crm).
from tests.integration.test_crm import admin as admin
from tests.integration.test_crm import client_for, contact
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

GIULIA = "Giulia <giulia@ferrari-impianti.test>"


def linked_subjects(user: User, record: Contact) -> set[str]:
    identities = Link.objects.filter(kind="contact", record_id=record.pk).values("identity")
    return set(
        Message.objects.filter(user=user, identity__in=identities).values_list("subject", flat=True)
    )


def test_the_sync_records_batches_and_the_worker_links_them_once(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    giulia = contact(user, "Giulia", "", "giulia@ferrari-impianti.test")
    dovecot.deliver(mail_user, message("Uno", from_=GIULIA))
    dovecot.deliver(mail_user, message("Due", from_="Stranger <who@else.test>"))
    dovecot.deliver(mail_user, message("Tre", from_="x@else.test", cc=GIULIA))
    sync_account_once(account.pk)
    # The sync linked nothing itself: it left its batch for the worker.
    assert not Link.objects.exists()
    recorded = [i for row in LinkBatch.objects.filter(user=user) for i in row.message_ids]
    stored = Message.objects.filter(user=user).values_list("pk", flat=True)
    assert sorted(recorded) == sorted(stored)
    assert autolink_queue.users_due() == [user.pk]

    assert autolink_queue.process_pending(user.pk) == 2
    assert linked_subjects(user, giulia) == {"Uno", "Tre"}
    assert not LinkBatch.objects.exists() and autolink_queue.users_due() == []
    assert autolink_queue.process_pending(user.pk) == 0
    assert Link.objects.count() == 2


def test_a_killed_workers_batch_waits_for_its_lease_then_is_linked_once(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    giulia = contact(user, "Giulia", "", "giulia@ferrari-impianti.test")
    dovecot.deliver(mail_user, message("Uno", from_=GIULIA))
    sync_account_once(account.pk)
    # A worker claimed the batch and died.
    held = timezone.now() + timedelta(minutes=1)
    LinkBatch.objects.update(claimed_by="dead:1:x", lease_until=held)
    assert autolink_queue.process_pending(user.pk) == 0
    assert autolink_queue.users_due() == [] and not Link.objects.exists()
    LinkBatch.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert autolink_queue.users_due() == [user.pk]  # the sweep wakes a worker
    autolink_queue.process_pending(user.pk)
    assert linked_subjects(user, giulia) == {"Uno"}
    # The same batch linked again (a row that came back) adds nothing twice.
    uno = Message.objects.get(user=user)
    autolink_queue.do_record_batch(user.pk, [uno.pk])
    autolink_queue.process_pending(user.pk)
    assert Link.objects.filter(identity=uno.identity).count() == 1


def test_batches_of_a_user_who_turned_linking_off_are_dropped(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    contact(user, "Giulia", "", "giulia@ferrari-impianti.test")
    CrmUserPrefs.objects.update_or_create(user=user, defaults={"auto_link": "off"})
    dovecot.deliver(mail_user, message("Uno", from_=GIULIA))
    sync_account_once(account.pk)
    assert autolink_queue.process_pending(user.pk) == 0
    assert not LinkBatch.objects.exists() and not Link.objects.exists()


def test_link_existing_mail_from_a_records_page_shows_its_progress(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    CrmUserPrefs.objects.update_or_create(user=user, defaults={"auto_link": "off"})
    dovecot.deliver(mail_user, message("Uno", from_=GIULIA))
    dovecot.deliver(mail_user, message("Due", from_="who@else.test"))
    dovecot.deliver(mail_user, message("Tre", from_=f"Me <{mail_user.address}>", to=GIULIA))
    sync_account_once(account.pk)
    autolink_queue.process_pending(user.pk)
    giulia = contact(user, "Giulia", "", "giulia@ferrari-impianti.test")
    assert not RecordLinkJob.objects.exists()  # linking is off: nothing automatic
    client = client_for(user)
    url = f"/crm/contact/{giulia.pk}/link-existing/"
    page = client.get(f"/crm/contact/{giulia.pk}/").content.decode()
    assert 'id="link-existing-start"' in page and url in page

    started = client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Linking existing mail…" in started and 'hx-trigger="every 2s"' in started
    assert 'id="link-existing-start"' not in started  # no second job while one runs
    job = RecordLinkJob.objects.get()
    assert (job.records, job.automatic) == ([giulia.ref], False)
    assert client.post(url, HTTP_HX_REQUEST="true").status_code == 200
    assert RecordLinkJob.objects.count() == 1

    assert record_backfill.jobs_due() == [job.pk]
    assert record_backfill.run_job(job.pk) == RecordLinkJob.State.DONE
    done = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Existing mail linked." in done and "every 2s" not in done
    assert "3 of 3 messages looked at, 2 linked to a record." in done
    assert linked_subjects(user, giulia) == {"Uno", "Tre"}
    assert "Uno" in client.get(f"/crm/contact/{giulia.pk}/").content.decode()

    # A record without an address has nothing to look for: a clear answer.
    nobody = contact(user, "Nobody", "")
    refused = client.post(f"/crm/contact/{nobody.pk}/link-existing/", HTTP_HX_REQUEST="true")
    assert refused.status_code == 400
    assert "no email address to look for" in refused.content.decode()
    assert RecordLinkJob.objects.count() == 1


def test_a_record_given_addresses_links_its_existing_mail_automatically(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    dovecot.deliver(mail_user, message("Uno", from_=GIULIA))
    dovecot.deliver(mail_user, message("Due", from_="Giulia <g.bianchi@example.test>"))
    dovecot.deliver(mail_user, message("Tre", from_="Luca <luca@example.test>"))
    sync_account_once(account.pk)
    autolink_queue.process_pending(user.pk)  # no records yet: nothing linked
    assert not Link.objects.exists()

    client = client_for(user)
    client.post(
        "/crm/contact/new/", {"first_name": "Giulia", "emails": "giulia@ferrari-impianti.test"}
    )
    giulia = Contact.objects.get(first_name="Giulia")
    luca = contact(user, "Luca", "", "luca@example.test")
    # Both records wait in one job: a big import scans the mail once.
    job = RecordLinkJob.objects.get()
    assert job.automatic and job.records == [giulia.ref, luca.ref]
    record_backfill.run_job(job.pk)
    assert linked_subjects(user, giulia) == {"Uno"} and linked_subjects(user, luca) == {"Tre"}

    # An address added later links the mail sent from it.
    client.post(f"/crm/contact/{giulia.pk}/edit/", {
        "first_name": "Giulia", "emails": "giulia@ferrari-impianti.test, g.bianchi@example.test",
    })  # fmt: skip
    again = RecordLinkJob.objects.exclude(pk=job.pk).get()
    assert again.records == [giulia.ref]
    record_backfill.run_job(again.pk)
    assert linked_subjects(user, giulia) == {"Uno", "Due"}


def test_a_killed_link_existing_job_resumes_at_its_cursor(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(dovecot, mail_user, settings)
    user = account.user
    CrmUserPrefs.objects.update_or_create(user=user, defaults={"auto_link": "off"})
    for subject in ("Uno", "Due", "Tre"):
        dovecot.deliver(mail_user, message(subject, from_=GIULIA))
    sync_account_once(account.pk)
    giulia = contact(user, "Giulia", "", "giulia@ferrari-impianti.test")
    job = record_backfill.check_start_linking(user, giulia)
    first, *_rest = Message.objects.filter(user=user).order_by("pk")
    # A worker matched the first message (a chunk of one), committed, and died.
    RecordLinkJob.objects.filter(pk=job.pk).update(
        state="running", total=3, done=1, after_id=first.pk,
        until_id=Message.objects.filter(user=user).order_by("-pk").first().pk,
        claimed_by="dead:1:x", lease_until=timezone.now() + timedelta(minutes=1),
    )  # fmt: skip
    assert record_backfill.jobs_due() == []
    assert record_backfill.run_job(job.pk) == ""  # held by the dead worker's lease
    RecordLinkJob.objects.filter(pk=job.pk).update(lease_until=timezone.now())
    monkeypatch.setattr(record_backfill, "CHUNK", 1)
    assert record_backfill.run_job(job.pk) == RecordLinkJob.State.DONE
    job.refresh_from_db()
    assert (job.done, job.total, job.percent) == (3, 3, 100)
    # Resumed after the cursor: what the dead worker did is not done again.
    assert linked_subjects(user, giulia) == {"Due", "Tre"}
