"""`posta sync`: run the sync service until SIGINT/SIGTERM (posta.sync.service)."""

from __future__ import annotations

import signal
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand

from posta.core.leases import make_owner
from posta.mailproto.errors import MailError
from posta.sync.account_pass import sync_account_once
from posta.sync.leases import candidate_accounts, release, try_claim
from posta.sync.service import SyncService


class Command(BaseCommand):
    help = "Keep every mail account mirrored (IMAP IDLE, leases shared between processes)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="Sync each claimable account once, then exit.",
        )
        parser.add_argument("--account", type=int, help="With --once: only this account.")
        parser.add_argument("--max-accounts", type=int, default=500)
        parser.add_argument("--tick", type=float, default=5.0)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self._once(options.get("account"))
            return
        service = SyncService(tick=options["tick"], max_accounts=options["max_accounts"])

        def stop(signum: int, frame: FrameType | None) -> None:
            service.stop()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        service.run()

    def _once(self, only: int | None) -> None:
        owner = make_owner()
        ids = [only] if only else candidate_accounts()
        for account_id in ids:
            if not try_claim(account_id, owner):
                self.stderr.write(f"account {account_id} is held by another process")
                continue
            try:
                sync_account_once(account_id)
            except MailError as exc:  # recorded on the account by the account pass
                self.stderr.write(f"account {account_id}: {exc}")
            finally:
                release(owner, [account_id])
