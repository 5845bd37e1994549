"""Filters benchmark (issue 12).

    .venv/bin/python bench/filters_bench.py [--messages 10000] [--rules 50] [--latency-runs 10]

Three figures, each beside a reference measured in the same run:

1. matcher: `posta.mailproto.filtering.match.plan` of `--rules` rules over
   `--messages` generated messages (messages per second), next to merely
   parsing the same messages with `email.message_from_bytes` (policy default);
2. executor: the arrival pipeline's filter step over `--messages` new inbox
   messages with `--rules` rules (a SQLite database in a temporary data
   directory; every message read from the blob store, matched, and its intents
   written), messages per second, next to the same pipeline with no rules;
3. latency: the test Dovecot; a message delivered through LMTP that a rule
   moves, timed from delivery until the server shows it in its folder. On the
   server (Sieve at delivery) and through Posta (sync pass, pipeline, action
   worker, as `posta run` does them in sequence), next to the same message
   without rules (delivery until Posta has it stored in the inbox).

Never part of the test run (pytest's testpaths is tests/).
"""

from __future__ import annotations

import argparse
import email
import os
import random
import statistics
import sys
import tempfile
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

SENDERS = ["Anna Bianchi <anna@example.it>", "Mario Rossi <mario@acme.it>",
           "=?utf-8?q?Jos=C3=A9_=C3=81lvarez?= <jose@example.es>", "noreply@shop.example.com"]
