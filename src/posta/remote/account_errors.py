"""What a failed connection leaves on the account: its state, the failure's code
(shown translated on the account's page) and detail, never a secret.

Every worker that connects (the sync service, remote actions, drafts, a sent
message's follow-ups) records here, so the account's page says the same thing
whoever met the failure."""

from __future__ import annotations

from django.utils import timezone

from posta.accounts.models import Account
from posta.mailproto import errors


def record_account_error(account_id: int, exc: errors.MailError) -> None:
    """A worker (remote actions, drafts, a sent message's follow-ups) could not log
    in for a reason the failure table judges the account's (posta.mailproto.failures,
    ACCOUNT): record it on the account, so its page says what to fix and links to the
    settings. A setting only the user can change (host not allowed, secret
    unreadable) pauses the account, as the sync service does; a refused login is
    left to the service's count of refusals before it pauses. A paused account stays
    paused: the user resumes it."""
    paused = Account.objects.filter(pk=account_id, sync_state=Account.SyncState.PAUSED)
    pause = isinstance(exc, errors.SettingsRefused) or paused.exists()
    record_failure(account_id, exc, pause=pause)


def record_failure(account_id: int, exc: errors.MailError, *, pause: bool = False) -> None:
    """Write the failure on the account in codes (shown translated), never a secret."""
    Account.objects.filter(pk=account_id).update(
        sync_state=Account.SyncState.PAUSED if pause else Account.SyncState.ERROR,
        last_error_code=exc.code,
        last_error_detail=exc.detail[:500],
        last_error_at=timezone.now(),
    )
