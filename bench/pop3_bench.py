"""POP3 import benchmark: messages per second moving a POP3 mailbox into IMAP.

    apt-get install fetchmail        # the reference; not needed by the test run
    .venv/bin/python bench/pop3_bench.py [--messages 10000] [--batch 500]

Starts a private Dovecot (tests/servers/dovecot.py) with two POP3 mailboxes of the
same N messages and two empty target mailboxes, then, in the same run:

- `posta`: the import job (posta.rules.pop3_job.fetch_source, batch after batch
  as the worker runs it) pulls mailbox A into target A over POP3 and IMAP APPEND,
  recording each message before and after, deleting from the server at QUIT;
- `fetchmail`: Debian's fetchmail pulls mailbox B (UIDL, fetchall, no keep) and
  delivers it to target B over LMTP, Dovecot's local delivery.

Each side is checked to have moved every message and emptied its POP3 mailbox.
Ends with `RESULT posta_msgs_per_s=... fetchmail_msgs_per_s=...`. Never part of
the test run (pytest's testpaths is tests/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.servers.dovecot import DovecotServer, MailUser, start_dovecot  # noqa: E402


def numbered(i: int) -> bytes:
    """A message of a few kilobytes, as office mail is."""
    body = "".join(f"Line {n} of message {i}, with the words a reader expects.\r\n"
                   for n in range(40))
    return (
        "From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\n"
        f"Subject: bench message {i}\r\n"
        f"Date: Mon, 02 Mar 2026 10:{i // 60 % 60:02d}:{i % 60:02d} +0100\r\n"
        f"Message-ID: <bench-{i}@example.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


def fill(server: DovecotServer, user: MailUser, count: int) -> None:
    with smtplib.LMTP(server.host, server.lmtp_port, timeout=120) as lmtp:
        for i in range(count):
            lmtp.sendmail("alice@example.test", [user.name], numbered(i))


def run_posta(server: DovecotServer, source_user: MailUser, target: MailUser,
              work: Path, batch: int) -> float:
    os.environ["POSTA_DATA_DIR"] = str(work / "posta-data")
    os.environ["POSTA_ALLOWED_MAIL_HOSTS"] = server.host
    os.environ["POSTA_POP3_BATCH"] = str(batch)
    os.environ.pop("POSTA_DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "posta.settings"
    import django

    django.setup()
    from django.core.management import call_command

    from posta.accounts.models import Account, Folder
    from posta.core.crypto import seal
    from posta.rules.pop3_job import fetch_source
    from posta.rules.pop3_models import Pop3Source
    from posta.users.models import User

    call_command("migrate", verbosity=0)
    user = User.objects.create_user(username="bench", password="pw-unused-123")
    account = Account.objects.create(
        user=user, username=target.name, email=target.address,
        password_secret=seal(target.password), description="bench", is_main=True,
        imap_host=server.host, imap_port=server.imap_port, imap_security="none",
    )
    Folder.objects.create(account=account, name="INBOX", display_name="INBOX", role="inbox")
    source = Pop3Source.objects.create(
        user=user, host=server.host, port=server.pop3_port, security="none",
        username=source_user.name, password_secret=seal(source_user.password),
        account=account, folder_name="INBOX",
    )
    started = time.perf_counter()
    batches = 1
    while fetch_source(source.pk):
        batches += 1
    elapsed = time.perf_counter() - started
    source.refresh_from_db()
    if source.last_error_code:
        raise SystemExit(f"posta: {source.last_error_code} {source.last_error_detail}")
    print(f"posta: {source.imported_count} messages in {batches} batches")
    return elapsed


def run_fetchmail(server: DovecotServer, source_user: MailUser, target: MailUser,
                  work: Path) -> float:
    binary = shutil.which("fetchmail")
    if binary is None:
        raise SystemExit("fetchmail is not installed: apt-get install fetchmail")
    home = work / "fetchmail"
    home.mkdir()
    rc = home / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f'poll {server.host} service {server.pop3_port} protocol POP3 uidl\n'
        f'  user "{source_user.name}" there with password "{source_user.password}"'
        f' is "{target.name}" here\n'
        f'  smtphost "{server.host}/{server.lmtp_port}" lmtp smtpname "{target.name}"\n'
        "  fetchall nokeep sslproto ''\n"
    )
    rc.chmod(0o600)
    env = {**os.environ, "FETCHMAILHOME": str(home), "HOME": str(home)}
    started = time.perf_counter()
    result = subprocess.run(
        [binary, "-f", str(rc), "-i", str(home / "ids"), "--nodetach", "--nosyslog",
         "--silent"],
        env=env, capture_output=True, text=True, timeout=3600, check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):  # 1: no mail (not expected here)
        raise SystemExit(f"fetchmail failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="posta-pop3-bench-"))
    server = start_dovecot(work / "dovecot")
    try:
        pop_a, pop_b = server.add_user(), server.add_user()
        target_a, target_b = server.add_user(), server.add_user()
        for user in (pop_a, pop_b):
            fill(server, user, args.messages)
        print(f"mailboxes ready: {args.messages} messages each")
        fetchmail_s = run_fetchmail(server, pop_b, target_b, work)
        posta_s = run_posta(server, pop_a, target_a, work, args.batch)
        for name, pop, target in (("posta", pop_a, target_a), ("fetchmail", pop_b, target_b)):
            moved = server.status(target, "INBOX")["messages"]
            left = server.status(pop, "INBOX")["messages"]
            print(f"{name}: {moved} in the target, {left} left on the POP3 server")
            if moved != args.messages or left:
                raise SystemExit(f"{name} did not move the whole mailbox")
        posta_rate = args.messages / posta_s
        fetchmail_rate = args.messages / fetchmail_s
        print(f"posta     {posta_s:8.2f} s  {posta_rate:8.1f} msgs/s  (POP3 -> IMAP APPEND)")
        print(f"fetchmail {fetchmail_s:8.2f} s  {fetchmail_rate:8.1f} msgs/s  (POP3 -> LMTP)")
        print(f"RESULT posta_msgs_per_s={posta_rate:.1f} fetchmail_msgs_per_s={fetchmail_rate:.1f}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
