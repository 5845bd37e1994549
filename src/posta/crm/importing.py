"""Importing records from CSV (with a column mapping and a preview) and contacts from
vCard (RFC 6350), and exporting records to CSV.

An import is a `RecordImport` row: the decoded file, the mapping and the progress.
`do_import_chunk` imports the next CHUNK rows and records where it stopped, so the
page that shows the progress drives the run a chunk at a time and a stopped run
resumes where it was. Duplicates are found by email address (else by the exact
name, for rows without one), against the records the user sees and the rows
imported before: skipped, or merged into the existing record, as the user chose.
So running the same file again imports nothing twice. A row that cannot be
imported is skipped with its number and the reason in words.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import vobject
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from posta.core.errors import PostaError
from posta.crm.models import (
    MODELS,
    Contact,
    Kind,
    Lead,
    Organization,
    Record,
    RecordEmail,
    RecordImport,
)
from posta.crm.services import (
    clean_emails,
    crm_settings,
    do_save_record,
    domains_of,
    emails_of,
    normalize_phone,
    records_of,
    records_with_emails,
)
from posta.users.models import User

CHUNK = 500
MAX_ROWS = 100_000
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ERRORS = 500

# The fields a column can fill, per kind (model fields, then the lists).
FIELDS: dict[str, tuple[str, ...]] = {
    Kind.CONTACT: ("first_name", "last_name", "title", "organization", "emails", "phones", "notes"),
    Kind.ORGANIZATION: ("name", "website", "address", "domains", "emails", "phones", "notes"),
    Kind.LEAD: ("name", "company", "status", "source", "emails", "phones", "notes"),
}
FIELD_LABELS: dict[str, object] = {
    "first_name": _lazy("First name"), "last_name": _lazy("Last name"), "title": _lazy("Title"),
    "organization": _lazy("Organization"), "emails": _lazy("Email addresses"),
    "phones": _lazy("Phone numbers"), "notes": _lazy("Notes"), "name": _lazy("Name"),
    "website": _lazy("Website"), "address": _lazy("Address"), "domains": _lazy("Email domains"),
    "company": _lazy("Company"), "status": _lazy("Status"), "source": _lazy("Source"),
}  # fmt: skip
# Column titles recognised when guessing the mapping (lower case; English, Italian).
GUESSES: dict[str, tuple[str, ...]] = {
    "first_name": ("first name", "first_name", "firstname", "given name", "nome"),
    "last_name": ("last name", "last_name", "lastname", "surname", "family name", "cognome"),
    "title": ("title", "job title", "role", "ruolo", "qualifica"),
    "organization": ("organization", "organisation", "company", "azienda", "società"),
    "name": ("name", "nome", "ragione sociale", "company name"),
    "company": ("company", "azienda", "organization"),
    "website": ("website", "web", "sito", "sito web", "url"),
    "address": ("address", "indirizzo"),
    "domains": ("domains", "domain", "dominio", "domini"),
    "status": ("status", "stato"),
    "source": ("source", "origine", "fonte"),
    "emails": ("email", "e-mail", "emails", "email address", "indirizzo email", "mail"),
    "phones": ("phone", "phones", "telephone", "telefono", "mobile", "cellulare", "tel"),
    "notes": ("notes", "note", "description", "descrizione"),
}


def _decode(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise PostaError("file_too_large", _("The file is larger than 20 MB."), status=413)
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise PostaError("bad_encoding", _("The file is not text."))  # pragma: no cover


def _rows(text: str, delimiter: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter))[: MAX_ROWS + 1]
    except csv.Error as error:
        raise PostaError(
            "bad_csv", _("The file could not be read as CSV: %(why)s") % {"why": error}
        ) from error


def _sniff(text: str) -> str:
    """The delimiter of the header row: the most frequent of , ; tab | (spreadsheets
    in Italian locales write semicolons)."""
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def guess_mapping(kind: str, header: list[str]) -> dict[str, int]:
    mapping: dict[str, int] = {}
    titles = [h.strip().lower() for h in header]
    for field_name in FIELDS[kind]:
        for i, title in enumerate(titles):
            if title in GUESSES.get(field_name, ()) and i not in mapping.values():
                mapping[field_name] = i
                break
    return mapping


@transaction.atomic
def check_start_import(user: User, kind: str, filename: str, data: bytes) -> RecordImport:
    """A new import from an uploaded file: CSV of any kind, or vCard for contacts
    (converted to the same rows). Its mapping is guessed from the header row."""
    if kind not in MODELS:
        raise PostaError("bad_kind", _("Choose a contact, an organization or a lead."))
    text = _decode(data)
    if filename.lower().endswith((".vcf", ".vcard")) or text.lstrip().startswith("BEGIN:VCARD"):
        if kind != Kind.CONTACT:
            raise PostaError("vcard_kind", _("vCard files hold contacts."))
        text, delimiter = vcards_to_csv(text), ","
    else:
        delimiter = _sniff(text)
    rows = _rows(text, delimiter)
    if len(rows) < 2:
        raise PostaError("empty_csv", _("The file has no rows below its header."))
    return RecordImport.objects.create(
        owner=user, kind=kind, filename=filename[:255], content=text, delimiter=delimiter,
        mapping=guess_mapping(kind, rows[0]), total=len(rows) - 1,
    )  # fmt: skip


def access_import(user: User, import_id: int) -> RecordImport:
    found = RecordImport.objects.filter(pk=import_id, owner=user).first()
    if found is None:
        raise PostaError("not_found", _("This import does not exist."), status=404)
    return found


def header_and_preview(job: RecordImport, *, rows: int = 5) -> tuple[list[str], list[list[str]]]:
    table = _rows(job.content, job.delimiter)
    return table[0], table[1 : rows + 1]


def do_set_mapping(job: RecordImport, mapping: dict[str, int], duplicates: str) -> None:
    job.mapping = mapping
    job.duplicates = duplicates
    job.state = RecordImport.State.RUNNING
    job.save(update_fields=["mapping", "duplicates", "state"])


# --- running ----------------------------------------------------------------------


@dataclass
class _Row:
    values: dict[str, str]

    def get(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def items(self, name: str) -> list[str]:
        text = self.get(name).replace(";", ",").replace("\n", ",")
        return [part.strip() for part in text.split(",") if part.strip()]


def _values(job: RecordImport, row: list[str]) -> _Row:
    return _Row({f: row[i] for f, i in job.mapping.items() if 0 <= i < len(row)})


def do_import_chunk(job: RecordImport) -> RecordImport:
    """Import the next CHUNK rows of a running import; marks it done at the end."""
    if job.state != RecordImport.State.RUNNING:
        return job
    table = _rows(job.content, job.delimiter)
    start = job.position
    chunk = table[1 + start : 1 + start + CHUNK]
    with transaction.atomic():
        for offset, row in enumerate(chunk):
            number = start + offset + 2  # the file's line: the header is line 1
            if not any(cell.strip() for cell in row):
                job.skipped += 1
                continue
            try:
                outcome = _import_row(job, _values(job, row))
            except PostaError as error:
                if len(job.errors) < MAX_ERRORS:
                    job.errors.append([number, str(error)])
                job.skipped += 1
                continue
            if outcome == "created":
                job.created += 1
            elif outcome == "merged":
                job.merged += 1
            else:
                job.skipped += 1
        job.position = start + len(chunk)
        if job.position >= job.total:
            job.state = RecordImport.State.DONE
        job.save()
    return job


def _existing(job: RecordImport, emails: list[str], name: str) -> Record | None:
    user = job.owner
    for record, _email in records_with_emails(user, emails):
        if record.KIND == job.kind:
            return record
    if not emails and name:
        return records_of(user, job.kind).filter(sort_name=name.strip().lower()[:300]).first()
    return None


def _import_row(job: RecordImport, row: _Row) -> str:
    emails = clean_emails(row.items("emails"))
    phones = row.items("phones")
    record = _build(job, row)
    duplicate = _existing(job, emails, record.display_name)
    if duplicate is not None:
        if job.duplicates == RecordImport.Duplicates.SKIP:
            return "skipped"
        _merge_into(duplicate, row, emails, phones)
        return "merged"
    domains = row.items("domains") if job.kind == Kind.ORGANIZATION else None
    do_save_record(record, emails=emails, phones=phones, domains=domains)
    return "created"


def _build(job: RecordImport, row: _Row) -> Record:
    owner = job.owner
    if job.kind == Kind.CONTACT:
        if not (row.get("first_name") or row.get("last_name")):
            raise PostaError("no_name", _("The row has neither a first nor a last name."))
        organization = None
        if row.get("organization"):
            organization = (
                records_of(owner, Kind.ORGANIZATION)
                .filter(sort_name=row.get("organization").lower()[:300])
                .first()
            )
        return Contact(
            owner=owner, first_name=row.get("first_name")[:100],
            last_name=row.get("last_name")[:100], title=row.get("title")[:100],
            organization=organization if isinstance(organization, Organization) else None,
            notes=row.get("notes"),
        )  # fmt: skip
    if not row.get("name"):
        raise PostaError("no_name", _("The row has no name."))
    if job.kind == Kind.ORGANIZATION:
        return Organization(
            owner=owner, name=row.get("name")[:200], website=row.get("website")[:300],
            address=row.get("address"), notes=row.get("notes"),
        )  # fmt: skip
    status = row.get("status").lower() or Lead.Status.NEW
    if status not in Lead.Status.values:
        raise PostaError(
            "bad_status", _("“%(status)s” is not a lead status.") % {"status": row.get("status")}
        )
    return Lead(
        owner=owner, name=row.get("name")[:200], company=row.get("company")[:200],
        status=status, source=row.get("source")[:100], notes=row.get("notes"),
    )  # fmt: skip


def _merge_into(record: Record, row: _Row, emails: list[str], phones: list[str]) -> None:
    known = emails_of(record)
    region = crm_settings().phone_region
    typed = [normalize_phone(p, region) for p in phones]
    record_phones = list(record.phones) + [p for p in typed if p not in record.phones]
    if row.get("notes") and row.get("notes") not in record.notes:
        record.notes = f"{record.notes}\n{row.get('notes')}".strip()
    domains = None
    if isinstance(record, Organization):
        domains = domains_of(record) + row.items("domains")
    do_save_record(
        record, emails=known + [e for e in emails if e not in known], phones=record_phones,
        domains=domains,
    )  # fmt: skip


# --- vCard ------------------------------------------------------------------------


def _vcards(text: str) -> Iterator[object]:
    try:
        yield from vobject.readComponents(text, ignoreUnreadable=True)
    except Exception as error:
        raise PostaError(
            "bad_vcard", _("The vCard file could not be read: %(why)s") % {"why": error}
        ) from error


def vcards_to_csv(text: str) -> str:
    """Contacts of a vCard file (RFC 6350; 3.0 and 2.1 read too) as CSV rows with
    the header of FIELDS[contact]."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS[Kind.CONTACT])
    for card in _vcards(text):
        contents = getattr(card, "contents", {})
        name = contents.get("n", [None])[0]
        first = last = ""
        if name is not None:
            first, last = str(name.value.given or ""), str(name.value.family or "")
        if not (first or last) and "fn" in contents:
            first, _sep, last = str(contents["fn"][0].value).partition(" ")
        org = contents.get("org", [None])[0]
        org_name = ""
        if org is not None:
            org_name = org.value[0] if isinstance(org.value, list) else str(org.value)
        writer.writerow([
            first, last, str(contents.get("title", [None])[0].value) if "title" in contents else "",
            org_name, ", ".join(str(e.value) for e in contents.get("email", [])),
            ", ".join(str(t.value) for t in contents.get("tel", [])),
            str(contents["note"][0].value) if "note" in contents else "",
        ])  # fmt: skip
    return out.getvalue()


