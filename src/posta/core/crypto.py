"""Secrets at rest: Fernet tokens under a MultiFernet key ring.

Passwords and OAuth tokens are stored only as tokens from `seal`; `unseal` reads
them back. The first key of POSTA_ENCRYPTION_KEYS encrypts; every key decrypts,
so a new key can be put in front and `posta rotate_keys` re-encrypts the rest.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from posta.core.errors import PostaError


@cache
def _ring(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def key_ring() -> MultiFernet:
    return _ring(tuple(settings.POSTA_ENCRYPTION_KEYS))


def seal(plaintext: str) -> str:
    """Encrypt a secret for storage. The empty string stays empty (no secret)."""
    if not plaintext:
        return ""
    return key_ring().encrypt(plaintext.encode()).decode()


def unseal(token: str) -> str:
    """Decrypt a stored secret; raises PostaError if no key opens it."""
    if not token:
        return ""
    try:
        return key_ring().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        from django.utils.translation import gettext_lazy as _

        raise PostaError(
            "secret_unreadable",
            _("A stored password can no longer be read: the encryption key has changed."),
            status=500,
        ) from exc


def reseal(token: str) -> str:
    """Re-encrypt a stored secret under the newest key."""
    if not token:
        return ""
    return key_ring().rotate(token.encode()).decode()
