"""The one error type users see.

Anything that goes wrong in a way a person should hear about becomes a `PostaError`
with a stable code, a translatable message and an HTTP status. Middleware renders it
as an htmx partial, a page or JSON.
"""

from __future__ import annotations

from django.utils.functional import Promise


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
