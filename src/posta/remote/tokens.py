"""An OAuth2 account's access token, refreshed ahead of expiry, once at a time.

Whichever process connects (sync, sending, remote actions, the account test)
asks `access_token(account)`. A token with more than REFRESH_AHEAD left is used as
stored. Otherwise one process takes the refresh with a lease on the token row
(one conditional UPDATE, atomic on SQLite and PostgreSQL as in posta.sync.claims):

    fresh --(expires within REFRESH_AHEAD)--> due --claim--> refreshing --> fresh
                                               ^                 |
                                               +---lease out-----+ (holder died)

The others wait for the holder's result (they poll the row; the refresh is one
HTTP request) and use the token it stored, so a refresh token that the provider
rotates on use (RFC 6749 §10.4, OAuth 2.0 Security BCP §4.14) is never spent
twice. A refused refresh (SignInRequired) clears the lease and pauses the account
through the failure table: the user signs in again, nothing queued is lost.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from posta.accounts.models import Account, OAuthToken
from posta.accounts.oauth import do_store_tokens, load_provider
from posta.core.leases import make_owner
from posta.mailproto import errors
from posta.remote import oauth
from posta.remote.account_errors import record_failure
from posta.remote.sealed import unsealed

log = logging.getLogger(__name__)

REFRESH_AHEAD = timedelta(minutes=5)
LEASE = timedelta(seconds=30)
POLL_SECONDS = 0.1


def access_token(account: Account) -> str:
    """A current access token of `account`, refreshing it when it is due.

    Raises SignInRequired when there is no token or the provider refused the
    refresh; TemporaryNetworkError, ConnectTimeout or ServerBusy when the provider
    could not answer (the caller retries, as for a mail server).
    """
    deadline = time.monotonic() + LEASE.total_seconds() * 2
    owner = make_owner()
    while True:
        token = OAuthToken.objects.filter(account_id=account.pk).first()
        if token is None:
            raise oauth.SignInRequired(f"account {account.pk}: not signed in")
        if not _due(token):
            return unsealed(token.access_secret)
        if _claim(token, owner):
            return _refresh(account, token, owner)
        if time.monotonic() > deadline:
            raise errors.ServerBusy(f"account {account.pk}: another refresh is still running")
        time.sleep(POLL_SECONDS)


def expire_access_token(account_id: int) -> None:
    """The server refused the access token although it had time left (revoked
    early): the next connection refreshes it first."""
    OAuthToken.objects.filter(account_id=account_id).update(expires_at=timezone.now())


def _due(token: OAuthToken) -> bool:
    if token.expires_at is None:
        return False  # the provider said nothing of expiry: use it until refused
    return token.expires_at <= timezone.now() + REFRESH_AHEAD


def _claim(token: OAuthToken, owner: str) -> bool:
    now = timezone.now()
    taken = (
        OAuthToken.objects.filter(pk=token.pk, expires_at__lte=now + REFRESH_AHEAD)
        .filter(Q(refresh_until__isnull=True) | Q(refresh_until__lt=now))
        .update(refresh_owner=owner, refresh_until=now + LEASE)
    )
    return bool(taken)


def _refresh(account: Account, token: OAuthToken, owner: str) -> str:
    provider = load_provider(token.provider)
    try:
        grant = oauth.refresh(provider, unsealed(token.refresh_secret))
    except errors.MailError as exc:
        OAuthToken.objects.filter(pk=token.pk, refresh_owner=owner).update(
            refresh_owner="", refresh_until=None
        )
        log.warning("account %s: token refresh failed (%s)", account.pk, exc.code)
        if isinstance(exc, oauth.SignInRequired):
            # Whoever meets the refusal pauses the account: only signing in again
            # helps, and sending waits for it (failure table: ACCOUNT).
            record_failure(account.pk, exc, pause=True)
        raise
    do_store_tokens(account, token.provider, grant)
    log.info("account %s: access token refreshed", account.pk)
    return grant.access_token
