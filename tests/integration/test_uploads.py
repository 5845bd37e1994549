"""Attachment uploads: streamed to temporary files, stopped at the administrator's
limit while they are read, and a request body past the limit plus the form margin
refused before anything reads it. The named bad inputs of the reports answer 400
with a message in the user's language."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Account, CompanySettings
from posta.mail import blobs, outbox
from posta.mail.models import OutgoingAttachment, OutgoingMessage
from posta.users.models import User
from posta.web import uploads
from tests.integration.test_sync_checker import make_account
from tests.servers.dovecot import DovecotServer, MailUser
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024
BOUNDARY = "posta-test-boundary"


class GeneratedBody:
    """A multipart body with one file, made as it is read (the test never holds
    the file either), counting the bytes the server read."""

    def __init__(
        self, size: int, *, declared: int | None = None, fields: dict[str, str] | None = None
    ) -> None:
        form = "".join(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in (fields or {}).items()
        )
        self.head = (
            f'{form}--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
            'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.size = size
        self.length = len(self.head) + size + len(self.tail)
        self.declared = declared if declared is not None else self.length
        self.position = 0

    def read(self, n: int | None = -1) -> bytes:
        end = self.length if n is None or n < 0 else min(self.length, self.position + n)
        head_end, file_end = len(self.head), len(self.head) + self.size
        pieces, pos = [], self.position
        while pos < end:
            if pos < head_end:
                stop = min(end, head_end)
                pieces.append(self.head[pos:stop])
            elif pos < file_end:
                stop = min(end, file_end)
                pieces.append(b"a" * (stop - pos))
            else:
                stop = end
                pieces.append(self.tail[pos - file_end : stop - file_end])
            pos = stop
        self.position = end
        return b"".join(pieces)

    def readline(self, size: int | None = -1) -> bytes:
        raise AssertionError("a multipart body is read in chunks, not lines")


def post_body(client: Client, url: str, body: GeneratedBody) -> Any:
    environ = {
        "wsgi.input": body,
        "CONTENT_LENGTH": str(body.declared),
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
    }
    return client.generic("POST", url, **environ)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    """The tests drive no worker: the outbox's wake-ups are recorded, not queued."""
    with recorded_wakeups():
        yield


