"""Re-encrypt every stored secret under the newest key of POSTA_ENCRYPTION_KEYS.

Rotation: put a new key first in POSTA_ENCRYPTION_KEYS (keeping the old ones after
it), restart, run `posta rotate_keys`, then the old keys may be removed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from posta.accounts.models import Account, OAuthProvider, OAuthToken
from posta.core.crypto import reseal

SECRET_FIELDS = ("password_secret", "oauth_secret", "smtp_password_secret")
TOKEN_FIELDS = ("access_secret", "refresh_secret")


class Command(BaseCommand):
    help = "Re-encrypt stored passwords and tokens under the newest encryption key."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        for account_id in Account.objects.values_list("pk", flat=True):
            with transaction.atomic():
                account = Account.objects.select_for_update().get(pk=account_id)
                for name in SECRET_FIELDS:
                    setattr(account, name, reseal(getattr(account, name)))
                account.save(update_fields=list(SECRET_FIELDS))
                count += 1
        # Sign-in tokens, under the row lock the refresh takes its lease with.
        for token_id in OAuthToken.objects.values_list("pk", flat=True):
            with transaction.atomic():
                token = OAuthToken.objects.select_for_update().get(pk=token_id)
                for name in TOKEN_FIELDS:
                    setattr(token, name, reseal(getattr(token, name)))
                token.save(update_fields=list(TOKEN_FIELDS))
        for provider in OAuthProvider.objects.all():
            provider.client_secret_secret = reseal(provider.client_secret_secret)
            provider.save(update_fields=["client_secret_secret"])
        self.stdout.write(f"Re-encrypted the secrets of {count} accounts.")
