""" "Link existing mail": a record's page links the mail already stored whose
addresses match the record, for records made after the mail arrived.

Two ways in, one job (`RecordLinkJob`, run by a worker in chunks of messages):

- the button on a record's page (`check_start_linking`): the user's own mail,
  whatever their auto-linking preference (they asked);
- automatically, when a record is saved with addresses it did not have
  (`do_request_automatic`, the receiver of posta.crm.signals.record_emails_added):
  the record owner's mail, when their auto-linking is on ("to records that already
  exist": the record exists now). A waiting automatic job takes in the records
  saved meanwhile, so a CSV import of thousands of records scans the mail once.

The job walks the user's messages by id up to the last one stored when it started
(what arrives later is new mail, linked by posta.mail.autolink_queue), one chunk
per transaction that also moves its cursor: a killed worker's job resumes at its
cursor once its lease runs out, and links are unique per identity and record, so a
chunk done twice adds nothing twice. The page polls the job's progress.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posta.core.errors import PostaError
from posta.crm import links as crm_links
from posta.crm.models import MODELS, CrmUserPrefs, Link, Record, RecordEmail
from posta.mail import autolink
from posta.mail.autolink_models import RecordLinkJob
from posta.mail.autolink_queue import owner_name
from posta.mail.models import Message
from posta.users.models import User

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
CHUNK = 2000
MAX_RECORDS = 5000  # refs one automatic job takes in; the next ones wait for another
UNFINISHED = (RecordLinkJob.State.PENDING, RecordLinkJob.State.RUNNING)


class _LeaseLost(Exception):
    """Another worker took the job over (this one was too slow to renew)."""


def access_job(user: User, job_id: int) -> RecordLinkJob:
    found = RecordLinkJob.objects.filter(pk=job_id, user=user).first()
    if found is None:
        raise PostaError("not_found", _("This job does not exist."), status=404)
    return found


def latest_for(user: User, record: Record) -> RecordLinkJob | None:
    """The user's newest job that links mail to `record`, if any (the page shows it)."""
    for job in RecordLinkJob.objects.filter(user=user).order_by("-id")[:20]:
        if record.ref in job.records:
            return job
    return None


def check_start_linking(user: User, record: Record) -> RecordLinkJob:
    """Start linking the user's stored mail to `record` (one the user may change:
    the caller fetched it so), or return the job already doing it."""
    if not RecordEmail.objects.filter(kind=record.KIND, record_id=record.pk).exists():
        raise PostaError(
            "no_address", _("This record has no email address to look for."), field="emails"
        )
    running = latest_for(user, record)
    if running is not None and running.state in UNFINISHED:
        return running
    return RecordLinkJob.objects.create(user=user, records=[record.ref])


def do_request_automatic(owner_id: int, ref: str) -> int | None:
    """Take `ref` into the owner's waiting automatic job (made if none waits);
    returns the job's id, or None when the owner's auto-linking is off."""
    prefs = CrmUserPrefs.objects.filter(user_id=owner_id).values_list("auto_link", flat=True)
    if (prefs.first() or CrmUserPrefs.AutoLink.EXISTING) != CrmUserPrefs.AutoLink.EXISTING:
        return None
    with transaction.atomic():
        waiting = (
            RecordLinkJob.objects.select_for_update()
            .filter(user_id=owner_id, automatic=True, state=RecordLinkJob.State.PENDING,
                    claimed_by="")
            .order_by("-id")
            .first()
        )  # fmt: skip
        if waiting is not None and len(waiting.records) < MAX_RECORDS:
            if ref not in waiting.records:
                waiting.records = [*waiting.records, ref]
                waiting.save(update_fields=["records"])
            return waiting.pk
        return RecordLinkJob.objects.create(user_id=owner_id, records=[ref], automatic=True).pk


def _claimable(now: datetime) -> Q:
    return Q(state__in=UNFINISHED) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))


def jobs_due(*, now: datetime | None = None) -> list[int]:
    """Jobs no live worker holds (for the sweep)."""
    now = now or timezone.now()
    return list(RecordLinkJob.objects.filter(_claimable(now)).values_list("pk", flat=True))


