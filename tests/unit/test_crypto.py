from __future__ import annotations

import io

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


@pytest.mark.django_db
def test_rotate_keys_command_reencrypts_every_account_secret() -> None:
    from django.core.management import call_command

    from posta.accounts.models import Account
    from posta.users.models import User

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    user = User.objects.create_user("k", "k@example.test", "pw-12345678")
    with override_settings(POSTA_ENCRYPTION_KEYS=[old]):
        account = Account.objects.create(
            user=user,
            username="k",
            email="k@example.test",
            description="k",
            imap_host="imap.example.test",
            password_secret=crypto.seal("imap-pw"),
            smtp_password_secret=crypto.seal("smtp-pw"),
        )
    with override_settings(POSTA_ENCRYPTION_KEYS=[new, old]):
        call_command("rotate_keys", stdout=io.StringIO())
    account.refresh_from_db()
    with override_settings(POSTA_ENCRYPTION_KEYS=[new]):
        assert crypto.unseal(account.password_secret) == "imap-pw"
        assert crypto.unseal(account.smtp_password_secret) == "smtp-pw"
