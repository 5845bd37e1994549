"""Shared mail linked to CRM records a colleague may not see ("users see the
records they own"): the owner is asked whether to let them read those records or
to share the mail alone; a grant lets the colleague read the record (its page,
the shared view's CRM panel), never edit, delete or merge it; revoking the share
takes the grant away."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.crm import services as crm
from posta.crm.models import Contact, CrmSettings, Lead, RecordGrant
from posta.mail import links as mail_links
from posta.shares.models import Access, Share
from posta.users.models import User
from tests.integration.shares_world import Colleagues, two_colleagues
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quiet_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    with recorded_wakeups(sends=[]):
        yield


def as_user(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def contact(owner: User, first: str, last: str, *emails: str) -> Contact:
    record = crm.do_save_record(
        Contact(owner=owner, first_name=first, last_name=last), emails=list(emails)
    )
    assert isinstance(record, Contact)
    return record


@pytest.fixture
def world(dovecot: DovecotServer, smtp_server: SmtpServer, settings: Any) -> Colleagues:
    made = two_colleagues(dovecot, smtp_server, settings)
    CrmSettings.objects.update_or_create(pk=1, defaults={"visibility": "own"})
    return made


@pytest.fixture
def carla(world: Colleagues) -> Contact:
    """Anna's contact, linked to the whole conversation Anna will share."""
    record = contact(world.a, "Carla", "Verdi", "carla@example.test")
    mail_links.do_link_message(world.a, world.first, record, conversation=True)
    return record


def _share_form(world: Colleagues, **extra: str) -> dict[str, str]:
    return {"people": world.b.username, "access": Access.READ, "follow": "1",
            "comment": "Guarda", **extra}


