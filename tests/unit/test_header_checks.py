"""Header injection at the service layer: what the user saves or sends is refused
with the field named, in the user's language, and never queued; a row already
queued whose message cannot be built fails at once instead of looping."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone, translation

from posta.accounts.models import Account
from posta.core.errors import PostaError
from posta.delivery import compose as worker_compose
from posta.delivery import sending
from posta.mail import blobs, outbox, outbox_sentences
from posta.mail.models import OutgoingAttachment, OutgoingMessage
from posta.users.models import User
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db

State = OutgoingMessage.State

BREAKS = {
    "crlf": "\r\n",
    "lf": "\n",
    "cr": "\r",
    "vt": "\x0b",
    "ff": "\x0c",
    "nel": "\x85",
    "u2028": "\u2028",
    "u2029": "\u2029",
    "nul": "\0",
}
INJECTION = "Hi{br}X-Injected: 1"


def q_word(text: str) -> str:
    data = "".join(
        ch if ch.isalnum() and ch.isascii() else "".join(f"={b:02X}" for b in ch.encode())
        for ch in text
    )
    return f"=?utf-8?q?{data}?="


def b_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


ENCODED: dict[str, Callable[[str], str]] = {"q": q_word, "b": b_word}


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    with recorded_wakeups():
        yield


@pytest.fixture
def account() -> Account:
    # No password: hashing one would be most of each test's time.
    user = User.objects.create(username="anna", email="anna@example.test",
                               first_name="Anna", last_name="Rossi")
    return Account.objects.create(
        user=user, username="anna@example.test", email="anna@example.test",
        description="Anna", imap_host="imap.example.test", smtp_host="smtp.example.test",
        is_main=True,
    )


def draft(account: Account, **typed: str) -> OutgoingMessage:
    row = outbox.do_new_draft(account.user, account=account)
    values = {"to": "bob@example.test", "subject": "Hello", "body_html": "<p>Hi</p>"}
    values.update(typed)
    return outbox.check_save_draft(
        account.user, row, outbox.Draft(account_id=account.pk, **values)
    )


# Where the user types, the form field the error belongs to, and the field's name
# in each language.
ADDRESS_FIELDS = {
    "to": ("To", "A"),
    "cc": ("Cc", "Cc"),
    "bcc": ("Bcc", "Ccn"),
}


def _names_field(error: PostaError, english: str, italian: str) -> None:
    assert error.code == "header_newline"
    assert english in str(error.message)
    with translation.override("it"):
        assert italian in str(error.message)


@pytest.mark.parametrize("brk", BREAKS.values(), ids=BREAKS.keys())
@pytest.mark.parametrize("encoding", ["literal", "q", "b"])
def test_subject_with_a_break_is_refused_when_saved_and_sent(
    account: Account, encoding: str, brk: str
) -> None:
    text = INJECTION.format(br=brk)
    subject = text if encoding == "literal" else ENCODED[encoding](text)
    with pytest.raises(PostaError) as saving:
        draft(account, subject=subject)
    assert saving.value.field == "subject"
    _names_field(saving.value, "the subject", "Oggetto")
    if brk == "\0" and connection.vendor == "postgresql":
        return  # PostgreSQL text cannot hold NUL: no stored row can have one
    # A row that holds one anyway (saved before this check) is not queued either.
    row = draft(account)
    OutgoingMessage.objects.filter(pk=row.pk).update(subject=subject)
    with pytest.raises(PostaError) as sending_it:
        outbox.check_send(account.user, row)
    assert sending_it.value.field == "subject"
    assert OutgoingMessage.objects.get(pk=row.pk).state == State.DRAFT


@pytest.mark.parametrize("brk", BREAKS.values(), ids=BREAKS.keys())
@pytest.mark.parametrize("encoding", ENCODED.keys())
@pytest.mark.parametrize("field", ADDRESS_FIELDS.keys())
def test_encoded_break_in_a_display_name_is_refused_at_send(
    account: Account, field: str, encoding: str, brk: str
) -> None:
    name = ENCODED[encoding](INJECTION.format(br=brk))
    typed = {"to": "bob@example.test", field: f'"{name}" <carla@example.test>'}
    row = draft(account, **typed)
    with pytest.raises(PostaError) as caught:
        outbox.check_send(account.user, row)
    assert caught.value.field == field
    _names_field(caught.value, *ADDRESS_FIELDS[field])
    assert OutgoingMessage.objects.get(pk=row.pk).state == State.DRAFT


@pytest.mark.parametrize("brk", BREAKS.values(), ids=BREAKS.keys())
@pytest.mark.parametrize("field", ADDRESS_FIELDS.keys())
def test_a_break_typed_in_an_address_field_never_reaches_the_message(
    account: Account, field: str, brk: str
) -> None:
    typed = {"to": "bob@example.test", field: f"Carla{brk}X-Injected: 1 <carla@example.test>"}
    row = draft(account, **typed)
    # The draft keeps what was typed, with the break as a space; Send accepts that.
    (kept,) = getattr(row, field)
    assert kept == ["Carla" + " " * len(brk) + "X-Injected: 1", "carla@example.test"]
    queued = outbox.check_send(account.user, row)
    assert queued.state == State.QUEUED
    message = worker_compose.build_message(queued, date=timezone.now())
    assert "X-Injected" not in message.keys()


@pytest.mark.parametrize("encoding", ENCODED.keys())
def test_attachment_name_with_an_encoded_break_is_refused(
    account: Account, encoding: str
) -> None:
    row = draft(account)
    name = ENCODED[encoding]("a\r\nX-Injected: 1") + ".pdf"
    with pytest.raises(PostaError) as caught:
        outbox.check_add_attachment(
            account.user, row, filename=name, content_type="application/pdf", data=b"%PDF"
        )
    assert caught.value.field == "attachments"
    _names_field(caught.value, "the attachment name", "Nome dell'allegato")
    assert not row.attachments.exists()
    # Stored before this check: Send refuses it, naming the attachment.
    OutgoingAttachment.objects.create(
        outgoing=row, filename=name, content_type="application/pdf", size=4,
        blob_key=blobs.put(b"%PDF"),
    )
    with pytest.raises(PostaError) as sending_it:
        outbox.check_send(account.user, row)
    assert sending_it.value.field == "attachments"


@pytest.mark.parametrize("brk", ["\r\n", "\u2028", "\x85", "\x0b", "\x0c"])
def test_attachment_name_loses_literal_breaks(account: Account, brk: str) -> None:
    row = draft(account)
    attachment = outbox.check_add_attachment(
        account.user, row, filename=f"offer{brk}X-Injected: 1.pdf",
        content_type="application/pdf", data=b"%PDF",
    )
    assert attachment.filename == "offerX-Injected: 1.pdf"


def test_sender_name_with_an_encoded_break_is_refused(account: Account) -> None:
    User.objects.filter(pk=account.user_id).update(first_name=q_word("Anna\r\nX-Injected: 1"))
    account.refresh_from_db()
    row = draft(account)
    with pytest.raises(PostaError) as caught:
        outbox.check_send(account.user, row)
    _names_field(caught.value, "the sender name", "Nome del mittente")


def test_ids_from_stored_mail_that_cannot_be_written_are_left_out(account: Account) -> None:
    row = draft(account)
    bad = q_word("a\r\nX-Injected: 1") + "@evil.test"
    OutgoingMessage.objects.filter(pk=row.pk).update(
        in_reply_to=bad, references=["root@example.test", bad, "p@example.test"]
    )
    queued = outbox.check_send(account.user, OutgoingMessage.objects.get(pk=row.pk))
    queued.refresh_from_db()
    assert queued.in_reply_to == ""
    assert queued.references == ["root@example.test", "p@example.test"]


# ------------------------------------------------------------------------- worker


def _queue_anyway(account: Account, **broken: object) -> OutgoingMessage:
    """A row queued with fields the checks now refuse (queued before they
    existed): what the worker must cope with."""
    row = outbox.check_send(account.user, draft(account))
    OutgoingMessage.objects.filter(pk=row.pk).update(send_at=timezone.now(), **broken)
    return OutgoingMessage.objects.get(pk=row.pk)


@pytest.mark.parametrize(
    "subject",
    ["Hi\u2028there", "Hi\x85there", "Hi\x0bthere", "Hi\x0cthere", q_word("Hi\r\nX-Injected: 1")],
    ids=["u2028", "nel", "vt", "ff", "encoded-crlf"],
)
def test_a_queued_row_that_cannot_be_built_fails_once_with_its_reason(
    account: Account, subject: str
) -> None:
    row = _queue_anyway(account, subject=subject)
    assert sending.deliver(row.pk)
    row.refresh_from_db()
    assert row.state == State.FAILED
    assert row.error_code == "message_unbuildable"
    assert row.attempts == 1
    assert "Subject" in outbox_sentences.outgoing_error_message(row)
    # Nothing left to claim: no retry loop.
    assert not sending.deliver(row.pk, now=timezone.now() + timedelta(days=1))
    assert sending.due_ids(now=timezone.now() + timedelta(days=1)) == []


def test_an_unexpected_failure_stops_at_the_retry_deadline(account: Account) -> None:
    row = _queue_anyway(account)
    OutgoingAttachment.objects.create(
        outgoing=row, filename="gone.pdf", content_type="application/pdf", size=4,
        blob_key="no/such/blob",
    )
    assert sending.deliver(row.pk)
    row.refresh_from_db()
    assert (row.state, row.error_code) == (State.QUEUED, "internal_error")
    OutgoingMessage.objects.filter(pk=row.pk).update(
        queued_at=timezone.now() - sending.RETRY_DEADLINE - timedelta(minutes=1),
        send_at=timezone.now(),
    )
    assert sending.deliver(row.pk)
    row.refresh_from_db()
    assert (row.state, row.error_code) == (State.FAILED, "internal_error_gave_up")
    assert outbox_sentences.outgoing_error_message(row)
