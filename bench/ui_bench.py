"""Mail screen benchmark (issue 4): server time of the list pages over a big mailbox.

    .venv/bin/python bench/ui_bench.py [--messages 1000000] [--accounts 10] [--runs 40]
                                       [--backends sqlite,postgres] [--keep]

For each backend, in a child process of its own (settings are read once per
process): a fresh database (SQLite in a temporary data dir; PostgreSQL database
`posta_ui_bench` on $POSTA_BENCH_PG, default postgres://postgres@127.0.0.1:5432),
migrated, then one user with `--accounts` accounts of six folders each and
`--messages` messages generated straight into the database (Thread, Message and
Location rows, newest spread over three years, 3 % flagged, 10 % unread, threads
of one to five messages), then `--runs` timed GETs through Django's test client
(the whole request: middleware, queries, template) of:

- unified_first_page     /mail/u/inbox/                   (message list)
- thread_first_page      /mail/u/inbox/?view=threads      (conversation list)
- deep_page              /mail/u/inbox/?cursor=<row 50 % down the unified inbox>
- flagged_first_page     /mail/s/flagged/
- folder_first_page      /mail/f/<one account's inbox>/
- poll                   /mail/poll/ (the live-update request asked every 5 s)

Prints median and 95th percentile per page and backend, and ends with
`RESULT unified_first_page_p95_ms=<worst p95 over the backends measured>`.
Never part of the test run (pytest's testpaths is tests/).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

PAGES = ["unified_first_page", "thread_first_page", "deep_page", "flagged_first_page",
         "folder_first_page", "poll"]
PG_BASE = os.environ.get("POSTA_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
PG_NAME = "posta_ui_bench"
ROLES = [("INBOX", "inbox"), ("Sent", "sent"), ("Drafts", "drafts"), ("Junk", "spam"),
         ("Trash", "trash"), ("Archive", "archive")]
# Where generated messages land: mostly the inbox, as in a real mailbox.
ROLE_WEIGHTS = [0.70, 0.12, 0.01, 0.03, 0.04, 0.10]
SENDERS = [("Anna Bianchi", "anna@example.it"), ("Mario Rossi", "mario@example.it"),
           ("Zoë Müller", "zoe@example.de"), ("", "noreply@shop.example.com"),
           ("José Álvarez", "jose@example.es"), ("Li Lei", "li.lei@example.cn")]
SUBJECTS = ["Preventivo per il cliente", "Riunione di giovedì", "Quarterly report",
            "Fattura n. 2024/118", "Ordine confermato", "Nuovo lead dal sito"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    return parser.parse_args()


# --- child: one backend -------------------------------------------------------------


def _setup_django(backend: str, work: Path) -> None:
    os.environ["POSTA_DATA_DIR"] = str(work / "data")
    os.environ["DJANGO_SETTINGS_MODULE"] = "posta.settings"
    if backend == "postgres":
        import psycopg

        with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}"')
            conn.execute(f'CREATE DATABASE "{PG_NAME}"')
        os.environ["POSTA_DATABASE_URL"] = f"{PG_BASE}/{PG_NAME}"
    else:
        os.environ.pop("POSTA_DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _generate(messages: int, accounts: int) -> dict[str, Any]:
    """Rows straight into the database with bulk inserts; returns ids for the runs."""
    from django.db import connection, transaction

    from posta.accounts.models import Account, Folder
    from posta.mail.models import Location, Message, Thread
    from posta.users.models import User

    rng = random.Random(4)
    User.objects.create_superuser("root", "root@example.test", "unused-pw-1")
    user = User.objects.create_user(username="bench", password="unused-pw-2")
    folders: list[list[Folder]] = []
    for index in range(accounts):
        account = Account.objects.create(
            user=user, username=f"bench{index}", email=f"bench{index}@example.test",
            description=f"Account {index}", is_main=index == 0, imap_host="imap.example.test",
            sync_state="idle",
        )
        folders.append([
            Folder.objects.create(account=account, name=name, display_name=name,
                                  delimiter="/", role=role)
            for name, role in ROLES
        ])
    now = datetime.now(tz=UTC)
    span = 3 * 365 * 86400
    batch = 20_000
    made = 0
    unread: dict[int, int] = {}
    total: dict[int, int] = {}
    while made < messages:
        count = min(batch, messages - made)
        with transaction.atomic():
            threads = []
            sizes = []
            left = count
            while left > 0:
                size = min(left, rng.choice([1, 1, 1, 2, 3, 5]))
                sizes.append(size)
                left -= size
            for size in sizes:
                threads.append(Thread(user=user, subject=rng.choice(SUBJECTS),
                                      last_date=now, message_count=size))
            Thread.objects.bulk_create(threads, batch_size=5000)  # sets pks (RETURNING)
            rows: list[Message] = []
            for thread, size in zip(threads, sizes, strict=True):
                base = now - timedelta(seconds=rng.randrange(span))
                for part in range(size):
                    name, address = rng.choice(SENDERS)
                    number = made + len(rows)
                    rows.append(Message(
                        user=user, identity=f"{number:064x}", message_id=f"{number}@bench",
                        thread=thread, subject=thread.subject, from_name=name,
                        from_email=address, to=[["Bench", "bench@example.test"]],
                        date=base + timedelta(minutes=part * 37), size=20_000,
                        snippet="Buongiorno, in allegato trova il documento richiesto. "
                                f"Numero {number}.",
                        has_attachments=rng.random() < 0.2, body_state="pending",
                    ))
            Message.objects.bulk_create(rows, batch_size=5000)
            locations = []
            for msg in rows:
                folder = rng.choice(folders)
                target = rng.choices(folder, weights=ROLE_WEIGHTS)[0]
                seen = rng.random() > 0.10
                uid = total.get(target.pk, 0) + 1
                total[target.pk] = uid
                if not seen:
                    unread[target.pk] = unread.get(target.pk, 0) + 1
                locations.append(Location(
                    message=msg, folder=target, uid=uid, seen=seen,
                    flagged=rng.random() < 0.03, user=user, role=target.role, date=msg.date,
                ))
            Location.objects.bulk_create(locations, batch_size=5000)
        made += count
        print(f"  generated {made:,} messages", file=sys.stderr, flush=True)
    for flat in folders:
        for folder in flat:
            Folder.objects.filter(pk=folder.pk).update(
                message_count=total.get(folder.pk, 0), unread_count=unread.get(folder.pk, 0)
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # both backends plan with fresh statistics
    return {"user_id": user.pk, "inbox_id": folders[0][0].pk}


def _deep_cursor(user_id: int) -> str:
    from posta.mail.models import Location
    from posta.mail.queries import encode_cursor

    inbox = Location.objects.filter(user_id=user_id, role="inbox", deleted=False)
    middle = inbox.count() // 2  # once, outside the timed runs
    row = inbox.order_by("-date", "-id").values_list("date", "id")[middle]
    return encode_cursor(row[0], row[1])


def _measure(ids: dict[str, Any], runs: int) -> dict[str, list[float]]:
    from django.test import Client

    from posta.mail.queries import Scope, newest_marker
    from posta.users.models import User

    user = User.objects.get(pk=ids["user_id"])
    client = Client()
    client.force_login(user)
    marker = newest_marker(user, Scope("role", role="inbox"))
    urls = {
        "unified_first_page": "/mail/u/inbox/?view=messages",
        "thread_first_page": "/mail/u/inbox/?view=threads",
        "deep_page": f"/mail/u/inbox/?view=messages&cursor={_deep_cursor(user.pk)}",
        "flagged_first_page": "/mail/s/flagged/?view=messages",
        "folder_first_page": f"/mail/f/{ids['inbox_id']}/?view=messages",
        "poll": f"/mail/poll/?scope=role:inbox&marker={marker}",
    }
    timings: dict[str, list[float]] = {name: [] for name in urls}
    for name, url in urls.items():
        for attempt in range(runs + 3):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (url, response.status_code)
            if attempt >= 3:  # the first few warm caches and connections
                timings[name].append(elapsed)
    return timings


def child(backend: str, args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"posta-ui-bench-{backend}-"))
    try:
        _setup_django(backend, work)
        started = time.perf_counter()
        ids = _generate(args.messages, args.accounts)
        print(f"  {backend}: generated in {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
        timings = _measure(ids, args.runs)
        print("TIMINGS " + json.dumps(timings), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if backend == "postgres":
                from django.db import connections

                connections.close_all()
                import psycopg

                with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}"')


# --- parent: run each backend, print the figures -------------------------------------


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child, args)
        return
    print(f"ui_bench: {args.messages:,} messages over {args.accounts} accounts, "
          f"{args.runs} runs per page")
    worst: float | None = None
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        command = [sys.executable, __file__, "--child", backend,
                   "--messages", str(args.messages), "--accounts", str(args.accounts),
                   "--runs", str(args.runs)] + (["--keep"] if args.keep else [])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        sys.stderr.write(done.stderr[-3000:] if done.returncode else "")
        line = next((x for x in done.stdout.splitlines() if x.startswith("TIMINGS ")), "")
        if not line:
            print(f"{backend}: failed (exit {done.returncode})")
            continue
        timings: dict[str, list[float]] = json.loads(line[len("TIMINGS "):])
        for name in PAGES:
            values = timings[name]
            print(f"{backend:9} {name:20} median {statistics.median(values):7.1f} ms   "
                  f"p95 {p95(values):7.1f} ms")
        value = p95(timings["unified_first_page"])
        worst = value if worst is None else max(worst, value)
    print(f"RESULT unified_first_page_p95_ms={worst:.1f}" if worst is not None
          else "RESULT unified_first_page_p95_ms=nan")


if __name__ == "__main__":
    main()
