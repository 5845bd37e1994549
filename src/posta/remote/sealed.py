"""Stored secrets in clear, for the connection code only."""

from __future__ import annotations

from posta.core.crypto import unseal
from posta.core.errors import PostaError
from posta.mailproto import errors


class SecretUnreadable(errors.SettingsRefused):
    """The stored password or token cannot be decrypted (the key changed): the
    user must enter it again. Retrying cannot help, so it pauses the account."""

    code = "secret_unreadable"


def unsealed(token: str) -> str:
    """The stored secret `token` in clear; SecretUnreadable when the key changed."""
    try:
        return unseal(token)
    except PostaError as exc:
        if exc.code == "secret_unreadable":
            raise SecretUnreadable("the stored secret cannot be decrypted") from exc
        raise
