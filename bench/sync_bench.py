"""Sync benchmark: Posta's IMAP fast path against references, in one run.

    .venv/bin/python bench/sync_bench.py [--messages N] [--keep]

Creates a private Dovecot (tests/servers/dovecot.py) with one INBOX of N generated
messages (threads, multipart/alternative, attachments, non-ASCII and 8-bit headers),
written straight into the Maildir and indexed by doveadm, then measures side by side:

- reference: a bare imaplib `UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE
  BODY.PEEK[HEADER.FIELDS (...)])`, results discarded;
- IMAPClient's own parse of the same FETCH (the library path Posta replaces);
- fastfetch.fetch_headers alone, and with parse_envelope of every header block;
- Posta's first sync into the database, when posta.sync.account_pass provides it, and
  its no-change passes with QRESYNC and without CONDSTORE;
- the full mirror with bodies: fastfetch.fetch_bodies into content-addressed files,
  and Posta's own (bodies.fetch_pending_bodies: blob store, snippets, rows), against
  mbsync (FSync no, and FSync yes, its default) mirroring the same mailbox to a
  Maildir;
- a no-change resync at the protocol level: CONDSTORE CHANGEDSINCE and a full
  UID + FLAGS comparison;
- IDLE delivery latency: LMTP delivery → IDLE notice → headers fetched and parsed,
  and LMTP delivery → Message row stored by the sync service, 95th percentile over
  50 deliveries;
- peak RSS of each measured phase (each runs in a forked child).

Ends with `RESULT sync_ratio=<posta msgs/s ÷ reference msgs/s>`. Never part of the
test run (pytest's testpaths is tests/).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import imaplib
import importlib.util
import os
import pickle
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from posta.mailproto.imap import fastfetch  # noqa: E402
from posta.mailproto.mime.headers import parse_envelope  # noqa: E402
from tests.servers.dovecot import DovecotServer, MailUser, start_dovecot  # noqa: E402

FIELDS = " ".join(fastfetch.SYNC_HEADER_FIELDS)
REFERENCE_ITEMS = f"(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({FIELDS})])"


# --- mailbox generation ------------------------------------------------------------

NAMES = [
    ("Anna Bianchi", "anna.bianchi@example.it"),
    ("Mario Rossi", "mario.rossi@example.it"),
    ("José Álvarez", "jose@example.es"),
    ("Zoë Müller", "zoe.mueller@example.de"),
    ("Łukasz Wiśniewski", "lukasz@example.pl"),
    ("Rossi, Giulia", "giulia@example.it"),
    ("李雷", "li.lei@example.cn"),
    ("", "noreply@shop.example.com"),
]
SUBJECTS = [
    "Preventivo per il cliente",
    "Riunione di giovedì",
    "Fattura n. 2024/118 — scadenza",
    "Quarterly report",
    "Café meeting: ordine del giorno",
    "Offerta speciale ✨ solo oggi",
    "Re: contratto firmato",
    "Aggiornamento progetto «Posta»",
]
WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua perché città però già più"
).split()


def _encoded(text: str, rng: random.Random) -> str:
    if text.isascii():
        return text
    choice = rng.random()
    if choice < 0.45:
        return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="
    if choice < 0.9:
        quoted = "".join(
            c if c.isascii() and c.isalnum() else "".join(f"={b:02X}" for b in c.encode())
            for c in text.replace(" ", "_")
        ).replace("=5F", "_")
        return "=?utf-8?q?" + quoted + "?="
    return text  # raw 8-bit UTF-8 header (RFC 6532 style, or a careless mailer)


def _address(name: str, addr: str, rng: random.Random) -> str:
    if not name:
        return addr
    if "," in name:
        return f'"{name}" <{addr}>'
    return f"{_encoded(name, rng)} <{addr}>"


def generate_message(index: int, rng: random.Random, attachment: bytes) -> tuple[bytes, str]:
    """One message and its Maildir flag letters."""
    thread, position = divmod(index, 5)
    sender = NAMES[rng.randrange(len(NAMES))]
    recipient = NAMES[(index + 3) % len(NAMES)]
    subject = SUBJECTS[thread % len(SUBJECTS)]
    if position:
        subject = "Re: " + subject
    when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=index)
    ids = [f"<t{thread}.{p}@bench.posta.test>" for p in range(position + 1)]
    headers = [
        f"Return-Path: <{sender[1]}>",
        "Received: from mx.example.it (mx.example.it [192.0.2.1]) by bench.posta.test"
        f" with ESMTPS id {index:08x}; {format_datetime(when)}",
        f"From: {_address(*sender, rng)}",
        f"To: {_address(*recipient, rng)}",
    ]
    if index % 3 == 0:
        headers.append(f"Cc: {_address(*NAMES[(index + 5) % len(NAMES)], rng)}, team@example.it")
    headers += [
        f"Subject: {_encoded(subject, rng)}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: {ids[-1]}",
    ]
    if position:
        headers.append(f"In-Reply-To: {ids[-2]}")
        headers.append("References: " + "\r\n ".join(ids[:-1]))
    headers.append("MIME-Version: 1.0")
    text = "\r\n".join(
        " ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(rng.randrange(8, 60))
    )
    kind = index % 10
    if kind == 0:  # with an attachment
        boundary = f"b{index}"
        body = (
            f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n"
            f"--{boundary}\r\nContent-Type: application/pdf; name=\"fattura {index}.pdf\"\r\n"
            "Content-Disposition: attachment; filename*=utf-8''fattura%20n%C2%B0"
            f"{index}.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode() + attachment + f"\r\n--{boundary}--\r\n".encode()
    elif kind < 5:  # multipart/alternative
        boundary = f"a{index}"
        html = "<html><body><p>" + text.replace("\r\n", "</p><p>") + "</p></body></html>"
        body = (
            f"Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n"
            f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n--{boundary}--\r\n"
        ).encode()
    else:
        body = (
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit"
            f"\r\n\r\n{text}\r\n"
        ).encode()
    raw = "\r\n".join(headers).encode() + b"\r\n" + body
    flags = ""
    if index % 7 == 0:
        flags += "F"
    if index % 4 == 0:
        flags += "R"
    if index % 3 != 0:
        flags += "S"
    return raw, flags


def fill_maildir(server: DovecotServer, user: MailUser, count: int) -> float:
    """Write `count` messages into the user's INBOX Maildir, let Dovecot index them;
    return the total bytes written."""
    maildir = server.home_root / user.name / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    attachment = base64.encodebytes(rng.randbytes(15000)).replace(b"\n", b"\r\n")
    total = 0
    stamp = int(time.time())
    cur = maildir / "cur"
    for index in range(count):
        raw, flags = generate_message(index, rng, attachment)
        name = f"{stamp}.M{index}P{os.getpid()}.bench,S={len(raw)}:2,{''.join(sorted(flags))}"
        with open(cur / name, "wb") as handle:
            handle.write(raw)
        total += len(raw)
    subprocess.run(["chown", "-R", f"{server.uid}:{server.gid}", str(maildir)], check=True)
    server.doveadm("force-resync", "-u", user.name, "INBOX")
    server.doveadm("index", "-u", user.name, "INBOX")
    return total


# --- measuring helpers -----------------------------------------------------------


def isolated(function: Callable[..., Any], *args: Any) -> Any:
    """Run function(*args) in a forked child; return its result with the child's
    peak RSS in MB under the "rss_mb" key. Each phase thus measures its own peak."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        try:
            result = function(*args)
            result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            payload = pickle.dumps(("ok", result))
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    status, result = pickle.loads(data)  # noqa: S301 - our own child's output
    if status != "ok":
        raise RuntimeError(result)
    return result


