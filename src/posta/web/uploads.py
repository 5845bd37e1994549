"""Request bodies and file uploads, capped at the administrator's attachment limit.

Django's own handlers read every upload to its end, in memory up to
FILE_UPLOAD_MAX_MEMORY_SIZE and on disk beyond, and nothing caps the size of a
multipart body: a refused 2 GB attachment would cost 2 GB before the view could
refuse it. Two guards instead:

- `BodyCapMiddleware` refuses, with 413, a request whose Content-Length exceeds
  the limit plus a margin for the form around the files, before anything reads
  the body (the CSRF check, the first reader of request.POST, comes later);
- `CappedUploadHandler` writes each file straight to a temporary file, counts the
  bytes of all the files of the request while they stream in, and stops reading
  as soon as they pass the limit. The view then answers 413 (`uploaded_files`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from posta.core.errors import PostaError
from posta.mail.outbox import attachment_limit_bytes
from posta.web.middleware import render_error

_REFUSED = "_posta_upload_refused"


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


def uploaded_files(request: HttpRequest, name: str) -> list[UploadedFile]:
    """The files of field `name`; PostaError 413 when the upload was cut off at
    the limit (the files complete before the cut are not used either)."""
    files = request.FILES.getlist(name)  # reads the body, if nothing did yet
    if upload_refused(request):
        raise too_large()
    return files


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
        META: dict[str, str],  # noqa: N803 - Django's parameter name
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
    """413 for a request larger than `body_limit()`, before its body is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = _content_length(request)
        # Bodies within the margin need no database read to be let through.
        if length > body_margin() and length > body_limit():
            return render_error(request, too_large())
        return self.get_response(request)