def _shared_view(client: Client, share: Share) -> str:
    answer = client.get(reverse("share_open", args=[share.pk]), HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    return answer.content.decode()


def _record_url(record: Contact, suffix: str = "") -> str:
    return f"/crm/contact/{record.pk}/{suffix}"


def _reads(client: Client, record: Contact) -> bool:
    status = client.get(_record_url(record)).status_code
    assert status in (200, 404)
    return status == 200


def test_the_owner_is_asked_and_may_share_the_mail_alone(
    world: Colleagues, carla: Contact
) -> None:
    a, b = as_user(world.a), as_user(world.b)
    assert not _reads(b, carla)
    asked = a.post(reverse("share_new", args=[world.answer.pk]), _share_form(world))
    page = asked.content.decode()
    assert asked.status_code == 200
    assert "Also let them read these records" in page and "Share the mail alone" in page
    assert f'data-ref="{carla.ref}"' in page and "Bruno" in page
    assert 'name="comment" value="Guarda"' in page  # the form is carried through
    assert not Share.objects.exists()

    alone = a.post(reverse("share_new", args=[world.answer.pk]),
                   _share_form(world, records="alone"))
    assert alone.status_code == 302
    share = Share.objects.get(owner=world.a)
    assert share.comments.get().body == "Guarda"
    assert not RecordGrant.objects.exists()
    view = _shared_view(b, share)
    assert "Ci mandate un preventivo" in view or "Preventivo impianto" in view
    assert "Carla Verdi" not in view and carla.ref not in view
    assert not _reads(b, carla)
    assert "Carla" not in b.get("/crm/contact/").content.decode()
    # The owner's own view of the conversation shows the record.
    assert carla.ref in _shared_view(a, share)


def test_a_grant_lets_the_colleague_read_never_change_and_revoking_takes_it_away(
    world: Colleagues, carla: Contact
) -> None:
    a, b = as_user(world.a), as_user(world.b)
    unlinked = Lead.objects.create(owner=world.a, name="Altro lead")
    granted = a.post(reverse("share_new", args=[world.answer.pk]),
                     _share_form(world, records="grant"))
    assert granted.status_code == 302
    share = Share.objects.get(owner=world.a)
    grant = RecordGrant.objects.get()
    assert (grant.kind, grant.record_id, grant.user, grant.granted_by, grant.reason) == (
        "contact", carla.pk, world.b, world.a, f"share:{share.pk}"
    )
    # B reads it: the shared view's CRM panel, the record page, the list.
    view = _shared_view(b, share)
    assert f'data-ref="{carla.ref}"' in view and "Carla Verdi" in view
    page = b.get(_record_url(carla)).content.decode()
    assert "Carla Verdi" in page and "carla@example.test" in page
    assert "record-read-only" in page and _record_url(carla, "edit/") not in page
    assert "Carla" in b.get("/crm/contact/").content.decode()
    assert not _reads(b, unlinked)  # type: ignore[arg-type]
    # ... and never changes it.
    bruno_own = contact(world.b, "Carla", "Doppia", "carla@example.test")
    for suffix in ("edit/", "delete/"):
        assert b.get(_record_url(carla, suffix)).status_code == 404, suffix
        assert b.post(_record_url(carla, suffix), {"first_name": "X"}).status_code == 404
    assert b.post(_record_url(carla, "merge/"),
                  {"duplicate": bruno_own.ref}).status_code == 404
    assert b.post(_record_url(bruno_own, "merge/"),
                  {"duplicate": carla.ref}).status_code == 404
    assert b.post(reverse("crm_panel_link", args=[world.first.pk]),
                  {"record": carla.ref}).status_code == 404
    carla.refresh_from_db()
    assert (carla.first_name, carla.last_name) == ("Carla", "Verdi")
    assert Contact.objects.filter(pk=bruno_own.pk).exists()
    # Revoking B takes the grant away.
    recipient = share.recipients.get(user=world.b)
    a.post(reverse("share_manage", args=[share.pk]),
           {"action": "revoke", "recipient": str(recipient.pk)})
    assert not RecordGrant.objects.exists()
    assert not _reads(b, carla)
    assert "Carla" not in b.get("/crm/contact/").content.decode().replace("Carla Doppia", "")


def test_adding_people_later_asks_again_and_stopping_the_share_removes_its_grants(
    world: Colleagues, carla: Contact
) -> None:
    a = as_user(world.a)
    carlo = User.objects.create_user("carlo", password="pw-unused-123", first_name="Carlo")
    a.post(reverse("share_new", args=[world.answer.pk]), _share_form(world, records="alone"))
    share = Share.objects.get(owner=world.a)
    manage = reverse("share_manage", args=[share.pk])
    add = {"action": "add", "people": "carlo", "access": Access.READ}
    asked = a.post(manage, add)
    assert asked.status_code == 200 and "Also let them read these records" in asked.content.decode()
    assert not share.recipients.filter(user=carlo).exists()
    assert a.post(manage, {**add, "records": "grant"}).status_code == 302
    assert share.recipients.filter(user=carlo).exists()
    assert list(RecordGrant.objects.values_list("user__username", flat=True)) == ["carlo"]
    assert _reads(as_user(carlo), carla) and not _reads(as_user(world.b), carla)
    # Everyone: the question names every colleague who may not see the record.
    dario = User.objects.create_user("dario", password="pw-unused-123", first_name="Dario")
    asked = a.post(manage, {"action": "add", "everyone": "1", "access": Access.READ})
    words = asked.content.decode()
    assert "Bruno" in words and "Dario" in words and "Carlo" not in words
    a.post(manage, {"action": "add", "everyone": "1", "access": Access.READ,
                    "records": "grant"})
    assert _reads(as_user(dario), carla) and _reads(as_user(world.b), carla)
    a.post(manage, {"action": "everyone_off"})
    assert not _reads(as_user(dario), carla)  # Dario had it only as one of everyone
    assert _reads(as_user(carlo), carla) and _reads(as_user(world.b), carla)  # named
    a.post(manage, {"action": "stop"})
    assert not RecordGrant.objects.exists()
    assert not _reads(as_user(carlo), carla)


def test_no_question_when_the_colleagues_see_every_record(
    world: Colleagues, carla: Contact
) -> None:
    CrmSettings.objects.filter(pk=1).update(visibility="all")
    answer = as_user(world.a).post(reverse("share_new", args=[world.answer.pk]),
                                   _share_form(world))
    assert answer.status_code == 302
    assert not RecordGrant.objects.exists()
    assert f'data-ref="{carla.ref}"' in _shared_view(as_user(world.b), Share.objects.get())


def test_a_grant_follows_a_merge_and_goes_with_a_deleted_record() -> None:
    from posta.crm import grants

    CrmSettings.objects.update_or_create(pk=1, defaults={"visibility": "own"})
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")  # set up
    anna = User.objects.create_user("anna", password="pw-unused-123")
    bruno = User.objects.create_user("bruno", password="pw-unused-123")
    keep = contact(anna, "Carla", "Verdi", "carla@example.test")
    duplicate = contact(anna, "Carla", "Verdi", "c.verdi@example.test")
    assert grants.who_cannot_read([keep, duplicate], [anna, bruno]) == {
        keep.ref: [bruno], duplicate.ref: [bruno]
    }
    grants.do_grant([duplicate], [bruno], by=anna, reason="share:1")
    assert grants.who_cannot_read([keep, duplicate], [bruno]) == {keep.ref: [bruno]}
    crm.do_merge_records(keep, duplicate)
    assert _reads(as_user(bruno), keep)
    crm.do_delete_record(keep)
    assert not RecordGrant.objects.exists()
