""""Apply to existing mail" ("Scansiona adesso"): the user's filters over one
folder, as a job with progress, cancel and kill-safety.

`do_start_scan` (the web's button) writes a ScanJob and wakes the rules worker;
`run_scan` (the worker) walks the folder's copies in order of id, up to the
highest id when the job started, in batches. Each batch's intents (through
posta.rules.executor, as for new mail) and the job's new cursor and counts
commit in one transaction, under the job's claim (a lease renewed per batch), so
a killed worker's job is taken over when its lease runs out and resumes after
the last committed batch: every message is acted on exactly once. The page
reads `done` of `total`; a cancel is seen before the next batch.

Messages whose body is not downloaded yet are counted as `waiting` and left
alone (rules read the whole message, as the server's Sieve does).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Folder
from posta.core.errors import PostaError, not_found
from posta.core.leases import make_owner
from posta.mail import signals as mail_signals
from posta.mail.models import Location
from posta.rules import executor, filters, signals
from posta.rules.scan_models import ScanJob
from posta.users.models import User

log = logging.getLogger(__name__)

BATCH = 50


def lease() -> timedelta:
    """How long a scan's claim lasts without a new batch (the actions' setting)."""
    return timedelta(seconds=max(float(getattr(settings, "POSTA_ACTION_LEASE_SECONDS", 30)), 1))


def access_scan(user: User, job_id: int) -> ScanJob:
    job = ScanJob.objects.filter(pk=job_id, user=user).select_related("folder").first()
    if job is None:
        raise not_found(_("This scan does not exist, or it is not yours."))
    return job


def latest_scans(user: User, *, limit: int = 5) -> list[ScanJob]:
    return list(
        ScanJob.objects.filter(user=user).select_related("folder__account").order_by("-id")[:limit]
    )


def do_start_scan(user: User, folder_id: int) -> ScanJob:
    folder = Folder.objects.filter(pk=folder_id, account__user=user, selectable=True).first()
    if folder is None:
        raise not_found(_("This folder does not exist, or it is not yours."))
    with transaction.atomic():
        if ScanJob.objects.filter(user=user, folder=folder,
                                  state__in=ScanJob.OPEN_STATES).exists():
            raise PostaError(
                "scan_running", _("This folder is being scanned already."), status=409
            )
        copies = Location.objects.filter(folder=folder, uid__gt=0)
        job = ScanJob.objects.create(
            user=user,
            folder=folder,
            total=copies.count(),
            top=copies.aggregate(m=Max("id"))["m"] or 0,
        )
        mail_signals.notify_after_commit(signals.scan_requested, sender=ScanJob, job_id=job.pk)
    return job


def do_cancel_scan(user: User, job: ScanJob) -> None:
    ScanJob.objects.filter(pk=job.pk, user=user, state__in=ScanJob.OPEN_STATES).update(
        cancel_requested=True
    )


def _claim(job_id: int, owner: str) -> bool:
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return bool(
        ScanJob.objects.filter(free, pk=job_id, state__in=ScanJob.OPEN_STATES).update(
            state=ScanJob.State.RUNNING, claimed_by=owner, lease_until=now + lease()
        )
    )


def run_scan(job_id: int, *, batch: int = BATCH) -> str:
    """Run (or resume) the job; returns its state when this worker stops."""
    owner = make_owner()
    if not _claim(job_id, owner):
        job = ScanJob.objects.filter(pk=job_id).first()
        return job.state if job else "missing"
    job = ScanJob.objects.select_related("folder__account__user").get(pk=job_id)
    account = job.folder.account
    rules = [r.spec for r in filters.resolved_for_account(account) if r.spec is not None]
    prepared = executor.prepare(account, rules)
    try:
        while True:
            state = _one_batch(job_id, owner, prepared, batch)
            if state is not None:
                return state
    except Exception as exc:
        log.exception("scan %s failed", job_id)
        ScanJob.objects.filter(pk=job_id, claimed_by=owner).update(
            state=ScanJob.State.FAILED, error=f"{type(exc).__name__}"[:500],
            finished_at=timezone.now(), claimed_by="", lease_until=None,
        )
        return ScanJob.State.FAILED


def _finish(job_id: int, owner: str, state: str) -> str:
    ScanJob.objects.filter(pk=job_id, claimed_by=owner).update(
        state=state, finished_at=timezone.now(), claimed_by="", lease_until=None
    )
    return state


def _one_batch(job_id: int, owner: str, prepared: executor.Prepared, size: int) -> str | None:
    """One batch in one transaction; the final state when the job is over."""
    with transaction.atomic():
        job = ScanJob.objects.select_for_update().filter(pk=job_id, claimed_by=owner).first()
        if job is None:
            return "lost"  # the lease ran out and another worker took the job
        if job.cancel_requested:
            return _finish(job_id, owner, ScanJob.State.CANCELLED)
        copies = list(
            Location.objects.filter(
                folder_id=job.folder_id, uid__gt=0, id__gt=job.cursor, id__lte=job.top
            )
            .select_related("folder", "message")
            .order_by("id")[:size]
        )
        if not copies:
            return _finish(job_id, owner, ScanJob.State.DONE)
        items: list[executor.Item] = []
        for copy in copies:
            view = executor.view_of(copy.message)
            if view is not None:
                items.append(executor.Item(copy, view))
        waiting = len(copies) - len(items)
        plans = executor.run_batch(prepared, items) if prepared.rules else []
        acted = sum(1 for plan in plans if plan.acts)
        ScanJob.objects.filter(pk=job_id).update(
            cursor=copies[-1].pk,
            done=F("done") + len(copies),
            acted=F("acted") + acted,
            waiting=F("waiting") + waiting,
            lease_until=timezone.now() + lease(),
        )
    return None


def jobs_due() -> list[int]:
    """Open jobs no live worker holds (for the sweep)."""
    now = timezone.now()
    return list(
        ScanJob.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now),
            state__in=ScanJob.OPEN_STATES,
        ).values_list("pk", flat=True)
    )
