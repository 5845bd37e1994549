"""The one error type users see.

Anything that goes wrong in a way a person should hear about becomes a `PostaError`
with a stable code, a translatable message and an HTTP status. Middleware renders it
as an htmx partial, a page or JSON.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class PostaError(Exception):
    """A failure with a message meant for the user, in the user's language."""

    def __init__(
        self, code: str, message: str | Promise, *, status: int = 400, field: str | None = None
    ) -> None:
        super().__init__(str(message))
        self.code = code
        self.message = message
        self.status = status
        self.field = field

    def __str__(self) -> str:
        return str(self.message)


def not_found(message: str | Promise | None = None) -> PostaError:
    """The error of an `access_` function: what was asked for does not exist or is
    not the asker's. Both read the same (HTTP 404), so another user's ids reveal
    nothing."""
    return PostaError(
        "not_found", message or _("This does not exist, or it is not yours."), status=404
    )
