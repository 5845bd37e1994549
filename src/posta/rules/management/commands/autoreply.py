"""Out-of-office for administrators: why did (or didn't) someone get a reply?

    posta autoreply check --envelope-from ADDR --recipient ADDR \
        [--address ADDR ...] [--days N] FILE

reads one message file and prints one line, `reply` or `no reply: <reason>`,
from the very decision the responder uses (posta.rules.autoreply_decision).
Without --envelope-from the file's Return-Path field is the envelope sender, as
the mail server wrote it at delivery. The exit status is 0 for `reply`, 1 for
`no reply`, 2 for a file that cannot be read.

    posta autoreply run [--until-done]

sends the replies that are due once (what the worker's minute sweep does).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posta.rules.autoreply_decision import Envelope, Policy, decide, headers_of


def _days(text: str) -> int:
    value = int(text)
    if value < 1:  # RFC 5230 §4.1: the minimum is one day
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Check whether a message would get the out-of-office reply, and why not."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="decide for one message file")
        check.add_argument("--envelope-from", default=None, help="the SMTP MAIL FROM address")
        check.add_argument("--recipient", required=True, help="the address it was delivered to")
        check.add_argument(
            "--address", action="append", default=[], help="a further address of mine"
        )
        check.add_argument("--days", type=_days, default=7, help="days between two replies")
        check.add_argument("file", help="the message, as an .eml file")
        run = sub.add_parser("run", help="send the replies that are due, then stop")
        run.add_argument("--until-done", action="store_true", help="repeat until none is due")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "run":
            self._run(until_done=options["until_done"])
            return
        try:
            raw = Path(options["file"]).read_bytes()
        except OSError as exc:
            message = f"cannot read {options['file']}: {exc.strerror}"
            raise CommandError(message, returncode=2) from exc
        headers = headers_of(raw)
        sender = options["envelope_from"]
        if sender is None:
            paths = [value for name, value in headers if name.lower() == "return-path"]
            sender = paths[0] if paths else ""
        decision = decide(
            headers,
            Envelope(sender=sender, recipient=options["recipient"]),
            Policy(addresses=tuple(options["address"]), days=options["days"]),
        )
        self.stdout.write(decision.line())
        if not decision.reply:
            sys.exit(1)

    def _run(self, *, until_done: bool) -> None:
        # Imported here: `check` must work without the worker side configured.
        from posta.rules.autoreply_tasks import run_pass

        while run_pass() and until_done:
            pass
