"""Huey tasks of the out-of-office responder (`posta worker`).

The AutoReply rows are the truth; `send_replies` only wakes a worker sooner than
the minute sweep, which recovers rows a dead worker left, tries every due one
and turns off the periods that have ended.
"""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from posta.rules import autoreply_responder, autoreply_settings

log = logging.getLogger(__name__)


@db_task()  # type: ignore[untyped-decorator]  # huey is untyped
def send_replies() -> None:
    autoreply_responder.respond_due()


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey is untyped
def sweep() -> None:
    try:
        run_pass()
    except Exception:
        log.exception("out-of-office sweep failed; the next one tries again")


def run_pass() -> int:
    """One pass: periods that ended are turned off, then due replies are tried."""
    autoreply_settings.do_expire()
    return autoreply_responder.respond_due()