def imaplib_session(server: DovecotServer, user: MailUser) -> imaplib.IMAP4:
    imap = imaplib.IMAP4(server.host, server.imap_port, timeout=120)
    imap.login(user.name, user.password)
    imap.select("INBOX")
    return imap


def posta_client(server: DovecotServer, user: MailUser) -> Any:
    from posta.mailproto.imap.client import ImapSettings, connect

    client = connect(
        ImapSettings(
            host=server.host,
            port=server.imap_port,
            security="none",
            username=user.name,
            password=user.password,
            timeout=120,
        )
    )
    client.select_folder("INBOX")
    return client


def phase_reference(server: DovecotServer, user: MailUser) -> dict[str, Any]:
    imap = imaplib_session(server, user)
    started = time.perf_counter()
    typ, data = imap.uid("FETCH", "1:*", REFERENCE_ITEMS)
    elapsed = time.perf_counter() - started
    assert typ == "OK"
    count = sum(1 for item in data if isinstance(item, tuple))
    imap.logout()
    return {"seconds": elapsed, "count": count}


def phase_imapclient(server: DovecotServer, user: MailUser, count: int) -> dict[str, Any]:
    client = posta_client(server, user)
    items = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", f"BODY.PEEK[HEADER.FIELDS ({FIELDS})]"]
    from imapclient.response_parser import parse_fetch_response

    started = time.perf_counter()
    # IMAPClient.fetch() cannot take a range (it converts its argument to ints at
    # the end, shared/NOTES.md), so this runs its own steps: command, response
    # collection, and its FETCH parser.
    imap = client._imap
    tag = imap._command("UID", "FETCH", b"1:*", "(" + " ".join(items) + ")")
    typ, data = imap._command_complete("FETCH", tag)
    typ, data = imap._untagged_response(typ, data, "FETCH")
    result = parse_fetch_response(data, client.normalise_times, True)
    elapsed = time.perf_counter() - started
    client.logout()
    return {"seconds": elapsed, "count": len(result)}


