"""Links between message identities and records, scoped to what the user may see.

A link is visible to a user when the user may see its record (posta.crm.services),
whoever made it: a colleague's link on the same mail shows in my reader when the
record is one I see. Identities are opaque strings handed in by posta.mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from posta.crm.models import MODELS, Link, Record
from posta.crm.services import records_of, sees_all
from posta.users.models import User


@dataclass(frozen=True)
class VisibleLink:
    link: Link
    record: Record


def _visible_filter(
    user: User, links: Iterable[Link], *, read: bool = False
) -> list[VisibleLink]:
    rows = list(links)
    by_kind: dict[str, set[int]] = {}
    for link in rows:
        by_kind.setdefault(link.kind, set()).add(link.record_id)
    records: dict[tuple[str, int], Record] = {}
    for kind, ids in by_kind.items():
        if kind not in MODELS:
            continue
        for record in records_of(user, kind, read=read).filter(pk__in=sorted(ids)):
            records[(kind, record.pk)] = record
    return [
        VisibleLink(link, records[(link.kind, link.record_id)])
        for link in rows
        if (link.kind, link.record_id) in records
    ]


def links_for_identity(user: User, identity: str) -> list[VisibleLink]:
    """The links of one message the user may see, newest first."""
    return _visible_filter(user, Link.objects.filter(identity=identity).order_by("-created_at"))


def records_linked(user: User, identities: Sequence[str], *, read: bool = False) -> list[Record]:
    """The records linked to any of `identities` that the user may see (with
    `read`, also those a grant lets them read), each once, by kind and name."""
    wanted = sorted(set(identities))
    if not wanted:
        return []
    visible = _visible_filter(user, Link.objects.filter(identity__in=wanted), read=read)
    records = {v.record.ref: v.record for v in visible}
    return sorted(records.values(), key=lambda r: (r.KIND, r.sort_name, r.pk))


def identities_linked_for(user: User, identities: Sequence[str]) -> set[str]:
    """Those of `identities` linked to at least one record the user may see."""
    wanted = sorted(set(identities))
    if not wanted:
        return set()
    links = Link.objects.filter(identity__in=wanted)
    if sees_all(user):
        return set(links.values_list("identity", flat=True))
    return {v.link.identity for v in _visible_filter(user, links)}


def identities_of(record: Record, *, limit: int = 5000) -> list[str]:
    """The identities linked to a record, newest link first."""
    return list(
        Link.objects.filter(kind=record.KIND, record_id=record.pk)
        .order_by("-created_at")
        .values_list("identity", flat=True)[:limit]
    )


def do_link(
    record: Record, identities: Iterable[str], *, by: User | None, how: str = Link.How.MANUAL
) -> int:
    """Link the identities to the record (already-linked ones are left as they are).
    Returns how many links are new."""
    wanted = sorted({i for i in identities if i})
    with transaction.atomic():
        known = set(
            Link.objects.filter(
                kind=record.KIND, record_id=record.pk, identity__in=wanted
            ).values_list("identity", flat=True)
        )
        new = [
            Link(kind=record.KIND, record_id=record.pk, identity=i, how=how, linked_by=by)
            for i in wanted
            if i not in known
        ]
        Link.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def do_unlink(record: Record, identities: Iterable[str]) -> int:
    deleted, _detail = Link.objects.filter(
        kind=record.KIND, record_id=record.pk, identity__in=sorted(set(identities))
    ).delete()
    return deleted


def do_link_many(pairs: Iterable[tuple[str, int, str]], *, how: str) -> int:
    """Bulk links (kind, record id, identity) for auto-linking; no visibility check
    (the caller picked visible records). Returns how many rows were offered.

    One `INSERT ... ON CONFLICT DO NOTHING` executemany (SQLite ≥ 3.24 and
    PostgreSQL both speak it): the ORM's bulk_create builds every row's SQL in
    Python, which cost more than the insert itself on a first sync."""
    rows = sorted(set(pairs))
    if not rows:
        return 0
    now = timezone.now()
    table = connection.ops.quote_name(Link._meta.db_table)  # noqa: SLF001 - documented API
    columns = ", ".join(
        connection.ops.quote_name(c)
        for c in ("kind", "record_id", "identity", "how", "created_at")
    )
    conflict = ", ".join(connection.ops.quote_name(c) for c in ("identity", "kind", "record_id"))
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s) "  # noqa: S608 - names are ours
        f"ON CONFLICT ({conflict}) DO NOTHING"
    )
    stamp = connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, [(k, r, i, how, stamp) for k, r, i in rows])
    return len(rows)
