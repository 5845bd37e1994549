"""Request bodies and file uploads, capped at the administrator's attachment limit.

Django's own handlers read every upload to its end, in memory up to
FILE_UPLOAD_MAX_MEMORY_SIZE and on disk beyond, and nothing caps the size of a
multipart body: a refused 2 GB attachment would cost 2 GB before the view could
refuse it. Two guards instead:

- `BodyCapMiddleware` refuses, with 413, a request whose Content-Length exceeds
  the limit plus a margin for the form around the files, before anything reads
  the body (the CSRF check, the first reader of request.POST, comes later);
- `BodyCapApplication` applies the same cap under ASGI while the body arrives,
  since Django's ASGI handler receives the whole body before any middleware;
- `CappedUploadHandler` writes each file straight to a temporary file, counts the
  bytes of all the files of the request while they stream in, and stops reading
  as soon as they pass the limit. The view then answers 413 (`uploaded_files`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from posta.core.errors import PostaError
from posta.mail.outbox import attachment_limit_bytes
from posta.web.middleware import render_error

_REFUSED = "_posta_upload_refused"  # on the request: the upload handler stopped
_CUT = "posta.body_cut"  # in the ASGI scope: BodyCapApplication stopped receiving
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def body_margin() -> int:
    """Bytes a request may carry besides its files: the form fields Django already
    reads into memory (DATA_UPLOAD_MAX_MEMORY_SIZE) and the multipart framing."""
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


def body_limit() -> int:
    """The largest request body accepted at all."""
    return attachment_limit_bytes() + body_margin()


def too_large() -> PostaError:
    limit_mb = attachment_limit_bytes() // (1024 * 1024)
    return PostaError(
        "attachments_too_large",
        _("Attachments may total at most %(limit_mb)s MB.") % {"limit_mb": limit_mb},
        status=413,
    )


def upload_refused(request: HttpRequest) -> bool:
    """Whether CappedUploadHandler stopped this request's upload at the limit."""
    return bool(getattr(request, _REFUSED, False))


def check_upload(request: HttpRequest) -> None:
    """PostaError 413 when the request's files were cut off at the limit (the
    files complete before the cut are not used either)."""
    request.FILES  # noqa: B018 - reads the body, if nothing did yet
    if upload_refused(request):
        raise too_large()


def uploaded_files(request: HttpRequest, name: str) -> list[UploadedFile]:
    """The files of field `name`, once check_upload passed."""
    check_upload(request)
    return request.FILES.getlist(name)


class CappedUploadHandler(FileUploadHandler):
    """Streams every file of a multipart body to a temporary file (none is kept
    in memory) and stops the upload once the files together pass the limit."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = 0
        self.received = 0
        self.file: TemporaryUploadedFile | None = None

    def handle_raw_input(
        self,
        input_data: IO[bytes],
        META: dict[str, str],
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        # Read once per request: the limit is a database setting.
        self.limit = attachment_limit_bytes()
        self.received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.file = TemporaryUploadedFile(
            self.file_name or "upload", self.content_type, 0, self.charset,
            self.content_type_extra,
        )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            if self.request is not None:
                setattr(self.request, _REFUSED, True)
            # connection_reset: Django stops reading the body here instead of
            # reading the rest only to throw it away.
            raise StopUpload(connection_reset=True)
        assert self.file is not None  # noqa: S101 - new_file runs first
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        assert self.file is not None  # noqa: S101 - new_file runs first
        self.file.seek(0)
        self.file.size = file_size
        return self.file

    def upload_interrupted(self) -> None:
        if self.file is not None:
            self.file.close()  # removes the temporary file


def _content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0  # as Django reads it: no body


class BodyCapMiddleware:
    """413 for a request larger than `body_limit()`, before its body is read (or
    whose body BodyCapApplication cut off at the limit)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = _content_length(request)
        # Bodies within the margin need no database read to be let through.
        cut = bool(getattr(request, "scope", {}).get(_CUT))
        if cut or (length > body_margin() and length > body_limit()):
            return render_error(request, too_large())
        return self.get_response(request)


def _declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return max(0, int(value))
            except ValueError:
                return None
    return None


class BodyCapApplication:
    """The same cap under `posta web` (uvicorn). Django's ASGI handler receives the
    whole body before any middleware runs (spooled to disk past
    FILE_UPLOAD_MAX_MEMORY_SIZE), so the body is capped here, as it arrives:

    - declared (Content-Length) larger than `body_limit()`: none of it is
      received; Django gets an empty body and BodyCapMiddleware answers 413 from
      the declared length;
    - sent without a length (chunked) and growing past the limit: receiving stops
      there, and the request is marked so that the middleware answers 413.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > body_margin():
            if declared > await sync_to_async(body_limit)():
                await self.app(scope, _no_body(), send)
                return
        await self.app(scope, _capped(scope, receive), send)


def _no_body() -> Receive:
    sent = False

    async def receive() -> Mapping[str, Any]:
        nonlocal sent
        if sent:
            # Django listens for a disconnect while it answers; the client's body
            # is not read for it. The listener is cancelled with the response.
            await asyncio.Future()
        sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive


def _capped(scope: dict[str, Any], receive: Receive) -> Receive:
    received = 0
    limit: int | None = None
    cut: Receive | None = None

    async def capped() -> Mapping[str, Any]:
        nonlocal received, limit, cut
        if cut is not None:
            return await cut()
        message = await receive()
        if message["type"] != "http.request":
            return message
        received += len(message.get("body", b""))
        if received > body_margin():
            if limit is None:
                limit = await sync_to_async(body_limit)()
            if received > limit:
                scope[_CUT] = True
                cut = _no_body()
                return await cut()
        return message

    return capped
