"""Out-of-office settings and history: database only, used by the Out-of-office
tab and the mail screen's banner (posta.web) as well as by the responder.

`access_settings` gives the user's row (unsaved defaults before the first save),
`do_save` writes the tab, `do_turn_off` is the banner's switch, `do_expire` turns
off every period that has ended ("it turns itself off at the end").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from posta.accounts.models import Account
from posta.crm import services as crm
from posta.mail.models import Message, OutgoingMessage
from posta.mailproto.mime.compose import text_from_html
from posta.rules.autoreply_decision import Policy, normalized
from posta.rules.autoreply_models import AutoReply, AutoReplySettings
from posta.rules.filters import notify_rules_changed
from posta.users.models import User

ANSWERED_STATES = (AutoReply.State.SENT, AutoReply.State.UNCERTAIN)


def access_settings(user: User) -> AutoReplySettings:
    """The user's settings; the defaults, unsaved, when never saved (a GET never
    writes)."""
    found = AutoReplySettings.objects.filter(user=user).first()
    return found or AutoReplySettings(user=user)


def covers(settings: AutoReplySettings, account_id: int) -> bool:
    """Whether out-of-office answers mail of `account_id` (none chosen: all)."""
    if settings.pk is None:
        return False
    chosen = list(settings.accounts.values_list("pk", flat=True))
    return not chosen or account_id in chosen


def my_addresses(settings: AutoReplySettings) -> tuple[str, ...]:
    """The aliases the user typed and the addresses of all the user's accounts:
    mail to any of them is "addressed to me" (RFC 5230 §4.5)."""
    accounts = Account.objects.filter(user_id=settings.user_id).values_list("email", flat=True)
    found = [*settings.alias_list(), *accounts]
    return tuple(dict.fromkeys(normalized(a) for a in found if a))


def policy_of(settings: AutoReplySettings, *, known: frozenset[str]) -> Policy:
    return Policy(
        addresses=my_addresses(settings),
        days=max(settings.days, 1),
        starts_at=settings.starts_at,
        ends_at=settings.ends_at,
        known_only=settings.known_only,
        known=known,
    )


def _named(pairs: Any, address: str) -> bool:
    return any(
        isinstance(pair, list) and len(pair) == 2 and normalized(str(pair[1])) == address
        for pair in pairs or []
    )


def known_correspondents(user_id: int, sender: str) -> frozenset[str]:
    """{sender} when the user has written to `sender` (mail sent from Posta, or a
    message in a Sent folder naming them) or `sender` is an address of a CRM record
    the user may see, else nothing."""
    address = normalized(sender)
    if not address:
        return frozenset()
    user = User.objects.filter(pk=user_id).first()
    if user is not None and crm.records_with_emails(user, [address]):
        return frozenset({address})
    sent = (
        OutgoingMessage.objects.filter(user_id=user_id, state=OutgoingMessage.State.SENT)
        .annotate(to_text=Cast("to", TextField()), cc_text=Cast("cc", TextField()))
        .filter(Q(to_text__icontains=address) | Q(cc_text__icontains=address))
        .values_list("to", "cc", "bcc")[:20]
    )
    if any(_named(to, address) or _named(cc, address) or _named(bcc, address)
           for to, cc, bcc in sent):
        return frozenset({address})
    filed = (
        Message.objects.filter(user_id=user_id, locations__role="sent")
        .annotate(to_text=Cast("to", TextField()), cc_text=Cast("cc", TextField()))
        .filter(Q(to_text__icontains=address) | Q(cc_text__icontains=address))
        .values_list("to", "cc")[:20]
    )
    if any(_named(to, address) or _named(cc, address) for to, cc in filed):
        return frozenset({address})
    return frozenset()


def answered_before(
    user_id: int, sender: str, text_key: str, *, exclude: int | None = None
) -> datetime | None:
    """When `sender` last got the reply text `text_key` (RFC 5230 §4.2: a new
    text starts afresh), counting a reply whose outcome is unknown as sent."""
    rows = AutoReply.objects.filter(
        user_id=user_id, sender=normalized(sender), text_key=text_key
    ).filter(Q(state__in=ANSWERED_STATES) | Q(data_started_at__isnull=False))
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    last = rows.order_by("-updated_at").values_list("sent_at", "data_started_at").first()
    if last is None:
        return None
    return last[0] or last[1]


@dataclass(frozen=True)
class Banner:
    """What the mail screen says while out-of-office is on."""

    ends_at: datetime | None
    starts_at: datetime | None
    waiting: bool  # on, but the period has not begun


def banner_for(user: User, *, now: datetime | None = None) -> Banner | None:
    now = now or timezone.now()
    found = AutoReplySettings.objects.filter(user=user, enabled=True).first()
    if found is None or (found.ends_at is not None and found.ends_at <= now):
        return None
    waiting = found.starts_at is not None and found.starts_at > now
    return Banner(ends_at=found.ends_at, starts_at=found.starts_at, waiting=waiting)


@transaction.atomic
def do_save(user: User, values: dict[str, Any], accounts: list[Account]) -> AutoReplySettings:
    """Write the tab (values already valid); the plain-text part is generated
    from the rich text."""
    found = AutoReplySettings.objects.select_for_update().filter(user=user).first()
    found = found or AutoReplySettings(user=user)
    for name in ("enabled", "starts_at", "ends_at", "all_day", "subject", "body_html",
                 "known_only", "days", "aliases"):
        setattr(found, name, values[name])
    found.body_text = text_from_html(found.body_html) if found.body_html else ""
    found.save()
    found.accounts.set([a for a in accounts if a.user_id == user.pk])
    notify_rules_changed(user.pk, [None])  # the server's script holds the reply
    return found


@transaction.atomic
def do_turn_off(user: User) -> bool:
    """The banner's switch; True when it was on."""
    was_on = bool(
        AutoReplySettings.objects.filter(user=user, enabled=True).update(enabled=False)
    )
    if was_on:
        notify_rules_changed(user.pk, [None])
    return was_on


@transaction.atomic
def do_expire(*, now: datetime | None = None) -> int:
    """Turn off every out-of-office whose period has ended (and take its reply
    out of the servers' scripts)."""
    now = now or timezone.now()
    ended = AutoReplySettings.objects.select_for_update().filter(enabled=True, ends_at__lte=now)
    user_ids = list(ended.values_list("user_id", flat=True))
    AutoReplySettings.objects.filter(user_id__in=user_ids).update(enabled=False)
    for user_id in user_ids:
        notify_rules_changed(user_id, [None])
    return len(user_ids)