def phase_fastfetch(server: DovecotServer, user: MailUser) -> dict[str, Any]:
    client = posta_client(server, user)
    started = time.perf_counter()
    records = fastfetch.fetch_headers(client, "1:*", modseq=True)
    fetched = time.perf_counter()
    envelopes = [parse_envelope(record.header) for record in records]
    parsed = time.perf_counter()
    client.logout()
    assert len(envelopes) == len(records)
    return {
        "fetch_seconds": fetched - started,
        "parse_seconds": parsed - fetched,
        "seconds": parsed - started,
        "count": len(records),
        "no_subject": sum(1 for e in envelopes if not e.subject),
    }


def _django(server: DovecotServer, work: str) -> None:
    """Set Django up in this (forked child) process on the bench's SQLite file."""
    os.environ["POSTA_DATA_DIR"] = str(Path(work) / "posta-data")
    os.environ["POSTA_ALLOWED_MAIL_HOSTS"] = server.host
    os.environ.pop("POSTA_DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "posta.settings"
    import django

    django.setup()


def phase_posta_sync(server: DovecotServer, user: MailUser, work: str) -> dict[str, Any]:
    """Posta's first sync of the mailbox into a fresh SQLite database, then
    no-change passes, through posta.sync.account_pass (runs in a forked child, so Django
    is set up here and nowhere else)."""
    if importlib.util.find_spec("posta.sync.account_pass") is None:
        return {"missing": "posta.sync.account_pass does not exist yet"}
    _django(server, work)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from posta.accounts.models import Account
    from posta.core.crypto import seal
    from posta.mail.models import Location
    from posta.mailproto.imap.session import Session
    from posta.remote import connect
    from posta.sync import account_pass

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user(username="bench", password="unused-pw-123")
    account = Account.objects.create(
        user=owner,
        username=user.name,
        email=user.address,
        password_secret=seal(user.password),
        description="bench",
        is_main=True,
        imap_host=server.host,
        imap_port=server.imap_port,
        imap_security="none",
    )
    client = connect.open_account(account)
    started = time.perf_counter()
    account_pass.sync_account(client, account, bodies=False)
    elapsed = time.perf_counter() - started
    count = Location.objects.count()
    client.logout()

    def nochange(modseq: bool) -> tuple[float, float]:
        """Best of three: (wall seconds, Posta's own CPU seconds). The difference
        is time spent waiting for the server (a STATUS of a 100,000-message
        Maildir costs Dovecot tens of milliseconds)."""
        runs = []
        for _ in range(3):
            # A fresh connection each time, login not timed.
            client = connect.open_account(account)
            session = Session.start(client, modseq=modseq)
            again, cpu = time.perf_counter(), time.process_time()
            account_pass.sync_account(client, account, bodies=False, session=session)
            runs.append((time.perf_counter() - again, time.process_time() - cpu))
            client.logout()
        return min(runs)

    with_modseq = nochange(True)
    without = nochange(False)
    return {
        "seconds": elapsed,
        "count": count,
        "nochange_seconds": with_modseq[0],
        "nochange_cpu": with_modseq[1],
        "nochange_plain_seconds": without[0],
        "nochange_plain_cpu": without[1],
        "qresync": Session.start(connect.open_account(account)).qresync,
    }


def phase_store_floor(server: DovecotServer, work: str) -> dict[str, Any]:
    """The database's share alone: the rows Posta's first sync stored (threads,
    messages, copies) inserted again into an empty database of the same schema
    with plain executemany, 5,000 rows a statement and one transaction per batch as
    the sync does, on a connection set up as Posta's are, with no fetching, parsing
    or threading. A first sync that stores the same rows into the same indexes
    cannot do much better (multi-row INSERTs measured within a few per cent), so
    this bounds the ratio Posta can reach on this database."""
    import sqlite3

    _django(server, work)
    from django.conf import settings

    source = Path(work) / "posta-data" / "posta.sqlite3"
    target = Path(work) / "floor.sqlite3"
    # The backup API copies what is still in the source's write-ahead log too.
    db = sqlite3.connect(target, isolation_level=None)
    with contextlib.closing(sqlite3.connect(source)) as original:
        original.backup(db)
    for pragma in settings.DATABASES["default"]["OPTIONS"]["init_command"].split(";"):
        if pragma.strip():
            db.execute(pragma)
    tables = ("mail_thread", "mail_message", "mail_location")
    content = {}
    for table in tables:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        content[table] = (columns, db.execute(f"SELECT * FROM {table}").fetchall())
    for table in reversed(tables):
        db.execute(f"DELETE FROM {table}")
    db.execute("VACUUM")
    started = time.perf_counter()
    for table in tables:
        columns, rows = content[table]
        names = ", ".join(f'"{c}"' for c in columns)  # "to", "references" are keywords
        sql = (f"INSERT INTO {table} ({names}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        for first in range(0, len(rows), 5000):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, rows[first : first + 5000])
            db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    count = len(content["mail_location"][1])
    db.close()
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    return {"seconds": elapsed, "count": count}


def phase_posta_bodies(server: DovecotServer, user: MailUser, work: str) -> dict[str, Any]:
    """Posta's mirror of every body into its blob store (snippets, attachment
    marks, rows updated), on the database phase_posta_sync filled, in steps of
    bodies.BODY_BATCH as the sync service takes them (it looks at INBOX between
    two steps)."""
    _django(server, work)
    from posta.accounts.models import Account
    from posta.mail.models import Message
    from posta.mailproto.imap.session import Session
    from posta.remote import connect
    from posta.sync import bodies

    account = Account.objects.get()
    client = connect.open_account(account)
    session = Session.start(client)
    started = time.perf_counter()
    stored = steps = 0
    while bodies.bodies_pending(account):
        stored += bodies.fetch_pending_bodies(session, account)
        steps += 1
    elapsed = time.perf_counter() - started
    client.logout()
    pending = Message.objects.exclude(body_state=Message.BodyState.STORED).count()
    return {"seconds": elapsed, "count": stored, "pending": pending, "steps": steps}


def phase_posta_idle(
    server: DovecotServer, user: MailUser, work: str, deliveries: int
) -> dict[str, Any]:
    """LMTP delivery → Message row in the database, through the sync service's
    IDLE (posta.sync.service.SyncService, as `posta sync` runs it)."""
    _django(server, work)
    from django.db import connection

    from posta.accounts.models import Account
    from posta.mail.models import Message
    from posta.sync.service import SyncService, Timing

    account = Account.objects.get()
    # Wait for the service's own first pass (it logs in, passes over every folder
    # and fetches pending bodies) before delivering: its end sets last_success_at.
    Account.objects.filter(pk=account.pk).update(last_success_at=None)
    service = SyncService(tick=0.5, timing=Timing())
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        account.refresh_from_db()
        if account.sync_state == Account.SyncState.IDLE and account.last_success_at:
            break
        time.sleep(0.2)
    time.sleep(2.0)  # the worker is in IDLE now
    rng = random.Random(13)
    latencies = []
    for index in range(deliveries):
        raw, _flags = generate_message(20_000_000 + index, rng, b"")
        thread, position = divmod(20_000_000 + index, 5)
        message_id = f"t{thread}.{position}@bench.posta.test"
        sent = time.perf_counter()
        server.deliver(user, raw)
        while not Message.objects.filter(message_id=message_id).exists():
            if time.perf_counter() - sent > 30:
                break
            time.sleep(0.002)
        latencies.append(time.perf_counter() - sent)
        time.sleep(rng.uniform(0.05, 0.3))
    service.stop()
    runner.join(timeout=60)
    connection.close()
    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    return {"p95": p95, "median": statistics.median(latencies), "count": len(latencies)}


def phase_bodies(server: DovecotServer, user: MailUser, target: str) -> dict[str, Any]:
    client = posta_client(server, user)
    started = time.perf_counter()
    uids = fastfetch.fetch_uids(client)
    uids.reverse()  # newest first, as the sync does
    blobs = Path(target)
    blobs.mkdir(parents=True, exist_ok=True)
    written = 0
    for _uid, raw in fastfetch.fetch_bodies(client, uids):
        digest = hashlib.sha256(raw).hexdigest()
        folder = blobs / digest[:2]
        folder.mkdir(exist_ok=True)
        (folder / digest).write_bytes(raw)
        written += len(raw)
    elapsed = time.perf_counter() - started
    client.logout()
    return {"seconds": elapsed, "count": len(uids), "bytes": written}


def phase_resync(server: DovecotServer, user: MailUser) -> dict[str, Any]:
    client = posta_client(server, user)
    status = client.folder_status("INBOX", ["HIGHESTMODSEQ", "UIDNEXT", "MESSAGES"])
    highest = int(status[b"HIGHESTMODSEQ"])
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        changed = fastfetch.fetch_flags(client, "1:*", changed_since=highest)
        runs.append(time.perf_counter() - started)
        assert not changed
    full = []
    for _ in range(3):
        started = time.perf_counter()
        uids = fastfetch.fetch_uids(client)
        flags = fastfetch.fetch_flags(client, "1:*")
        known = {uid: fl for uid, fl, _ in flags}
        assert len(known) == len(uids)
        full.append(time.perf_counter() - started)
    client.logout()
    return {"condstore_seconds": min(runs), "full_seconds": min(full)}


def phase_idle(server: DovecotServer, user: MailUser, deliveries: int) -> dict[str, Any]:
    client = posta_client(server, user)
    latencies: list[float] = []
    sent_at: list[float] = []
    rng = random.Random(11)
    attachment = b""

    def deliver_all() -> None:
        for index in range(deliveries):
            time.sleep(0.05)
            raw, _flags = generate_message(10_000_000 + index, rng, attachment)
            sent_at.append(time.perf_counter())
            server.deliver(user, raw)

    last_uid = max(fastfetch.fetch_uids(client) or [0])
    sender = threading.Thread(target=deliver_all)
    client.idle()
    sender.start()
    received = 0
    deadline = time.monotonic() + 60 + deliveries
    while received < deliveries and time.monotonic() < deadline:
        responses = client.idle_check(timeout=5)
        if not any(r[1] == b"EXISTS" for r in responses if len(r) > 1):
            continue
        client.idle_done()
        records = fastfetch.fetch_headers(client, f"{last_uid + 1}:*")
        now = time.perf_counter()
        for record in records:
            if record.uid <= last_uid:
                continue
            parse_envelope(record.header)
            if received < len(sent_at):
                latencies.append(now - sent_at[received])
            received += 1
            last_uid = record.uid
        client.idle()
    client.idle_done()
    sender.join()
    client.logout()
    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)] if latencies else float("nan")
    return {"p95": p95, "median": statistics.median(latencies) if latencies else 0.0,
            "count": len(latencies)}


