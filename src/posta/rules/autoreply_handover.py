"""Which executor answers an account's mail: the server or Posta, never both.

The ManageSieve upload tells this module when the account's server starts and
stops running the vacation section (`do_server_starts` before it uploads a
script that holds it, `do_server_stops` once a script without it is active);
the responder asks `server_answered(account, delivered_at)` for each message.

Pigeonhole runs the script at delivery, so the delivery time decides. The
period is widened on both sides by MARGIN (the upload takes time and the two
clocks differ a little): a message delivered while the script was being
swapped is left to the server, which may not have answered it; "none" is the
side to err on, never "both".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from posta.rules.autoreply_models import ServerPeriod

MARGIN = timedelta(seconds=5)


@transaction.atomic
def do_server_starts(account_id: int, *, at: datetime | None = None) -> None:
    """Call before uploading a script with the vacation section: mail delivered
    from now on is the server's to answer."""
    at = at or timezone.now()
    if not ServerPeriod.objects.select_for_update().filter(
        account_id=account_id, until__isnull=True
    ).exists():
        ServerPeriod.objects.create(account_id=account_id, since=at - MARGIN)


def do_server_stops(account_id: int, *, at: datetime | None = None) -> None:
    """Call once a script without the vacation section is active (or none is):
    mail delivered from now on is Posta's again."""
    at = at or timezone.now()
    ServerPeriod.objects.filter(account_id=account_id, until__isnull=True).update(
        until=at + MARGIN
    )


def server_answered(account_id: int, delivered_at: datetime) -> bool:
    """Whether the account's server was answering when the message arrived."""
    return ServerPeriod.objects.filter(
        Q(until__isnull=True) | Q(until__gt=delivered_at),
        account_id=account_id, since__lte=delivered_at,
    ).exists()
