"""The editor as the mail screen's compose panel asks for it (`?frame=1`, issue 19):
only those pages may be framed, and by Posta alone; Send and Schedule end on a
page that hands the panel the toast's words; the toast's status and Undo answer
in JSON; another user's row is a 404 there as everywhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from posta.mail import outbox
from posta.mail.models import OutgoingMessage
from posta.users.models import User
from posta.web.middleware import SetupMiddleware
from tests.integration.test_outbox_idioms import make_account, write
from tests.integration.test_pages_csp import directives
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

SENDS: list[tuple[int, datetime | None]] = []
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    User.objects.create_superuser("admin", password="Setup-done-26")
    SetupMiddleware.set_ready()
    SENDS.clear()
    with recorded_wakeups(sends=SENDS, drafts=[]):
        yield


def framed(url: str) -> str:
    return f"{url}?frame=1"


def form_data(row: OutgoingMessage, action: str, **extra: str) -> dict[str, str]:
    return {
        "account": str(row.account_id), "to": "bruno@example.test", "subject": row.subject,
        "body": "<p>Hi</p>", "action": action, **extra,
    }  # fmt: skip


def test_only_the_framed_editor_may_be_framed_and_only_by_posta(client: Client) -> None:
    account = make_account("anna")
    row = write(account)
    client.force_login(account.user)
    for url in (reverse("compose_new"), reverse("compose_edit", args=[row.pk])):
        page = client.get(url)
        assert directives(page["Content-Security-Policy"])["frame-ancestors"] == ["'none'"]
        inside = client.get(framed(url))
        assert inside.status_code == 200
        assert directives(inside["Content-Security-Policy"])["frame-ancestors"] == ["'self'"]
        assert inside["X-Frame-Options"] == "SAMEORIGIN"
        html = inside.content.decode()
        assert 'class="topbar"' not in html  # the bare layout of the panel
        assert "compose_frame.js" in html
        assert " style=" not in html
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", html)
        # Every URL the framed page posts to keeps it framed.
        for name in ("action", "data-autosave-url"):
            found = re.search(rf'id="compose-form"[^>]*?{name}="([^"]+)"', html, re.DOTALL)
            assert found is not None and found.group(1).endswith("?frame=1"), name
    assert directives(client.get(reverse("mail_index"))["Content-Security-Policy"])[
        "frame-ancestors"
    ] == ["'none'"]


def test_send_in_the_frame_ends_on_the_toast_page_then_status_and_undo_answer_json(
    client: Client,
) -> None:
    account = make_account("anna")
    account.user.undo_send_seconds = 30
    account.user.save()
    row = write(account)
    client.force_login(account.user)
    sent = client.post(framed(reverse("compose_edit", args=[row.pk])), form_data(row, "send"))
    assert sent.status_code == 302
    assert sent["Location"] == framed(reverse("compose_sending", args=[row.pk]))
    done = client.get(sent["Location"])
    html = done.content.decode()
    assert 'id="compose-done"' in html and 'data-kind="sent"' in html
    assert f'data-undo-url="{reverse("compose_undo", args=[row.pk])}"' in html
    assert directives(done["Content-Security-Policy"])["frame-ancestors"] == ["'self'"]
    row.refresh_from_db()
    assert row.state == OutgoingMessage.State.QUEUED
    assert [(pk, when) for pk, when in SENDS] == [(row.pk, row.send_at)]  # the worker's wake-up

    status = client.get(reverse("compose_sending", args=[row.pk]), **JSON).json()
    assert status["state"] == "queued" and not status["final"]
    assert 0 < status["remaining"] <= 30 and status["text"] == "Sending…"

    undo = client.post(reverse("compose_undo", args=[row.pk]), **JSON).json()
    assert undo == {"undone": True, "edit_url": framed(reverse("compose_edit", args=[row.pk]))}
    row.refresh_from_db()
    assert row.state == OutgoingMessage.State.DRAFT
    assert client.get(reverse("compose_sending", args=[row.pk]), **JSON).json()["final"]

    # Sent meanwhile: too late, in words; the status says it left.
    outbox.check_send(account.user, row)
    OutgoingMessage.objects.filter(pk=row.pk).update(state=OutgoingMessage.State.SENT)
    late = client.post(reverse("compose_undo", args=[row.pk]), **JSON).json()
    assert late == {"undone": False, "text": "Too late: the message has already left."}
    status = client.get(reverse("compose_sending", args=[row.pk]), **JSON).json()
    assert status["final"] and status["text"] == "Message sent."
    # What went wrong, in words, ends the toast too.
    OutgoingMessage.objects.filter(pk=row.pk).update(
        state=OutgoingMessage.State.FAILED, error_code="recipients_refused"
    )
    status = client.get(reverse("compose_sending", args=[row.pk]), **JSON).json()
    assert status["final"] and status["text"] == "Not sent: The server refused every recipient."
    # The framed editor of a row that left closes the panel, in words.
    gone = client.get(framed(reverse("compose_edit", args=[row.pk])))
    assert 'id="compose-done"' in gone.content.decode()
    assert "This message is no longer a draft." in gone.content.decode()


def test_schedule_in_the_frame_closes_the_panel_and_errors_keep_the_fields_open(
    client: Client,
) -> None:
    account = make_account("anna")
    row = write(account)
    client.force_login(account.user)
    url = framed(reverse("compose_edit", args=[row.pk]))
    # The fields start closed; a scheduling error brings them back open.
    assert 'id="schedule-fields" data-open=""' in client.get(url).content.decode()
    past = client.post(url, form_data(row, "schedule", send_at="2020-01-01T10:00:00"))
    assert past.status_code == 200
    assert 'id="schedule-fields" data-open="1"' in past.content.decode()
    when = timezone.localtime(timezone.now() + timedelta(hours=3)).replace(microsecond=0)
    done = client.post(url, form_data(row, "schedule", send_at=when.strftime("%Y-%m-%dT%H:%M:%S")))
    assert done["Location"] == framed(reverse("compose_sending", args=[row.pk]))
    page = client.get(done["Location"]).content.decode()
    assert 'data-kind="closed"' in page and "The message is scheduled." in page
    assert 'data-undo-url=""' in page
    row.refresh_from_db()
    assert row.state == OutgoingMessage.State.SCHEDULED
    # No message left over for the next full page: the toast said it.
    assert "The message is scheduled." not in client.get(reverse("compose_outbox")).content.decode()


def test_another_users_row_is_a_404_in_the_frame_and_in_json(client: Client) -> None:
    anna, bruno = make_account("anna"), make_account("bruno")
    row = write(anna)
    outbox.check_send(anna.user, row)
    client.force_login(bruno.user)
    for response in (
        client.get(framed(reverse("compose_edit", args=[row.pk]))),
        client.get(framed(reverse("compose_sending", args=[row.pk]))),
        client.get(reverse("compose_sending", args=[row.pk]), **JSON),
        client.post(reverse("compose_undo", args=[row.pk]), **JSON),
    ):
        assert response.status_code == 404
    row.refresh_from_db()
    assert row.state == OutgoingMessage.State.QUEUED
    # A frame switch that is not one is a clear 400, and nothing changes.
    client.force_login(anna.user)
    draft = write(anna)
    bad = client.post(
        reverse("compose_edit", args=[draft.pk]) + "?frame=yes",
        {**form_data(draft, "send"), "subject": "Changed"},
    )
    assert bad.status_code == 400
    draft.refresh_from_db()
    assert draft.state == OutgoingMessage.State.DRAFT and draft.subject == "Hello"