# --- export -----------------------------------------------------------------------


def export_rows(user: User, kind: str) -> Iterator[list[str]]:
    """The records of `kind` the user sees, as CSV rows (header first)."""
    fields = FIELDS[kind]
    yield list(fields)
    rows = records_of(user, kind).order_by("sort_name", "pk")
    last: tuple[str, int] = ("", 0)
    while True:
        batch = list(
            rows.filter(Q(sort_name__gt=last[0]) | Q(sort_name=last[0], pk__gt=last[1]))[:1000]
        )
        if not batch:
            return
        emails: dict[int, list[str]] = {}
        for record_id, email in (
            RecordEmail.objects.filter(kind=kind, record_id__in=[r.pk for r in batch])
            .order_by("position", "id")
            .values_list("record_id", "email")
        ):
            emails.setdefault(record_id, []).append(email)
        org_ids = {getattr(r, "organization_id", None) for r in batch} - {None}
        orgs = dict(Organization.objects.filter(pk__in=org_ids).values_list("pk", "name"))
        for record in batch:
            org = orgs.get(getattr(record, "organization_id", None) or 0, "")
            yield [_cell(record, f, emails.get(record.pk, []), org) for f in fields]
        last = (batch[-1].sort_name, batch[-1].pk)


def _cell(record: Record, name: str, emails: list[str], organization: str) -> str:
    if name == "emails":
        return ", ".join(emails)
    if name == "phones":
        return ", ".join(record.phones)
    if name == "domains" and isinstance(record, Organization):
        return ", ".join(domains_of(record))
    if name == "organization":
        return organization
    value = getattr(record, name, "")
    return "" if value is None else str(value)
