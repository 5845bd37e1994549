""" "Link existing mail" on a record's page: start the job, show its progress
(posta.mail.record_backfill; htmx polls the partial while the worker runs)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from posta.core.errors import PostaError
from posta.crm import services as crm
from posta.mail import record_backfill, tasks
from posta.web.utils import current_user


@login_required
@require_http_methods(["GET", "POST"])
def link_existing(request: HttpRequest, record_kind: str, record_id: int) -> HttpResponse:
    """GET: the progress of the user's newest job for the record; POST: start one."""
    user = current_user(request)
    crm.model_for(record_kind)  # 404 for anything else
    # Linking needs the record itself, not a grant to read it.
    record = crm.access_record(user, record_kind, record_id)
    error = ""
    if request.method == "POST":
        try:
            job = record_backfill.check_start_linking(user, record)
        except PostaError as exc:
            error = str(exc.message)
        else:
            job_id = job.pk
            transaction.on_commit(lambda: tasks.start_linking_existing(job_id))
        if not request.headers.get("HX-Request") and not error:
            return redirect("crm_record", record_kind, record.pk)
    context = {
        "record": record,
        "kind": record_kind,
        "link_job": record_backfill.latest_for(user, record),
        "link_error": error,
    }
    return render(request, "web/crm/_link_existing.html", context, status=400 if error else 200)
