"""CRM pages: record lists, a record's page with its mail, create/edit/delete/merge,
the reader's side panel, autocomplete, and the CRM settings."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from posta.core.errors import PostaError
from posta.crm import importing
from posta.crm import services as crm
from posta.crm.models import Kind, Organization, Record
from posta.mail import links as mail_links
from posta.mail import record_backfill
from posta.mail.imports import do_import_messages
from posta.mail.queries import access_message
from posta.web import params, uploads
from posta.web.crm_forms import CrmPrefsForm, CrmSettingsForm, form_for
from posta.web.utils import admin_required, current_user

KIND_TITLES: dict[str, object] = {
    Kind.CONTACT: Kind.CONTACT.label,
    Kind.ORGANIZATION: Kind.ORGANIZATION.label,
    Kind.LEAD: Kind.LEAD.label,
}


def _kind(kind: str) -> str:
    crm.model_for(kind)  # 404 for anything else
    return kind


@login_required
@require_GET
def crm_home(request: HttpRequest) -> HttpResponse:
    return redirect("crm_list", record_kind="contact")


@login_required
@require_GET
def record_list(request: HttpRequest, record_kind: str) -> HttpResponse:
    user = current_user(request)
    kind = _kind(record_kind)
    query = params.text(request.GET, "q", max_length=200)
    cursor = params.text(request.GET, "after", max_length=400)
    page = crm.search_records(user, kind, query, cursor=cursor, read=True)
    rows = [(r, page.emails.get(r.pk, [])) for r in page.records]
    context = {"kind": kind, "kinds": KIND_TITLES, "rows": rows, "q": query, "page": page}
    return render(request, "web/crm/list.html", context)


@login_required
def record_edit(
    request: HttpRequest, record_kind: str, record_id: int | None = None
) -> HttpResponse:
    user = current_user(request)
    kind = _kind(record_kind)
    record = crm.access_record(user, kind, record_id) if record_id is not None else None
    emails = crm.emails_of(record) if record else []
    domains = crm.domains_of(record) if isinstance(record, Organization) else []
    form = form_for(
        kind, user, record, request.POST if request.method == "POST" else None,
        emails=emails, domains=domains,
    )  # fmt: skip
    if request.method == "POST" and form.is_valid():
        saved: Record = form.save(commit=False)
        if record is None:
            saved.owner = user
        crm.do_save_record(
            saved, emails=form.cleaned_data["emails"], phones=form.cleaned_data["phones"],
            domains=form.cleaned_data.get("domains"),
        )  # fmt: skip
        messages.success(request, _("Saved."))
        return redirect("crm_record", record_kind=kind, record_id=saved.pk)
    context = {
        "kind": kind, "kind_label": KIND_TITLES[kind], "record": record, "form": form,
    }  # fmt: skip
    return render(request, "web/crm/edit.html", context)


@login_required
@require_GET
def record_page(request: HttpRequest, record_kind: str, record_id: int) -> HttpResponse:
    user = current_user(request)
    kind = _kind(record_kind)
    record = crm.access_record(user, kind, record_id, read=True)
    direction = params.choice(request.GET, "direction", choices=("", "in", "out"), default="")
    emails = crm.emails_of(record)
    can_change = crm.can_change(user, record)
    context = {
        "can_change": can_change,
        "kind": kind,
        "kind_label": KIND_TITLES[kind],
        "record": record,
        "emails": emails,
        "duplicates": crm.possible_duplicates(user, record) if can_change else [],
        "domains": crm.domains_of(record) if isinstance(record, Organization) else [],
        "contacts": list(
            crm.records_of(user, Kind.CONTACT, read=True)
            .filter(pk__in=record.contacts.values("pk")).order_by("sort_name")[:100]
        )
        if isinstance(record, Organization)
        else [],
        "timeline": mail_links.record_timeline(user, record, direction=direction),
        "direction": direction,
        "write_url": _write_url(record, emails, link=can_change),
        "link_job": record_backfill.latest_for(user, record) if can_change else None,
    }
    return render(request, "web/crm/record.html", context)


def _write_url(record: Record, emails: list[str], *, link: bool) -> str:
    """Compose to the record's first address, linked to it when the user may
    link (a record read by a grant is not theirs to link mail to)."""
    query = [f"link={record.ref}"] if link else []
    if emails:
        query.append(f"to={emails[0]}")
    return f"{reverse('compose_new')}?{'&'.join(query)}"


@login_required
def record_delete(request: HttpRequest, record_kind: str, record_id: int) -> HttpResponse:
    user = current_user(request)
    kind = _kind(record_kind)
    record = crm.access_record(user, kind, record_id)
    if request.method != "POST":
        context = {"kind": kind, "record": record, "linked": crm.linked_count(record)}
        return render(request, "web/crm/delete.html", context)
    mail_links.do_delete_record(user, record)
    messages.success(request, _("Record deleted."))
    return redirect("crm_list", record_kind=kind)


@login_required
@require_POST
def record_merge(request: HttpRequest, record_kind: str, record_id: int) -> HttpResponse:
    """Fold the record named by `duplicate` ("kind:id") into this one."""
    user = current_user(request)
    kind = _kind(record_kind)
    keep = crm.access_record(user, kind, record_id)
    duplicate = crm.access_ref(user, params.text(request.POST, "duplicate", max_length=60))
    crm.do_merge_records(keep, duplicate)
    messages.success(request, _("Records merged."))
    return redirect("crm_record", record_kind=kind, record_id=keep.pk)


@login_required
@require_GET
def record_search(request: HttpRequest) -> JsonResponse:
    """Autocomplete of records (compose's "Link to", merge): name, kind, ref."""
    user = current_user(request)
    query = params.text(request.GET, "q", max_length=200)
    out = []
    for kind in KIND_TITLES:
        page = crm.search_records(user, kind, query, limit=8)
        for record in page.records:
            email = next(iter(page.emails.get(record.pk, [])), "")
            out.append(
                {"ref": record.ref, "name": record.display_name, "kind": str(KIND_TITLES[kind]),
                 "email": email}
            )  # fmt: skip
    return JsonResponse({"records": out})


# --- the reader's panel -----------------------------------------------------------


def _panel(request: HttpRequest, message_id: int, *, note: str = "") -> HttpResponse:
    user = current_user(request)
    message = access_message(user, message_id)
    query = params.text(request.GET, "q", max_length=200)
    found: list[Record] = []
    if query:
        for kind in KIND_TITLES:
            found += crm.search_records(user, kind, query, limit=5).records
    context = {
        "panel": mail_links.panel_for(user, message), "note": note, "q": query, "found": found,
    }  # fmt: skip
    return render(request, "web/crm/_panel.html", context)


@login_required
@require_GET
def panel(request: HttpRequest, message_id: int) -> HttpResponse:
    return _panel(request, message_id)


@login_required
@require_POST
def panel_link(request: HttpRequest, message_id: int) -> HttpResponse:
    user = current_user(request)
    message = access_message(user, message_id)
    record = crm.access_ref(user, params.text(request.POST, "record", max_length=60))
    conversation = params.flag(request.POST, "conversation")
    mail_links.do_link_message(user, message, record, conversation=conversation)
    return _panel(request, message_id)


@login_required
@require_POST
def panel_unlink(request: HttpRequest, message_id: int) -> HttpResponse:
    """Unlink; when the message is in no mailbox and this is what keeps it, the
    panel asks first (`confirm=1` to go ahead) and the message goes."""
    user = current_user(request)
    message = access_message(user, message_id)
    record = crm.access_ref(user, params.text(request.POST, "record", max_length=60))
    if mail_links.unlink_lets_go(user, message, record) and not params.flag(
        request.POST, "confirm"
    ):
        context = {"panel": mail_links.panel_for(user, message), "confirm_unlink": record}
        return render(request, "web/crm/_panel.html", context)
    if mail_links.do_unlink_message(user, message, record):
        response = HttpResponse(
            '<p class="notice">' + _("Unlinked. The message is no longer kept.") + "</p>"
        )
        response["HX-Redirect"] = reverse("mail_special", args=["imported"])
        return response
    return _panel(request, message_id)


@login_required
@require_POST
def panel_create(request: HttpRequest, message_id: int) -> HttpResponse:
    user = current_user(request)
    message = access_message(user, message_id)
    kind = params.choice(
        request.POST, "kind", choices=("contact", "organization", "lead"), default="contact"
    )
    email = params.text(request.POST, "email", max_length=320)
    try:
        record = mail_links.do_create_from_message(user, message, kind=kind, email=email)
    except PostaError as error:
        if error.status == 404:
            raise
        return _panel(request, message_id, note=str(error))
    return _panel(
        request, message_id, note=_("Created and linked: %(name)s") % {"name": record.display_name}
    )


# --- settings ---------------------------------------------------------------------


@admin_required
def crm_admin(request: HttpRequest) -> HttpResponse:
    form = CrmSettingsForm(request.POST or None, instance=crm.crm_settings())
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("CRM settings saved."))
        return redirect("crm_admin")
    return render(request, "web/crm/admin.html", {"form": form})