@pytest.fixture
def draft(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, tmp_path: Path
) -> OutgoingMessage:
    """A draft of a user with an account; uploads' temporary files under tmp_path."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    account: Account = make_account(dovecot, mail_user, settings)
    return outbox.do_new_draft(account.user, account=account)


def set_limit(megabytes: int) -> None:
    company = CompanySettings.load()
    company.max_attachment_mb = megabytes
    company.save()


def client_of(user: User, *, language: str = "en") -> Client:
    user.language = language
    user.save(update_fields=["language"])
    client = Client()
    client.force_login(user)
    return client


def test_an_upload_past_the_limit_stops_being_read_and_is_not_held_in_memory(
    draft: OutgoingMessage, tmp_path: Path
) -> None:
    set_limit(2)
    client = client_of(draft.user)
    url = reverse("compose_attach", args=[draft.pk])
    # Within the body cap (2 MB + the 2.5 MB form margin), so the upload handler
    # is what refuses it. The first run warms templates and translations.
    post_body(client, url, GeneratedBody(4 * MB))
    body = GeneratedBody(4 * MB)
    tracemalloc.start()
    try:
        response = post_body(client, url, body)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert "Attachments may total at most 2 MB." in response.content.decode()
    # Reading stopped at the limit (plus the chunk that passed it), not at 4 MB.
    assert body.position < 2 * MB + 256 * 1024 < body.length
    # The part read went to a temporary file, not into memory.
    assert peak < MB
    assert not OutgoingAttachment.objects.filter(outgoing=draft).exists()
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too
    # On an editor page that stored nothing yet, a refused upload stores no draft.
    start = {"origin": "new", "draft_key": "b" * 32}
    body = GeneratedBody(4 * MB, fields=start)
    response = post_body(client, reverse("compose_start_attach"), body)
    assert response.status_code == 413
    assert body.position < 2 * MB + 256 * 1024
    assert OutgoingMessage.objects.filter(user=draft.user).count() == 1


def test_a_body_past_the_cap_is_refused_before_it_is_read_in_the_users_language(
    draft: OutgoingMessage,
) -> None:
    set_limit(1)
    client = client_of(draft.user, language="it")
    body = GeneratedBody(10 * MB)
    response = post_body(client, reverse("compose_attach", args=[draft.pk]), body)
    assert response.status_code == 413
    assert "Gli allegati possono occupare al massimo 1 MB in totale." in (
        response.content.decode()
    )
    assert body.position == 0
    # A declared length past the cap is enough, whatever follows.
    lying = GeneratedBody(10, declared=50 * MB)
    assert post_body(client, reverse("mail_act"), lying).status_code == 413
    assert lying.position == 0


def test_uploads_within_the_limit_are_stored_and_a_batch_past_it_stores_nothing(
    draft: OutgoingMessage, tmp_path: Path
) -> None:
    set_limit(2)
    client = client_of(draft.user)
    url = reverse("compose_attach", args=[draft.pk])
    data = bytes(range(256)) * 4096  # 1 MB
    response = client.post(
        url, {"files": [SimpleUploadedFile("plan.pdf", data, "application/pdf")]},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    [added] = response.json()["added"]
    stored = OutgoingAttachment.objects.get(pk=added["id"])
    assert (stored.filename, stored.size, stored.content_type) == (
        "plan.pdf", len(data), "application/pdf",
    )
    assert blobs.get(stored.blob_key) == data
    # Two files of 1.5 MB: the second passes the limit while streaming in, and
    # the first, complete, is not stored either.
    two = [SimpleUploadedFile(f"{n}.bin", b"b" * (3 * MB // 2)) for n in "xy"]
    response = client.post(url, {"files": two})
    assert response.status_code == 413
    assert list(OutgoingAttachment.objects.filter(outgoing=draft)) == [stored]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "The value of “{name}” is not valid"),
        ("it", "Il valore di “{name}” non è valido"),
    ],
)
def test_the_reported_bad_values_answer_400_naming_the_parameter(
    draft: OutgoingMessage, language: str, text: str
) -> None:
    client = client_of(draft.user, language=language)
    user = draft.user
    scheduled = outbox.check_save_draft(
        user, draft,
        outbox.Draft(account_id=draft.account_id, to="bob@example.test", subject="Later"),
    )
    outbox.check_schedule(user, scheduled, outbox.quick_schedule_choices(user)[0][1])
    reschedule = reverse("compose_act", args=[draft.pk, "reschedule"])
    cases = [
        ("account", client.get(reverse("compose_new"), {"account": "abc"})),
        ("send_at", client.post(reschedule, {"send_at": "2026-03-02T10:00" + "0" * 10_000})),
        ("send_at", client.post(reschedule, {"send_at": "x" * 1_000_000})),
        ("ids", client.post(reverse("mail_act"), {"action": "seen", "ids": "9" * 30})),
        ("ids", client.post(reverse("mail_act"), {"action": "seen", "ids": "1," * 500_000})),
    ]
    for name, response in cases:
        assert response.status_code == 400, name
        assert text.format(name=name) in response.content.decode(), name
    # Nothing was created or changed by the refused requests.
    assert OutgoingMessage.objects.filter(user=user).count() == 1
    assert OutgoingMessage.objects.get(pk=draft.pk).state == OutgoingMessage.State.SCHEDULED


class AsgiClient:
    """One request straight into posta.asgi.application, as uvicorn makes it: the
    body arrives in chunks the application asks for, counted here."""

    def __init__(self, *, size: int, chunk: int = 64 * 1024) -> None:
        self.size = size
        self.chunk = chunk
        self.received = 0
        self.sent: list[Any] = []

    async def receive(self) -> dict[str, Any]:
        if self.received >= self.size:
            await asyncio.Event().wait()  # nothing more: as a client that waits
        part = min(self.chunk, self.size - self.received)
        self.received += part
        return {"type": "http.request", "body": b"a" * part,
                "more_body": self.received < self.size}

    async def send(self, message: Any) -> None:
        self.sent.append(message)

    def post(self, path: str, *, declare: bool) -> tuple[int, str]:
        from posta.asgi import application

        headers = [(b"host", b"testserver"), (b"accept-language", b"it"),
                   (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())]
        if declare:
            headers.append((b"content-length", str(self.size).encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        }
        # In a thread of its own, as under uvicorn: this thread may already hold an
        # event loop (a browser test's, earlier in the same worker), where
        # async_to_sync refuses to run. The test's rows are committed
        # (transaction=True), so the thread's own database connection sees them.
        failures: list[BaseException] = []

        def serve() -> None:
            try:
                async_to_sync(application)(scope, self.receive, self.send)
            except BaseException as exc:  # noqa: BLE001 - reported in the test's thread
                failures.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=serve)
        thread.start()
        thread.join(timeout=120)
        assert not thread.is_alive(), "the application did not answer"
        if failures:
            raise failures[0]
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return start["status"], body.decode()


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
def test_under_asgi_a_body_past_the_cap_is_not_received(
    draft: OutgoingMessage, declare: bool
) -> None:
    set_limit(1)
    cap = MB + uploads.body_margin()
    client = AsgiClient(size=20 * MB)
    status, text = client.post(reverse("compose_attach", args=[draft.pk]), declare=declare)
    assert status == 413
    assert "Gli allegati possono occupare al massimo 1 MB in totale." in text
    if declare:
        assert client.received == 0  # refused on the declared length alone
    else:
        assert cap < client.received <= cap + client.chunk  # stopped at the cap