def _claim(job_id: int, owner: str) -> RecordLinkJob | None:
    now = timezone.now()
    RecordLinkJob.objects.filter(_claimable(now), pk=job_id).update(
        claimed_by=owner, lease_until=now + LEASE
    )
    return RecordLinkJob.objects.filter(pk=job_id, claimed_by=owner).first()


def _targets(refs: list[str]) -> dict[str, set[tuple[str, int]]]:
    """The records' addresses: address -> the (kind, id) having it."""
    wanted = Q(pk__in=[])
    for ref in refs:
        ref_kind, _sep, ref_id = ref.partition(":")
        if ref_kind in MODELS and ref_id.isdigit():
            wanted |= Q(kind=ref_kind, record_id=int(ref_id))
    out: dict[str, set[tuple[str, int]]] = {}
    for kind, record_id, email in RecordEmail.objects.filter(wanted).values_list(
        "kind", "record_id", "email"
    ):
        out.setdefault(email, set()).add((kind, record_id))
    return out


def run_job(job_id: int) -> str:
    """Run (or resume) a job to its end; returns its state ("" when another worker
    holds it)."""
    owner = owner_name()
    job = _claim(job_id, owner)
    if job is None:
        return ""
    try:
        _run(job, owner)
    except _LeaseLost:
        return ""
    except Exception as exc:  # a worker defends its boundary (STYLE 7)
        log.exception("linking existing mail, job %s, failed", job_id)
        RecordLinkJob.objects.filter(pk=job_id, claimed_by=owner).update(
            state=RecordLinkJob.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:500],
            finished_at=timezone.now(), claimed_by="", lease_until=None,
        )  # fmt: skip
        return RecordLinkJob.State.FAILED
    return RecordLinkJob.State.DONE


def _start(job: RecordLinkJob) -> None:
    if job.state == RecordLinkJob.State.RUNNING:
        return  # resumed after a kill: the bounds are set
    mail = Message.objects.filter(user_id=job.user_id)
    job.until_id = mail.aggregate(m=Max("pk"))["m"] or 0
    job.total = mail.filter(pk__lte=job.until_id).count()
    job.state = RecordLinkJob.State.RUNNING
    # The records are fixed from here on: an automatic job no longer takes any in.
    RecordLinkJob.objects.filter(pk=job.pk).update(
        state=job.state, until_id=job.until_id, total=job.total
    )


def _run(job: RecordLinkJob, owner: str) -> None:
    _start(job)
    user = User.objects.get(pk=job.user_id)
    own = autolink.linker_for(user).own
    targets = _targets(list(job.records))
    while targets:
        rows = list(
            Message.objects.filter(user_id=job.user_id, pk__gt=job.after_id, pk__lte=job.until_id)
            .order_by("pk")
            .values_list("pk", "identity", "from_email", "to", "cc")[:CHUNK]
        )
        if not rows:
            break
        pairs = {
            (kind, record_id, pk_row[1])
            for pk_row in rows
            for address in autolink.addresses_of(pk_row[1:], own) & targets.keys()
            for kind, record_id in targets[address]
        }
        with transaction.atomic():
            if pairs:
                crm_links.do_link_many(sorted(pairs), how=Link.How.AUTO)
            found = len({identity for _kind, _id, identity in pairs})
            job.after_id = rows[-1][0]
            job.done, job.linked = job.done + len(rows), job.linked + found
            if not RecordLinkJob.objects.filter(pk=job.pk, claimed_by=owner).update(
                after_id=job.after_id, done=job.done, linked=job.linked,
                lease_until=timezone.now() + LEASE,
            ):  # fmt: skip
                raise _LeaseLost
    RecordLinkJob.objects.filter(pk=job.pk, claimed_by=owner).update(
        state=RecordLinkJob.State.DONE, done=job.total, finished_at=timezone.now(),
        claimed_by="", lease_until=None,
    )  # fmt: skip