@login_required
def crm_prefs(request: HttpRequest) -> HttpResponse:
    form = CrmPrefsForm(request.POST or None, instance=crm.user_prefs(current_user(request)))
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Saved."))
        return redirect("crm_prefs")
    return render(request, "web/crm/prefs.html", {"form": form, "tab": "crm"})


# --- mail brought in from outside -------------------------------------------------


@login_required
@require_POST
def import_mail(request: HttpRequest) -> HttpResponse:
    """.eml files or an .mbox dropped on a record's page or on Imported: stored,
    linked to the record, shown in Imported."""
    user = current_user(request)
    ref = params.text(request.POST, "record", max_length=60)
    if not ref:
        raise PostaError(
            "no_record", _("Choose the record the messages are about."), field="record"
        )
    record = crm.access_ref(user, ref)
    files = [(f.name or "upload.eml", f.read()) for f in uploads.uploaded_files(request, "files")]
    if not files:
        raise PostaError("no_files", _("Choose .eml or .mbox files."), field="files")
    report = do_import_messages(user, files, record=record)
    messages.success(
        request,
        ngettext(
            "%(count)d message imported and linked.",
            "%(count)d messages imported and linked.",
            report.stored + report.known,
        )
        % {"count": report.stored + report.known},
    )
    for error in report.errors[:20]:
        messages.error(request, error)
    back = params.choice(request.POST, "back", choices=("record", "imported"), default="record")
    if back == "imported":
        return redirect("mail_special", name="imported")
    return redirect("crm_record", record_kind=record.KIND, record_id=record.pk)