def run_mbsync(server: DovecotServer, user: MailUser, work: Path, *, fsync: bool) -> float:
    target = work / f"mbsync-{'fsync' if fsync else 'nofsync'}"
    target.mkdir()
    config = work / f"mbsyncrc-{fsync}"
    config.write_text(
        f"FSync {'yes' if fsync else 'no'}\n\n"
        f"IMAPAccount bench\nHost {server.host}\nPort {server.imap_port}\n"
        f"User {user.name}\nPass {user.password}\nSSLType None\nAuthMechs LOGIN\n\n"
        "IMAPStore remote\nAccount bench\n\n"
        f"MaildirStore local\nPath {target}/\nInbox {target}/INBOX\n\n"
        "Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n"
        "Sync Pull\nSyncState *\n"
    )
    started = time.perf_counter()
    subprocess.run(["mbsync", "-q", "-c", str(config), "bench"], check=True,
                   stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    return elapsed


def run_mbsync_nochange(server: DovecotServer, user: MailUser, work: Path) -> float:
    config = work / "mbsyncrc-False"
    started = time.perf_counter()
    subprocess.run(["mbsync", "-q", "-c", str(config), "bench"], check=True,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


# --- report ---------------------------------------------------------------------


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--deliveries", type=int, default=50)
    parser.add_argument("--skip-imapclient", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the Dovecot files")
    args = parser.parse_args()
    count = args.messages

    server = start_dovecot()
    work = Path(tempfile.mkdtemp(prefix="posta-bench-"))
    try:
        user = server.add_user()
        started = time.perf_counter()
        total = fill_maildir(server, user, count)
        print(f"mailbox: {count} messages, {total / 1e6:.0f} MB, "
              f"prepared in {time.perf_counter() - started:.1f} s")
        isolated(phase_reference, server, user)  # warm Dovecot's index cache for everyone

        ref = isolated(phase_reference, server, user)
        ref_rate = rate(ref["count"], ref["seconds"])
        print(f"reference  imaplib UID FETCH 1:* headers: {ref['seconds']:.2f} s, "
              f"{ref_rate:,.0f} msgs/s, peak RSS {ref['rss_mb']:.0f} MB")
        if not args.skip_imapclient:
            ic = isolated(phase_imapclient, server, user, count)
            print(f"IMAPClient fetch+parse of the same:     {ic['seconds']:.2f} s, "
                  f"{rate(ic['count'], ic['seconds']):,.0f} msgs/s, peak RSS {ic['rss_mb']:.0f} MB"
                  f"  (reference {ref_rate:,.0f})")
        ff = isolated(phase_fastfetch, server, user)
        ff_rate = rate(ff["count"], ff["seconds"])
        print(f"fastfetch.fetch_headers alone:          {ff['fetch_seconds']:.2f} s, "
              f"{rate(ff['count'], ff['fetch_seconds']):,.0f} msgs/s  (reference {ref_rate:,.0f})")
        print(f"parse_envelope alone:                   {ff['parse_seconds']:.2f} s, "
              f"{1e6 * ff['parse_seconds'] / max(ff['count'], 1):.1f} µs/header")
        print(f"fastfetch + parse_envelope:             {ff['seconds']:.2f} s, "
              f"{ff_rate:,.0f} msgs/s, peak RSS {ff['rss_mb']:.0f} MB  "
              f"(reference {ref_rate:,.0f}; ratio {ff_rate / ref_rate:.2f})")

        sync = isolated(phase_posta_sync, server, user, str(work))
        posta_rate = None
        if "missing" in sync:
            print(f"posta first sync into the database:     not measured ({sync['missing']})")
        else:
            posta_rate = rate(sync["count"], sync["seconds"])
            print(f"posta first sync into the database:     {sync['seconds']:.2f} s, "
                  f"{posta_rate:,.0f} msgs/s, peak RSS {sync['rss_mb']:.0f} MB "
                  f"(reference {ref_rate:,.0f}; target ≥ {ref_rate / 2:,.0f}; RSS < 300 MB)")
            print(f"posta no-change sync_account pass (every folder, no bodies): with "
                  f"{'QRESYNC' if sync['qresync'] else 'CONDSTORE'} "
                  f"{1000 * sync['nochange_seconds']:.1f} ms wall, "
                  f"{1000 * sync['nochange_cpu']:.1f} ms Posta CPU (target < 20 ms); "
                  f"without CONDSTORE {1000 * sync['nochange_plain_seconds']:.0f} ms wall, "
                  f"{1000 * sync['nochange_plain_cpu']:.0f} ms Posta CPU (target < 1500 ms)")
            floor = isolated(phase_store_floor, server, str(work))
            floor_rate = rate(floor["count"], floor["seconds"])
            print(f"the same rows inserted alone (SQLite executemany, no fetch or parse): "
                  f"{floor['seconds']:.2f} s, {floor_rate:,.0f} msgs/s (reference "
                  f"{ref_rate:,.0f}: the database alone reaches ratio "
                  f"{floor_rate / ref_rate:.2f})")

        bodies = isolated(phase_bodies, server, user, str(work / "blobs"))
        posta_bodies = None
        if "missing" not in sync:
            posta_bodies = isolated(phase_posta_bodies, server, user, str(work))
        mb_nofsync = run_mbsync(server, user, work, fsync=False)
        mb_fsync = run_mbsync(server, user, work, fsync=True)
        mb_nochange = run_mbsync_nochange(server, user, work)
        print(f"mirror with bodies, fastfetch.fetch_bodies → blob files: {bodies['seconds']:.1f} s "
              f"({bodies['bytes'] / 1e6:.0f} MB, peak RSS {bodies['rss_mb']:.0f} MB)  "
              f"(mbsync FSync no {mb_nofsync:.1f} s, FSync yes {mb_fsync:.1f} s)")
        if posta_bodies is not None:
            total_s = sync["seconds"] + posta_bodies["seconds"]
            print(f"posta full mirror: headers {sync['seconds']:.1f} s + bodies "
                  f"{posta_bodies['seconds']:.1f} s ({posta_bodies['count']} bodies into the "
                  f"blob store with snippets in {posta_bodies['steps']} steps, "
                  f"{posta_bodies['pending']} left, peak RSS "
                  f"{posta_bodies['rss_mb']:.0f} MB) = {total_s:.1f} s  (mbsync FSync no "
                  f"{mb_nofsync:.1f} s, FSync yes (its default) {mb_fsync:.1f} s)")

        resync = isolated(phase_resync, server, user)
        condstore_ms = 1000 * resync["condstore_seconds"]
        print(f"no-change resync, CONDSTORE CHANGEDSINCE: {condstore_ms:.1f} ms"
              f" (target < 20 ms); full UID+FLAGS compare: "
              f"{1000 * resync['full_seconds']:.0f} ms (target < 1500 ms); "
              f"mbsync no-change run {1000 * mb_nochange:.0f} ms")

        idle = isolated(phase_idle, server, user, args.deliveries)
        print(f"IDLE: LMTP delivery → headers fetched and parsed (protocol only): p95 "
              f"{1000 * idle['p95']:.0f} ms, median {1000 * idle['median']:.0f} ms over "
              f"{idle['count']} deliveries")
        if "missing" not in sync:
            pidle = isolated(phase_posta_idle, server, user, str(work), args.deliveries)
            print(f"IDLE through posta's sync service: LMTP delivery → Message row in the "
                  f"database: p95 {1000 * pidle['p95']:.0f} ms, median "
                  f"{1000 * pidle['median']:.0f} ms over {pidle['count']} deliveries "
                  f"(target p95 < 1000 ms)")

        if posta_rate is None:
            print("note: the sync engine is missing, so the ratio below is that of the "
                  "header pipeline (fastfetch + parse_envelope), without database writes")
            posta_rate = ff_rate
        print(f"RESULT sync_ratio={posta_rate / ref_rate:.3f}")
    finally:
        server.stop()
        if args.keep:
            print(f"kept {server.root} and {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(server.root, ignore_errors=True)


if __name__ == "__main__":
    main()
