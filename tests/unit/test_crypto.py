from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from posta.core import crypto
from posta.core.errors import PostaError


def test_sealed_secret_is_not_plain_and_reads_back() -> None:
    token = crypto.seal("s3cret-password")
    assert "s3cret" not in token
    assert crypto.unseal(token) == "s3cret-password"
    assert crypto.seal("") == "" and crypto.unseal("") == ""


def test_rotation_reads_old_tokens_and_reseals_under_the_new_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(POSTA_ENCRYPTION_KEYS=[old]):
        token = crypto.seal("pw")
    with override_settings(POSTA_ENCRYPTION_KEYS=[new, old]):
        assert crypto.unseal(token) == "pw"
        rotated = crypto.reseal(token)
    with override_settings(POSTA_ENCRYPTION_KEYS=[new]):
        assert crypto.unseal(rotated) == "pw"
        with pytest.raises(PostaError) as caught:
            crypto.unseal(token)
    assert caught.value.code == "secret_unreadable"
