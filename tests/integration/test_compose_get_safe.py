"""Opening the editor writes nothing; its first POST stores the draft, once.

Every compose page reachable by GET (new, reply, reply all, forward, forward as
attachment, a draft from Drafts, send again, and the pages of a stored draft) is
opened against real mail from Dovecot, and the whole database and blob store are
compared before and after. Then the page's own fields are posted, as the browser
posts them, and exactly one row and one server copy result, however often the
first POST is repeated or raced.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.urls import reverse

from posta.delivery import drafts
from posta.mail import outbox_models, replies
from posta.mail.models import Message, OutgoingAttachment, OutgoingMessage
from posta.users.models import User
from tests.integration.editor_page import open_editor
from tests.integration.test_drafts import another_clients_draft, logged_in, synced
from tests.integration.test_send import make_sender, parsed, send_now, write
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

State = OutgoingMessage.State
WOKEN: list[int] = []


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    WOKEN.clear()
    with recorded_wakeups(drafts=WOKEN):
        yield


# --------------------------------------------------------------------------- helpers


def snapshot() -> dict[str, Any]:
    """Every row of every model, and every file of the blob store."""
    state: dict[str, Any] = {}
    for model in apps.get_models():
        if model._meta.db_table not in connection.introspection.table_names():
            continue
        rows = model._default_manager.order_by("pk").values_list()
        state[model._meta.label] = [tuple(map(repr, row)) for row in rows]
    root = Path(default_storage.location)  # type: ignore[attr-defined]
    state["blobs"] = sorted(str(p) for p in root.rglob("*") if p.is_file())
    return state


def drafts_on_server(dovecot: DovecotServer, user: MailUser) -> list[EmailMessage]:
    client = dovecot.imap(user)
    try:
        client.select("Drafts")
        _typ, data = client.uid("SEARCH", "ALL")
        found = []
        for uid in data[0].split() if data and data[0] else []:
            _typ, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")
            item = fetched[0]
            assert isinstance(item, tuple)
            found.append(parsed(item[1]))
        return found
    finally:
        client.logout()


def offer(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Bruno <bruno@example.test>"
    msg["To"] = to
    msg["Cc"] = "Carla <carla@example.test>"
    msg["Subject"] = "Offer"
    msg["Message-ID"] = "<offer-1@example.test>"
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    msg.set_content("Our offer is attached.\n")
    msg.add_attachment(b"%PDF-1.4 offer", maintype="application", subtype="pdf",
                       filename="offer.pdf")
    return msg


def mailbox(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> tuple[MailUser, Any, dict[str, Message]]:
    """An account with an offer in INBOX, another client's draft in Drafts, a
    message Posta sent and one another client sent."""
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    dovecot.deliver(mail_a, offer(mail_a.address))
    dovecot.deliver(mail_a, another_clients_draft("bruno@example.test"), folder="Drafts",
                    flags="\\Draft")
    first = send_now(write(a, to="Dario <dario@example.test>", subject="Minutes"))
    other = EmailMessage()
    other["From"] = mail_a.address
    other["To"] = "Elena <elena@example.test>"
    other["Subject"] = "Sent elsewhere"
    other["Message-ID"] = "<sent-elsewhere@example.test>"
    other["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    other.set_content("Sent from the phone\n")
    dovecot.deliver(mail_a, other, folder="Sent", flags="\\Seen")
    messages = {
        "offer": synced(a, message_id="offer-1@example.test"),
        "draft": synced(a, message_id="elsewhere-1@example.test"),
        "sent": synced(a, message_id=first.message_id),
        "elsewhere": synced(a, message_id="sent-elsewhere@example.test"),
    }
    WOKEN.clear()  # the wake-ups of the message sent above
    return mail_a, a, messages


def editor_urls(a: Any, m: dict[str, Message]) -> dict[str, str]:
    offer_id = m["offer"].pk
    return {
        "new": reverse("compose_new"),
        "new_from": reverse("compose_new") + f"?account={a.pk}",
        "reply": reverse("compose_reply", args=[offer_id]),
        "reply_all": reverse("compose_reply", args=[offer_id]) + "?all=1",
        "forward": reverse("compose_forward", args=[offer_id]),
        "forward_attached": reverse("compose_forward", args=[offer_id]) + "?attach=1",
        "draft": reverse("compose_draft", args=[m["draft"].pk]),
        "again": reverse("compose_again", args=[m["sent"].pk]),
        "again_elsewhere": reverse("compose_again", args=[m["elsewhere"].pk]),
    }


# ----------------------------------------------------------------------------- tests


def test_every_compose_get_leaves_the_database_and_the_blobs_unchanged(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a, a, m = mailbox(dovecot, smtp_server)
    stored = write(a, to="bruno@example.test", subject="Stored draft")
    browser = logged_in(a.user)
    drafts_before = dovecot.uids(mail_a, "Drafts")
    WOKEN.clear()
    due_before = [pk for pk in drafts.drafts_due() if pk != stored.pk]
    before = snapshot()

    pages = {name: open_editor(browser, url) for name, url in editor_urls(a, m).items()}
    others = [
        reverse("compose_edit", args=[stored.pk]),
        reverse("compose_sending", args=[stored.pk]),
        reverse("compose_scheduled"),
        reverse("compose_outbox"),
        reverse("compose_addresses") + "?q=br",
        # The reader marks read with a POST the page itself issues, not on this GET.
        reverse("mail_message", args=[m["offer"].pk]),
    ]
    for url in others:
        assert browser.get(url, HTTP_HX_REQUEST="true").status_code == 200, url

    assert snapshot() == before
    assert WOKEN == []
    assert dovecot.uids(mail_a, "Drafts") == drafts_before
    assert [pk for pk in drafts.drafts_due() if pk != stored.pk] == due_before

    # The pages show what the draft will hold, and carry its origin to the first POST.
    reply = pages["reply"].fields
    assert reply["subject"] == "Re: Offer"
    assert reply["to"] == "Bruno <bruno@example.test>"
    assert (reply["origin"], reply["source"]) == ("reply", str(m["offer"].pk))
    assert pages["reply_all"].fields["cc"] == "Carla <carla@example.test>"
    assert pages["new_from"].fields["account"] == str(a.pk)
    assert pages["draft"].fields["subject"] == "Written elsewhere"
    assert pages["again"].fields["to"] == "Dario <dario@example.test>"
    keys = [p.fields["draft_key"] for p in pages.values()]
    assert len(set(keys)) == len(keys)  # a fresh key for every page shown
    assert all(p.urls["autosave"] == reverse("compose_start_autosave") for p in pages.values())
    assert pages["forward"].attach_fields["draft_key"] == pages["forward"].fields["draft_key"]
    forward = browser.get(editor_urls(a, m)["forward"]).content.decode()
    assert "offer.pdf" in forward
    assert "Offer.eml" in browser.get(editor_urls(a, m)["forward_attached"]).content.decode()


def test_a_cross_site_get_creates_nothing_and_a_forged_post_is_refused(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    _mail_a, a, m = mailbox(dovecot, smtp_server)
    logged_in(a.user)
    victim = Client(enforce_csrf_checks=True)
    victim.force_login(a.user)
    before = snapshot()
    cross_site = {"HTTP_REFERER": "https://evil.example/", "HTTP_SEC_FETCH_SITE": "cross-site"}
    for url in editor_urls(a, m).values():
        assert victim.get(url, **cross_site).status_code == 200
    # The URLs that store a draft answer nothing but POST...
    for name in ("compose_start", "compose_start_autosave", "compose_start_attach"):
        assert victim.get(reverse(name), **cross_site).status_code == 405
    # ...and a POST from another site lacks the page's CSRF token.
    page = open_editor(victim, editor_urls(a, m)["reply"])
    forged = {k: v for k, v in page.fields.items() if k != "csrfmiddlewaretoken"}
    for name in ("compose_start", "compose_start_autosave"):
        assert victim.post(reverse(name), forged, **cross_site).status_code == 403
    assert snapshot() == before
    assert WOKEN == []


def test_the_first_autosave_creates_one_row_and_one_server_copy(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a, a, m = mailbox(dovecot, smtp_server)
    browser = logged_in(a.user)
    drafts_before = dovecot.uids(mail_a, "Drafts")
    rows_before = OutgoingMessage.objects.count()
    page = open_editor(browser, editor_urls(a, m)["reply"])
    fields = {**page.fields, "body": "<p>Thanks, we accept.</p>"}

    answer = browser.post(page.urls["autosave"], fields)
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["saved"] is True
    row = OutgoingMessage.objects.get(user=a.user, draft_key=fields["draft_key"])
    assert data["urls"] == {
        "edit": f"/compose/{row.pk}/",
        "autosave": f"/compose/{row.pk}/autosave/",
        "attach": f"/compose/{row.pk}/attachments/",
    }
    assert OutgoingMessage.objects.count() == rows_before + 1
    assert (row.kind, row.state, row.subject) == ("reply", State.DRAFT, "Re: Offer")
    assert row.original_id == m["offer"].pk
    assert row.in_reply_to == "offer-1@example.test"
    assert "Thanks, we accept." in row.body_html
    assert WOKEN == [row.pk]

    # The same first POST again (a beacon on leaving, a second click): the same row.
    again = browser.post(page.urls["autosave"], {**fields, "subject": "Re: Offer (v2)"})
    assert again.json()["urls"]["edit"] == f"/compose/{row.pk}/"
    assert OutgoingMessage.objects.count() == rows_before + 1
    # Reopening the compose URL shows a new page; nothing is stored by it.
    open_editor(browser, editor_urls(a, m)["reply"])
    assert OutgoingMessage.objects.count() == rows_before + 1

    for outgoing_id in sorted(set(WOKEN)):
        drafts.store_draft(outgoing_id)
    new_uids = [u for u in dovecot.uids(mail_a, "Drafts") if u not in drafts_before]
    assert len(new_uids) == 1
    mine = [msg for msg in drafts_on_server(dovecot, mail_a)
            if msg[outbox_models.DRAFT_ID_HEADER] == row.draft_key]
    assert len(mine) == 1
    assert mine[0]["Subject"] == "Re: Offer (v2)"
    assert mine[0]["In-Reply-To"] == "<offer-1@example.test>"


def test_a_forward_copies_its_attachments_when_its_first_post_stores_it(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    _mail_a, a, m = mailbox(dovecot, smtp_server)
    browser = logged_in(a.user)
    for name, expected in (("forward", ["offer.pdf"]), ("forward_attached", ["Offer.eml"])):
        page = open_editor(browser, editor_urls(a, m)[name])
        assert not OutgoingAttachment.objects.filter(
            outgoing__draft_key=page.fields["draft_key"]
        ).exists()
        response = browser.post(page.urls["edit"], {**page.fields, "to": "dario@example.test",
                                                    "action": "save"})
        row = OutgoingMessage.objects.get(user=a.user, draft_key=page.fields["draft_key"])
        assert response.status_code == 302
        assert response["Location"] == f"/compose/{row.pk}/"
        assert row.kind == name
        assert [att.filename for att in row.attachments.all()] == expected
        # The stored draft's own page lists them, now removable.
        html = browser.get(response["Location"]).content.decode()
        assert f"/compose/{row.pk}/attachments/" in html and "/delete/" in html


def test_send_and_attach_from_a_page_whose_draft_is_not_stored(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    _mail_a, a, m = mailbox(dovecot, smtp_server)
    browser = logged_in(a.user)
    page = open_editor(browser, editor_urls(a, m)["again_elsewhere"])
    assert page.fields["to"] == "Elena <elena@example.test>"
    sent = browser.post(page.urls["edit"], {**page.fields, "action": "send"})
    row = OutgoingMessage.objects.get(user=a.user, draft_key=page.fields["draft_key"])
    assert sent["Location"] == f"/compose/{row.pk}/sending/"
    assert row.state == State.QUEUED
    assert row.to == [["Elena", "elena@example.test"]]

    # Files added before anything was typed store the draft too (the page without
    # script posts only the attach form, with the page's key).
    page = open_editor(browser, reverse("compose_new"))
    upload = open(__file__, "rb")
    try:
        attached = browser.post(page.urls["attach"], {**page.attach_fields, "files": upload})
    finally:
        upload.close()
    row = OutgoingMessage.objects.get(user=a.user, draft_key=page.fields["draft_key"])
    assert attached["Location"] == f"/compose/{row.pk}/"
    assert attached["X-Posta-Draft-Url"] == f"/compose/{row.pk}/"
    assert [att.filename for att in row.attachments.all()] == [Path(__file__).name]
    assert row.draft_revision == 0  # nothing typed yet: no server copy to make


def test_racing_first_posts_make_one_row(
    dovecot: DovecotServer, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mail_a, a, m = mailbox(dovecot, smtp_server)
    key = outbox_models.new_draft_key()
    rows_before = OutgoingMessage.objects.count()
    first = replies.check_start_draft(a.user, "forward", draft_key=key, message_id=m["offer"].pk)

    # The other POST's INSERT lands between this one's look and its INSERT: the
    # unique key refuses the second row and the first is returned.
    looks: list[str] = []
    real_by_key = replies._by_key

    def late_look(user: User, draft_key: str) -> OutgoingMessage | None:
        looks.append(draft_key)
        return None if len(looks) == 1 else real_by_key(user, draft_key)

    monkeypatch.setattr(replies, "_by_key", late_look)
    second = replies.check_start_draft(a.user, "forward", draft_key=key,
                                       message_id=m["offer"].pk)
    assert second.pk == first.pk
    assert len(looks) == 2
    monkeypatch.undo()
    assert OutgoingMessage.objects.count() == rows_before + 1
    assert OutgoingAttachment.objects.filter(outgoing=first).count() == 1

    # Two threads at once, each on its own database connection.
    key = outbox_models.new_draft_key()
    start = threading.Barrier(2)
    made: list[int] = []
    failed: list[BaseException] = []

    def post() -> None:
        try:
            start.wait(timeout=30)
            made.append(replies.check_start_draft(
                a.user, "reply", draft_key=key, message_id=m["offer"].pk
            ).pk)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            failed.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failed == []
    assert len(made) == 2 and made[0] == made[1]
    assert OutgoingMessage.objects.filter(draft_key=key).count() == 1


def test_the_first_post_checks_its_origin_again(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    _mail_a, a, m = mailbox(dovecot, smtp_server)
    intruder = User.objects.create_user(username="intruder", password="pw-unused-123")
    browser = logged_in(a.user)
    other = logged_in(intruder)
    page = open_editor(browser, editor_urls(a, m)["forward"])
    before = snapshot()
    # Another user's message as the source: not found, nothing stored.
    for name in ("compose_start", "compose_start_attach"):
        assert other.post(reverse(name), page.fields).status_code == 404
    assert other.get(editor_urls(a, m)["forward"]).status_code == 404
    # A key no page made, an origin that does not exist.
    for change in ({"draft_key": "../x"}, {"draft_key": ""}, {"origin": "steal"}):
        response = browser.post(reverse("compose_start_autosave"), {**page.fields, **change})
        assert response.status_code == 400, change
    assert snapshot() == before