SUBJECTS = ["Preventivo per il cliente", "Riunione di giovedì", "Quarterly report",
            "Fattura n. 2024/118", "Ordine confermato", "Nuovo lead dal sito"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--latency-runs", type=int, default=10)
    return parser.parse_args()


def make_messages(count: int) -> list[bytes]:
    rng = random.Random(12)
    out = []
    for i in range(count):
        msg = EmailMessage()
        msg["From"] = rng.choice(SENDERS)
        msg["To"] = "Vendite <vendite@example.it>"
        msg["Subject"] = f"{rng.choice(SUBJECTS)} {i}"
        msg["Message-ID"] = f"<bench-{i}@example.test>"
        msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
        if i % 7 == 0:
            msg["List-Id"] = "Sviluppo <dev.lists.example.it>"
        msg.set_content(f"Buongiorno,\nmessaggio numero {i}.\n" + "testo " * rng.randint(20, 400))
        if i % 11 == 0:
            msg.add_attachment(b"%PDF-1.4 " * 50, maintype="application", subtype="pdf",
                               filename="doc.pdf")
        out.append(msg.as_bytes())
    return out


def rule_rows(count: int) -> list[dict[str, Any]]:
    """`count` rules of every shape; few match (as in real mailboxes)."""
    shapes = [
        ([{"field": "from", "op": "contains", "value": "@acme.it"}], [{"kind": "flag"}]),
        ([{"field": "subject", "op": "begins", "value": "Fattura"}], [{"kind": "seen"}]),
        ([{"field": "header", "header": "List-Id", "op": "contains",
           "value": "dev.lists.example.it"}], [{"kind": "seen"}]),
        ([{"field": "body", "op": "contains", "value": "parola che non c'è {n}"}],
         [{"kind": "flag"}]),
        ([{"field": "to_or_cc", "op": "is", "value": "nessuno{n}@example.it"}],
         [{"kind": "flag"}]),
        ([{"field": "subject", "op": "matches", "value": "*urgente {n}*"}], [{"kind": "flag"}]),
        ([{"field": "size", "op": "over", "size": 10_000_000}], [{"kind": "seen"}]),
        ([{"field": "from", "op": "is", "value": "capo{n}@example.it"},
          {"field": "attachment", "op": "yes"}], [{"kind": "flag"}]),
    ]
    rows = []
    for n in range(count):
        conditions, actions = shapes[n % len(shapes)]
        rows.append({
            "conditions": [{k: (v.format(n=n) if isinstance(v, str) else v) for k, v in c.items()}
                           for c in conditions],
            "actions": actions,
        })
    return rows


def bench_matcher(raws: list[bytes], rules: list[dict[str, Any]]) -> None:
    from posta.mailproto.filtering import match, spec

    specs = [
        spec.FilterRule(
            conditions=tuple(spec.Condition(
                field=c["field"], op=c["op"], value=c.get("value", ""),
                header=c.get("header", ""), size=int(c.get("size", 0))) for c in r["conditions"]),
            actions=tuple(spec.Action(a["kind"]) for a in r["actions"]),
        )
        for r in rules
    ]
    started = time.perf_counter()
    for raw in raws:
        email.message_from_bytes(raw, policy=policy.default)
    reference = time.perf_counter() - started
    started = time.perf_counter()
    acted = 0
    for raw in raws:
        if match.plan(specs, match.MailView(raw, size=len(raw))).acts:
            acted += 1
    measured = time.perf_counter() - started
    n = len(raws)
    print(f"matcher: {n / measured:,.0f} messages/s with {len(rules)} rules "
          f"({acted} acted on); reference, email.message_from_bytes alone: "
          f"{n / reference:,.0f} messages/s")


def _setup_django(work: Path) -> None:
    os.environ["POSTA_DATA_DIR"] = str(work / "data")
    os.environ["DJANGO_SETTINGS_MODULE"] = "posta.settings"
    os.environ.pop("POSTA_DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_executor(raws: list[bytes], rules: list[dict[str, Any]]) -> None:
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from posta.accounts.models import Account, Folder
    from posta.mail import blobs
    from posta.mail.models import Location, Message
    from posta.rules import arrivals, filter_step
    from posta.rules.filter_models import FilterRule
    from posta.rules.models import Arrival
    from posta.users.models import User

    user = User.objects.create_user(username="bench", password="unused-pw-2")
    account = Account.objects.create(user=user, username="bench", email="bench@example.test",
                                     description="bench", is_main=True,
                                     imap_host="imap.example.test")
    inbox = Folder.objects.create(account=account, name="INBOX", display_name="INBOX",
                                  delimiter="/", role="inbox", uidvalidity=1,
                                  synced_at=timezone.now())
    for step in arrivals.registered_steps():  # only the step measured here
        arrivals.unregister_step(step.name)
    arrivals.register_step(filter_step.NAME, filter_step.ORDER, filter_step.filter_arrivals)
    now = timezone.now()

    def load(offset: int) -> None:
        with transaction.atomic():
            messages = Message.objects.bulk_create([
                Message(user=user, identity=f"{offset}-{i}", subject=f"m{i}", date=now,
                        size=len(raw), blob_key=blobs.put(raw), body_state="stored")
                for i, raw in enumerate(raws)
            ])
            Location.objects.bulk_create([
                Location(message=m, folder=inbox, uid=offset + i + 1, user=user, role="inbox",
                         date=now)
                for i, m in enumerate(messages)
            ])
            Arrival.objects.bulk_create([
                Arrival(user=user, message=m, folder=inbox, source="idle") for m in messages
            ])
            Folder.objects.filter(pk=inbox.pk).update(
                message_count=F("message_count") + len(messages),
                unread_count=F("unread_count") + len(messages),
            )

    def run() -> float:
        started = time.perf_counter()
        arrivals.process_pending(user.pk)
        return time.perf_counter() - started

    load(0)
    reference = run()  # no rules yet
    for position, row in enumerate(rules):
        FilterRule.objects.create(user=user, account=account, position=position,
                                  name=f"rule {position}", conditions=row["conditions"],
                                  actions=row["actions"])
    load(len(raws))
    measured = run()
    n = len(raws)
    acted = account.mail_actions.count()
    print(f"executor: {n / measured:,.0f} messages/s through the arrival pipeline with "
          f"{len(rules)} rules ({acted} intents written); reference, the same pipeline "
          f"without rules: {n / reference:,.0f} messages/s")


def bench_latency(runs: int) -> None:
    from django.conf import settings

    from posta.accounts.models import Account
    from posta.core.crypto import seal
    from posta.rules import arrivals, filter_step, filters, sieve_upload
    from posta.rules.filter_models import FilterServer
    from posta.sync import actions
    from posta.sync.account_pass import sync_account_once
    from posta.users.models import User
    from tests.servers.dovecot import start_dovecot

    arrivals.register_step(filter_step.NAME, filter_step.ORDER, filter_step.filter_arrivals)
    server = start_dovecot()
    settings.POSTA_ALLOWED_MAIL_HOSTS = [server.host]
    try:
        results: dict[str, list[float]] = {"sieve": [], "posta": [], "no rules": []}
        users = {}
        for mode in results:
            mail_user = server.add_user()
            server.create_folder(mail_user, "Clienti")
            user = User.objects.create_user(username=mail_user.name, password="unused-pw-3")
            account = Account.objects.create(
                user=user, username=mail_user.name, email=mail_user.address,
                password_secret=seal(mail_user.password), description=mode,
                is_main=True, imap_host=server.host, imap_port=server.imap_port,
                imap_security="none",
            )
            FilterServer.objects.create(account=account, port=server.managesieve_port,
                                        use_server=mode == "sieve")
            sync_account_once(account.pk)
            if mode != "no rules":
                from posta.accounts.models import Folder

                target = Folder.objects.get(account=account, name="Clienti")
                filters.check_save_rule(user, None, filters.RuleData(
                    name="acme", account_id=account.pk,
                    conditions=[{"field": "from", "op": "contains", "value": "@acme.it"}],
                    actions=[{"kind": "move", "folder": str(target.pk)}],
                ))
            sieve_upload.do_sync_server(account.pk)
            users[mode] = (mail_user, account)
        for run in range(runs):
            for mode, (mail_user, account) in users.items():
                data = make_messages(1)[0].replace(b"bench-0@", f"lat-{mode}-{run}@".encode())
                data = data.replace(b"From: ", b"From: Acme <x@acme.it>\nX-Old-From: ", 1)
                started = time.perf_counter()
                server.deliver(mail_user, data)
                if mode == "sieve":
                    while "Clienti" not in _where(server, mail_user, f"lat-{mode}-{run}@"):
                        time.sleep(0.002)
                elif mode == "posta":
                    sync_account_once(account.pk)
                    arrivals.process_pending(account.user_id)
                    actions.run_account_actions(account.pk)
                    assert "Clienti" in _where(server, mail_user, f"lat-{mode}-{run}@")
                else:
                    sync_account_once(account.pk)
                results[mode].append(time.perf_counter() - started)
        for mode, values in results.items():
            print(f"latency {mode}: median {statistics.median(values) * 1000:.0f} ms, "
                  f"max {max(values) * 1000:.0f} ms over {len(values)} messages")
        extra = statistics.median(results["posta"]) - statistics.median(results["no rules"])
        print(f"latency: a filtered message through Posta lands {extra * 1000:.0f} ms after "
              "the same message without rules is stored; on the server (Sieve) it is in its "
              f"folder {statistics.median(results['sieve']) * 1000:.0f} ms after delivery")
    finally:
        server.stop()


def _where(server: Any, user: Any, marker: str) -> set[str]:
    client = server.imap(user)
    found = set()
    try:
        for name in ("INBOX", "Clienti"):
            client.select(name, readonly=True)
            typ, data = client.search(None, "HEADER", "Message-ID", marker)
            if data and data[0]:
                found.add(name)
    finally:
        client.logout()
    return found


def main() -> None:
    args = parse_args()
    raws = make_messages(args.messages)
    rules = rule_rows(args.rules)
    bench_matcher(raws, rules)
    with tempfile.TemporaryDirectory(prefix="posta-filters-bench-") as work:
        _setup_django(Path(work))
        bench_executor(raws, rules)
        bench_latency(args.latency_runs)


if __name__ == "__main__":
    main()
