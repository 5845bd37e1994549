"""Out-of-office on the mail server: the `vacation` section of Posta's script.

`vacation_section(account, extensions)` is the section the ManageSieve upload
puts after the filters (the upload's `register_section`, order 20, as in the
arrival pipeline): the user's text, `:days`, `:addresses` (aliases and the
user's other accounts), `:subject` (empty: Pigeonhole's own "Auto: " + subject,
RFC 5230 §4.5) and `:from` the account's address. With `date` and
`relational` the period is in the script (`currentdate`); without them the
section is there only while the period runs, so the upload is redone at its
start and at its end (`uploads_due`, from the filters' sweep).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from posta.accounts.models import Account
from posta.mailproto.sieve.script import SieveSection
from posta.mailproto.sieve.vacation import Vacation, render_vacation
from posta.rules.autoreply_models import AutoReplySettings
from posta.rules.autoreply_settings import covers, my_addresses
from posta.rules.filter_models import FilterServer

SECTION_NAME = "vacation"
SECTION_ORDER = 20


def vacation_of(settings: AutoReplySettings, account: Account) -> Vacation:
    return Vacation(
        body=settings.body_text or "",
        subject=settings.subject.strip(),
        from_address=account.email,
        addresses=[a for a in my_addresses(settings) if a != account.email.lower()],
        days=max(settings.days, 1),
        starts_at=settings.starts_at,
        ends_at=settings.ends_at,
    )


def vacation_section(
    account: Account, extensions: frozenset[str], *, now: datetime | None = None
) -> SieveSection | None:
    """The section for `account` on a server announcing `extensions`, or None
    (off, not covering the account, no `vacation` on the server, outside the
    period on a server that cannot check dates, or "reply only to people I have
    written to": the server cannot know them, so Posta answers)."""
    if "vacation" not in extensions:
        return None
    found = AutoReplySettings.objects.filter(user_id=account.user_id, enabled=True).first()
    if found is None or not covers(found, account.pk) or not found.body_text.strip():
        return None
    if found.known_only:
        return None
    with_dates = {"date", "relational"} <= extensions
    if not with_dates:
        now = now or timezone.now()
        if found.starts_at is not None and now < found.starts_at:
            return None
        if found.ends_at is not None and now >= found.ends_at:
            return None
    return render_vacation(vacation_of(found, account), with_dates=with_dates)


def uploads_due(*, now: datetime | None = None) -> list[int]:
    """Accounts whose script on the server was uploaded before a start or end of
    the user's period that has now passed: on servers without `date` the
    section must come in or go out then (on the others one upload too many
    changes nothing). The upload time is the mark, so a sweep missed or late
    still finds them."""
    now = now or timezone.now()
    period = "account__user__autoreply__"
    edge = Q(**{f"{period}starts_at__lte": now}) & (
        Q(uploaded_at__isnull=True) | Q(**{f"{period}starts_at__gt": F("uploaded_at")})
    ) | Q(**{f"{period}ends_at__lte": now}) & (
        Q(uploaded_at__isnull=True) | Q(**{f"{period}ends_at__gt": F("uploaded_at")})
    )
    return sorted(
        FilterServer.objects.filter(
            edge, state=FilterServer.State.SERVER, use_server=True,
            uploaded_revision=F("wanted_revision"),
        ).values_list("account_id", flat=True).distinct()[:500]
    )
