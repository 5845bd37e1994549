"""Re-encrypt every stored secret under the newest key of POSTA_ENCRYPTION_KEYS.

Rotation: put a new key first in POSTA_ENCRYPTION_KEYS (keeping the old ones after
it), restart, run `posta rotate_keys`, then the old keys may be removed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from posta.accounts.models import Account
from posta.core.crypto import reseal

SECRET_FIELDS = ("password_secret", "oauth_secret", "smtp_password_secret")


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
        self.stdout.write(f"Re-encrypted the secrets of {count} accounts.")
