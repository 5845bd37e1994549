"""Automatic linking of mail to the records that already exist (issue 15): the
matching, by address, set-based.

A batch of messages is matched in a handful of queries whatever its size: From, To
and Cc against the records' addresses (RecordEmail, indexed by address), minus the
user's own addresses (mail from me to a client links the client, not me), limited
to the records the owner may see, then one INSERT ... ON CONFLICT DO NOTHING of the
links (a link is unique per identity and record, so linking a batch twice, after a
kill, adds nothing). Never creates a record (strangers and opted-out senders would
fill the CRM); off per user (CrmUserPrefs).

Who calls it: the worker, never the syncing process nor a web request.
posta.mail.autolink_queue links the batches new mail leaves behind;
posta.mail.record_backfill links a record's existing mail ("link existing mail").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from posta.crm import links as crm_links
from posta.crm import services as crm
from posta.crm.models import CrmUserPrefs, Link, RecordEmail
from posta.users.models import User

# Messages matched per statement: keeps each IN (...) list well under SQLite's
# limit on host parameters.
CHUNK = 1000

# (identity, from_email, to, cc) of a message, as values_list gives them.
MessageRow = tuple[str, str, Any, Any]


@dataclass(frozen=True)
class Linker:
    """What matching needs to know of the user, read once per worker run."""

    user: User
    own: frozenset[str]
    sees_all: bool


def auto_link_enabled(user: User) -> bool:
    prefs = CrmUserPrefs.objects.filter(user=user).values_list("auto_link", flat=True).first()
    return (prefs or CrmUserPrefs.AutoLink.EXISTING) == CrmUserPrefs.AutoLink.EXISTING


def linker_for(user: User) -> Linker:
    own = frozenset(e.lower() for e in user.mail_accounts.values_list("email", flat=True) if e)
    return Linker(user=user, own=own, sees_all=crm.sees_all(user))


def addresses_of(row: MessageRow, own: Collection[str]) -> set[str]:
    """The lower-cased From, To and Cc addresses of a message, minus `own`."""
    _identity, from_email, to, cc = row
    found = {a.strip().lower() for a in [from_email, *_addresses(to), *_addresses(cc)]}
    return {a for a in found if a and a not in own}


def link_rows(linker: Linker, rows: Iterable[MessageRow]) -> int:
    """Link the messages to the visible records sharing an address with them;
    returns the links offered."""
    by_address: dict[str, set[str]] = {}
    for row in rows:
        for address in addresses_of(row, linker.own):
            by_address.setdefault(address, set()).add(row[0])
    if not by_address:
        return 0
    matches = list(
        RecordEmail.objects.filter(email__in=sorted(by_address)).values_list(
            "kind", "record_id", "email"
        )
    )
    visible: dict[str, set[int]] = {}
    for kind in {m[0] for m in matches}:
        ids_of_kind = [m[1] for m in matches if m[0] == kind]
        # Everyone sees every record: the addresses' rows name existing records.
        visible[kind] = (
            set(ids_of_kind) if linker.sees_all else crm.visible_ids(linker.user, kind, ids_of_kind)
        )
    pairs = [
        (kind, record_id, identity)
        for kind, record_id, email in matches
        if record_id in visible.get(kind, set())
        for identity in by_address[email]
    ]
    return crm_links.do_link_many(pairs, how=Link.How.AUTO) if pairs else 0


def _addresses(pairs: Any) -> list[str]:
    return [str(p[1]) for p in pairs or [] if isinstance(p, list | tuple) and len(p) == 2]