# --- CSV and vCard import, CSV export ---------------------------------------------


@login_required
@require_GET
def record_export(request: HttpRequest, record_kind: str) -> StreamingHttpResponse:
    user = current_user(request)
    kind = _kind(record_kind)
    buffer = _Echo()
    writer = csv.writer(buffer)
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in importing.export_rows(user, kind)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{kind}s.csv"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def record_import(request: HttpRequest, record_kind: str) -> HttpResponse:
    """Upload a CSV (or a vCard file of contacts); then choose the columns."""
    user = current_user(request)
    kind = _kind(record_kind)
    error = ""
    if request.method == "POST":
        files = uploads.uploaded_files(request, "file")
        if not files:
            error = _("Choose a file.")
        else:
            upload = files[0]
            job = importing.check_start_import(user, kind, upload.name or "", upload.read())
            return redirect("crm_import_job", import_id=job.pk)
    context = {"kind": kind, "kind_label": KIND_TITLES[kind], "error": error}
    return render(request, "web/crm/import.html", context)


@login_required
def import_job(request: HttpRequest, import_id: int) -> HttpResponse:
    """The column mapping with a preview of the first rows; once chosen, the
    progress (driven by `import_step`) and the rows that could not be imported."""
    user = current_user(request)
    job = importing.access_import(user, import_id)
    header, preview = importing.header_and_preview(job)
    fields = importing.FIELDS[job.kind]
    if request.method == "POST" and job.state == job.State.MAPPING:
        mapping: dict[str, int] = {}
        for name in fields:
            value = params.text(request.POST, f"map_{name}", max_length=6)
            if value.isascii() and value.isdigit() and int(value) < len(header):
                mapping[name] = int(value)
        duplicates = params.choice(
            request.POST, "duplicates", choices=("skip", "merge"), default="skip"
        )
        importing.do_set_mapping(job, mapping, duplicates)
        return redirect("crm_import_job", import_id=job.pk)
    context = {
        "job": job, "kind": job.kind, "header": header, "preview": preview,
        "columns": list(enumerate(header)),
        "field_rows": [
            (name, importing.FIELD_LABELS[name], job.mapping.get(name)) for name in fields
        ],
    }  # fmt: skip
    return render(request, "web/crm/import_job.html", context)


@login_required
@require_POST
def import_step(request: HttpRequest, import_id: int) -> HttpResponse:
    """Import the next rows and answer with the progress (htmx polls it)."""
    job = importing.do_import_chunk(importing.access_import(current_user(request), import_id))
    return render(request, "web/crm/_import_progress.html", {"job": job})
