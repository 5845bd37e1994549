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


@pytest.mark.django_db
def test_rotate_keys_reencrypts_sign_in_tokens_and_client_secrets() -> None:
    from django.core.management import call_command

    from posta.accounts.models import Account, OAuthProvider, OAuthToken
    from posta.users.models import User

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    user = User.objects.create_user("t", "t@example.test", "pw-12345678")
    with override_settings(POSTA_ENCRYPTION_KEYS=[old]):
        account = Account.objects.create(
            user=user, username="t", email="t@example.test", description="t",
            imap_host="imap.example.test", auth_method="oauth2",
        )
        token = OAuthToken.objects.create(
            account=account, provider="custom",
            access_secret=crypto.seal("access-1"), refresh_secret=crypto.seal("refresh-1"),
        )
        provider = OAuthProvider.objects.create(
            kind="custom", client_id="c", client_secret_secret=crypto.seal("client-secret"),
            authorization_endpoint="https://sso.example.test/a",
            token_endpoint="https://sso.example.test/t", scopes="openid",
        )
    with override_settings(POSTA_ENCRYPTION_KEYS=[new, old]):
        call_command("rotate_keys", stdout=io.StringIO())
    token.refresh_from_db()
    provider.refresh_from_db()
    with override_settings(POSTA_ENCRYPTION_KEYS=[new]):
        assert crypto.unseal(token.access_secret) == "access-1"
        assert crypto.unseal(token.refresh_secret) == "refresh-1"
        assert crypto.unseal(provider.client_secret_secret) == "client-secret"
