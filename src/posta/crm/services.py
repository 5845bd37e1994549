"""Records: who sees what, fetching with access checks, saving, deleting, searching.

Visibility (CrmSettings.visibility): "every user sees every record" (the default)
or "users see the records they own"; administrators see all. Every query of a
record goes through `records_of`, so a record another user may not see is
"not found" (HTTP 404) everywhere, the same as one that does not exist.

Under "own records" a `RecordGrant` (posta.crm.grants) lets a user read a record
they do not own: `records_of(..., read=True)` includes it, for the pages that
only show a record; editing, deleting, merging and linking ask without `read`,
so a grant never allows them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import phonenumbers
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from posta.core.errors import PostaError, not_found
from posta.crm import signals
from posta.crm.models import (
    MODELS,
    Contact,
    CrmSettings,
    CrmUserPrefs,
    Kind,
    Link,
    Organization,
    OrganizationDomain,
    Record,
    RecordEmail,
    RecordGrant,
)
from posta.users.models import User

log = logging.getLogger(__name__)

PAGE_SIZE = 50


def crm_settings() -> CrmSettings:
    row, _created = CrmSettings.objects.get_or_create(pk=1)
    return row


def user_prefs(user: User) -> CrmUserPrefs:
    row, _created = CrmUserPrefs.objects.get_or_create(user=user)
    return row


def sees_all(user: User) -> bool:
    return user.is_administrator or crm_settings().visibility == CrmSettings.Visibility.ALL


def model_for(kind: str) -> type[Record]:
    model = MODELS.get(kind)
    if model is None:
        raise not_found()
    return model


def records_of(
    user: User, kind: str, *, all_visible: bool | None = None, read: bool = False
) -> QuerySet[Record]:
    """The records of `kind` the user may see and change; with `read`, also those
    a grant lets them read."""
    rows: QuerySet[Record] = model_for(kind)._default_manager.all()  # noqa: SLF001 - the abstract base has no typed `objects`
    if not (sees_all(user) if all_visible is None else all_visible):
        if read:
            granted = RecordGrant.objects.filter(user=user, kind=kind).values("record_id")
            rows = rows.filter(Q(owner=user) | Q(pk__in=granted))
        else:
            rows = rows.filter(owner=user)
    return rows


def access_record(user: User, kind: str, record_id: int, *, read: bool = False) -> Record:
    """The record, if the user may see it (with `read`: at least read it by a
    grant); PostaError 404 otherwise."""
    record = records_of(user, kind, read=read).filter(pk=record_id).first()
    if record is None:
        raise not_found(_("This record does not exist, or you may not see it."))
    return record


def can_change(user: User, record: Record) -> bool:
    """Whether the user may edit, delete, merge or link the record (not only read it)."""
    return sees_all(user) or record.owner_id == user.pk


def access_ref(user: User, ref: str) -> Record:
    """A record named "kind:id" (forms, links), if the user may see it."""
    kind, _sep, pk = ref.partition(":")
    if not _is_id(pk):
        raise not_found(_("This record does not exist, or you may not see it."))
    return access_record(user, kind, int(pk))


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def visible_ids(user: User, kind: str, ids: Iterable[int]) -> set[int]:
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    return set(records_of(user, kind).filter(pk__in=wanted).values_list("pk", flat=True))


# --- reading ----------------------------------------------------------------------


def emails_of(record: Record) -> list[str]:
    return list(
        RecordEmail.objects.filter(kind=record.KIND, record_id=record.pk)
        .order_by("position", "id")
        .values_list("email", flat=True)
    )


def domains_of(organization: Organization) -> list[str]:
    return list(organization.domains.order_by("domain").values_list("domain", flat=True))


@dataclass
class RecordPage:
    records: list[Record]
    emails: dict[int, list[str]]
    next_cursor: str


def search_records(
    user: User, kind: str, query: str = "", *, cursor: str = "", limit: int = PAGE_SIZE,
    read: bool = False,
) -> RecordPage:
    """The records of `kind` the user sees (with `read`, also those granted for
    reading) whose name or addresses contain every word of `query`, by name;
    keyset pages on (sort_name, id)."""
    rows = records_of(user, kind, read=read)
    for word in query.split()[:6]:
        matching = RecordEmail.objects.filter(kind=kind, email__icontains=word).values(
            "record_id"
        )
        rows = rows.filter(Q(sort_name__icontains=word) | Q(pk__in=matching))
    name, _sep, pk = cursor.rpartition("\x1f")
    if _is_id(pk):
        rows = rows.filter(Q(sort_name__gt=name) | Q(sort_name=name, pk__gt=int(pk)))
    found = list(rows.order_by("sort_name", "pk")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    emails: dict[int, list[str]] = {}
    for record_id, email in (
        RecordEmail.objects.filter(kind=kind, record_id__in=[r.pk for r in found])
        .order_by("position", "id")
        .values_list("record_id", "email")
    ):
        emails.setdefault(record_id, []).append(email)
    last = found[-1] if found else None
    next_cursor = f"{last.sort_name}\x1f{last.pk}" if more and last else ""
    return RecordPage(found, emails, next_cursor)


def records_with_emails(user: User, addresses: Iterable[str]) -> list[tuple[Record, str]]:
    """The records the user sees that have one of `addresses`, with the address."""
    wanted = sorted({a.strip().lower() for a in addresses if a and "@" in a})
    if not wanted:
        return []
    by_kind: dict[str, dict[int, str]] = {}
    for kind, record_id, email in RecordEmail.objects.filter(email__in=wanted).values_list(
        "kind", "record_id", "email"
    ):
        by_kind.setdefault(kind, {}).setdefault(record_id, email)
    out: list[tuple[Record, str]] = []
    for kind, ids in sorted(by_kind.items()):
        for record in records_of(user, kind).filter(pk__in=list(ids)).order_by("sort_name"):
            out.append((record, ids[record.pk]))
    return out


def organizations_with_domains(user: User, domains: Iterable[str]) -> list[Organization]:
    wanted = sorted({d.strip().lower() for d in domains if d})
    if not wanted:
        return []
    ids = OrganizationDomain.objects.filter(domain__in=wanted).values("organization_id")
    rows = records_of(user, Kind.ORGANIZATION).filter(pk__in=ids).order_by("sort_name")
    return [r for r in rows if isinstance(r, Organization)]


def possible_duplicates(user: User, record: Record, *, limit: int = 50) -> list[Record]:
    """Other records of the same kind the user sees that share an address or the
    name: the choices of "merge a duplicate"."""
    emails = emails_of(record)
    sharing = RecordEmail.objects.filter(kind=record.KIND, email__in=emails).values("record_id")
    rows = (
        records_of(user, record.KIND)
        .filter(Q(pk__in=sharing) | Q(sort_name=record.sort_name))
        .exclude(pk=record.pk)
        .order_by("sort_name", "pk")
    )
    return list(rows[:limit])


def linked_count(record: Record) -> int:
    return Link.objects.filter(kind=record.KIND, record_id=record.pk).count()


# --- writing ----------------------------------------------------------------------


def normalize_phone(text: str, region: str) -> str:
    """E.164 where `text` reads as a possible number, else the text as typed."""
    text = text.strip()
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(number):
        return text
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def clean_emails(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        email = value.strip().strip("<>").lower()
        if not email:
            continue
        local, at, domain = email.rpartition("@")
        if not at or not local or "." not in domain or " " in email or len(email) > 320:
            raise PostaError(
                "bad_email", _("“%(email)s” is not an email address.") % {"email": value},
                field="emails",
            )
        if email not in out:
            out.append(email)
    return out


@transaction.atomic
def do_save_record(
    record: Record,
    *,
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    domains: Sequence[str] | None = None,
) -> Record:
    """Save a record with its addresses (already cleaned), phones (normalized here)
    and, for an organization, its domains."""
    region = crm_settings().phone_region
    record.phones = [normalize_phone(p, region) for p in phones if p.strip()]
    record.save()
    RecordEmail.objects.filter(kind=record.KIND, record_id=record.pk).exclude(
        email__in=list(emails)
    ).delete()
    existing = set(
        RecordEmail.objects.filter(kind=record.KIND, record_id=record.pk).values_list(
            "email", flat=True
        )
    )
    added = [email for email in emails if email not in existing]
    for position, email in enumerate(emails):
        if email in existing:
            RecordEmail.objects.filter(kind=record.KIND, record_id=record.pk, email=email).update(
                position=position
            )
        else:
            RecordEmail.objects.create(
                kind=record.KIND, record_id=record.pk, email=email, position=position
            )
    if domains is not None and isinstance(record, Organization):
        wanted = sorted({d.strip().lower().lstrip("@") for d in domains if d.strip()})
        record.domains.exclude(domain__in=wanted).delete()
        for domain in wanted:
            OrganizationDomain.objects.get_or_create(organization=record, domain=domain)
    if added:
        _announce_emails(record, added)
    return record


def _announce_emails(record: Record, added: list[str]) -> None:
    kind, record_id, owner_id = record.KIND, record.pk, record.owner_id

    def send() -> None:
        for receiver, result in signals.record_emails_added.send_robust(
            sender=type(record), kind=kind, record_id=record_id, owner_id=owner_id,
            emails=added,
        ):  # fmt: skip
            if isinstance(result, Exception):
                log.warning("record_emails_added failed in %r: %s", receiver, result)

    transaction.on_commit(send)


@transaction.atomic
def do_delete_record(record: Record) -> list[str]:
    """Delete a record, its addresses and its links; returns the identities it was
    linked to (the mail side lets go the messages nothing else needs)."""
    links = Link.objects.filter(kind=record.KIND, record_id=record.pk)
    identities = list(links.values_list("identity", flat=True))
    links.delete()
    RecordEmail.objects.filter(kind=record.KIND, record_id=record.pk).delete()
    RecordGrant.objects.filter(kind=record.KIND, record_id=record.pk).delete()
    record.delete()
    return identities


@transaction.atomic
def do_merge_records(keep: Record, duplicate: Record) -> Record:
    """Fold `duplicate` into `keep` (same kind): addresses, phones, links, notes and,
    for an organization, its domains and contacts; `duplicate` is deleted."""
    if keep.KIND != duplicate.KIND or keep.pk == duplicate.pk:
        raise PostaError("bad_merge", _("Only two different records of one kind can be merged."))
    emails = emails_of(keep) + [e for e in emails_of(duplicate) if e not in emails_of(keep)]
    phones = keep.phones + [p for p in duplicate.phones if p not in keep.phones]
    if duplicate.notes and duplicate.notes not in keep.notes:
        keep.notes = f"{keep.notes}\n\n{duplicate.notes}".strip()
    domains = None
    if isinstance(keep, Organization) and isinstance(duplicate, Organization):
        domains = domains_of(keep) + domains_of(duplicate)
        Contact.objects.filter(organization=duplicate).update(organization=keep)
    for identity, how in Link.objects.filter(
        kind=duplicate.KIND, record_id=duplicate.pk
    ).values_list("identity", "how"):
        Link.objects.get_or_create(
            kind=keep.KIND, record_id=keep.pk, identity=identity, defaults={"how": how}
        )
    Link.objects.filter(kind=duplicate.KIND, record_id=duplicate.pk).delete()
    # Whoever could read the duplicate reads the record it became.
    for user_id, by_id, reason in RecordGrant.objects.filter(
        kind=duplicate.KIND, record_id=duplicate.pk
    ).values_list("user_id", "granted_by_id", "reason"):
        RecordGrant.objects.get_or_create(
            kind=keep.KIND, record_id=keep.pk, user_id=user_id, reason=reason,
            defaults={"granted_by_id": by_id},
        )
    RecordGrant.objects.filter(kind=duplicate.KIND, record_id=duplicate.pk).delete()
    RecordEmail.objects.filter(kind=duplicate.KIND, record_id=duplicate.pk).delete()
    duplicate.delete()
    return do_save_record(keep, emails=emails, phones=phones, domains=domains)
