"""Read grants on records (RecordGrant): who may read a record they do not own.

Under "users see the records they own", an owner who shares mail linked to their
records may let the colleagues read those records too. A grant is read only
(posta.crm.services: `records_of(..., read=True)`), and carries the opaque
`reason` its maker chose, so the maker removes exactly the grants it made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import transaction

from posta.crm.models import Record, RecordGrant
from posta.crm.services import sees_all
from posta.users.models import User


def who_cannot_read(records: Sequence[Record], people: Sequence[User]) -> dict[str, list[User]]:
    """For each record (by ref), those of `people` who may not read it: not its
    owner, no administrator, no grant, and visibility is "own records". Records
    everyone in `people` may read are left out. One query for the grants."""
    if not records or not people:
        return {}
    blind = [p for p in people if not sees_all(p)]
    if not blind:
        return {}
    granted: set[tuple[str, int, int]] = set()
    for kind in sorted({r.KIND for r in records}):
        granted.update(
            RecordGrant.objects.filter(
                kind=kind, record_id__in=sorted(r.pk for r in records if r.KIND == kind),
                user_id__in=sorted(p.pk for p in blind),
            ).values_list("kind", "record_id", "user_id")
        )
    out: dict[str, list[User]] = {}
    for record in records:
        missing = [
            p for p in blind
            if p.pk != record.owner_id and (record.KIND, record.pk, p.pk) not in granted
        ]
        if missing:
            out[record.ref] = missing
    return out


def do_grant(
    records: Iterable[Record], people: Iterable[User], *, by: User, reason: str
) -> int:
    """Let `people` read `records` (the caller checked `by` may give them);
    existing grants for the same reason are left. Returns how many are new."""
    rows = [
        RecordGrant(kind=r.KIND, record_id=r.pk, user=p, granted_by=by, reason=reason)
        for r in records
        for p in people
        if p.pk != r.owner_id
    ]
    with transaction.atomic():
        before = RecordGrant.objects.filter(reason=reason).count()
        RecordGrant.objects.bulk_create(rows, ignore_conflicts=True)
        return RecordGrant.objects.filter(reason=reason).count() - before


def do_drop_grants(reason: str, *, users: Iterable[int] | None = None,
                   keep_users: Iterable[int] | None = None) -> int:
    """Remove the grants made for `reason`: of `users` only, or of everyone but
    `keep_users`, or all of them. Returns how many went."""
    rows = RecordGrant.objects.filter(reason=reason)
    if users is not None:
        rows = rows.filter(user_id__in=sorted(set(users)))
    if keep_users is not None:
        rows = rows.exclude(user_id__in=sorted(set(keep_users)))
    deleted, _detail = rows.delete()
    return deleted

