"""`posta delivery_worker`: the delivery loop without Huey.

For operators who want a dedicated sender process, and for tests that run several
workers side by side. Each pass settles stalled rows, sends what is due, runs
pending follow-ups and brings the server copies of drafts up to date; the claims
in posta.delivery.sending keep concurrent workers from sending a message twice.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from posta.delivery import drafts, followups, sending


class Command(BaseCommand):
    help = "Send due outgoing mail in a loop (or once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument(
            "--seconds", type=float, default=0.0, help="stop after this long (0: never)"
        )
        parser.add_argument("--interval", type=float, default=1.0, help="pause between passes")
        parser.add_argument(
            "--stale-after",
            type=float,
            default=sending.SENDING_LEASE.total_seconds(),
            help="seconds after which a row left 'sending' is recovered",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stale_after = timedelta(seconds=options["stale_after"])
        deadline = time.monotonic() + options["seconds"] if options["seconds"] else None
        while True:
            sending.recover_stalled(stale_after=stale_after)
            sending.deliver_due()
            for outgoing_id in followups.follow_ups_due():
                followups.run_follow_ups(outgoing_id)
            drafts.store_due()
            if options["once"] or (deadline is not None and time.monotonic() >= deadline):
                return
            time.sleep(options["interval"])
