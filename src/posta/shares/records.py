"""The CRM records of shared mail (issue 16): when the conversation is linked to
records some colleagues may not see ("users see the records they own"), the
owner chooses to let them read those records too, or to share the mail alone.

The grants are posta.crm's `RecordGrant` rows with the reason "share:<id>"
(crm never learns what a share is); taking the share from someone, or stopping
it, removes the grants it made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from posta.crm import grants
from posta.crm import links as crm_links
from posta.crm.models import Record
from posta.shares.models import Share
from posta.users.models import User

GRANT = "grant"
ALONE = "alone"
CHOICES = ("", GRANT, ALONE)


@dataclass(frozen=True)
class HiddenRecord:
    """A record the conversation is linked to, and the colleagues who may not read it."""

    record: Record
    people: list[User]


def reason_of(share: Share) -> str:
    return f"share:{share.pk}"


def hidden_records(
    owner: User, identities: Sequence[str], people: Sequence[User]
) -> list[HiddenRecord]:
    """The records linked to the conversation's `identities` that the owner may
    give (theirs, or any for an administrator) and some of `people` may not read."""
    records = crm_links.records_linked(owner, identities)
    missing = grants.who_cannot_read(records, [p for p in people if p.pk != owner.pk])
    return [HiddenRecord(r, missing[r.ref]) for r in records if r.ref in missing]


def do_grant_records(share: Share, hidden: Iterable[HiddenRecord]) -> int:
    """Let each colleague read the records they were missing, for this share."""
    made = 0
    for item in hidden:
        made += grants.do_grant(
            [item.record], item.people, by=share.owner, reason=reason_of(share)
        )
    return made


def do_drop_grants(
    share: Share, *, users: Iterable[int] | None = None, keep_users: Iterable[int] | None = None
) -> int:
    """Remove the grants this share made (of `users`, or of all but `keep_users`)."""
    return grants.do_drop_grants(reason_of(share), users=users, keep_users=keep_users)
