"""The user's own mail-screen preferences that are not a settings form."""

from __future__ import annotations

from posta.users.models import User


def do_set_list_only(user: User, *, on: bool) -> None:
    """Remember the "List only" switch for the user, whichever browser they use."""
    user.list_only = on
    user.save(update_fields=["list_only"])
