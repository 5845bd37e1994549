"""Recovery benchmark: how long after a server outage new mail reaches the database.

    .venv/bin/python bench/recovery_bench.py [--accounts N] [--outage SECONDS]

Starts a private Dovecot (tests/servers/dovecot.py) with N mailboxes, and a sync
service (posta.sync.service, its default timings) whose accounts all reach the
server through one proxy (tests/servers/net.py OutageProxy). Once every account
waits in IDLE, the proxy is taken down for the outage (connections dropped, new
ones closed at once), then brought back; one message is delivered to each mailbox
at that moment, and the time until each is stored is printed. Two runs side by
side, each in a child process of its own:

- `capped`: the product as configured (POSTA_SYNC_RECONNECT_CAP, wake-up of the
  other connections of a server);
- `reference`: the plain backoff (cap 15 minutes, no wake-up), as before.

Ends with `RESULT capped_max=... reference_max=...` (seconds). Never part of the
test run (pytest's testpaths is tests/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.servers.dovecot import start_dovecot  # noqa: E402
from tests.servers.net import OutageProxy  # noqa: E402


def _message(subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.test>"
    msg["To"] = "Bob <bob@example.test>"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@example.test>"
    msg.set_content("Hello\n")
    return msg.as_bytes()


def _wait(condition: Any, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def run(mode: str, accounts: int, outage: float) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="posta-recovery-")
    server = start_dovecot(Path(work) / "dovecot")
    proxy = OutageProxy(server.imap_port)
    try:
        os.environ["POSTA_DATA_DIR"] = str(Path(work) / "posta-data")
        os.environ["POSTA_ALLOWED_MAIL_HOSTS"] = server.host
        os.environ["POSTA_IDLE_FOLDERS"] = "0"
        os.environ.pop("POSTA_DATABASE_URL", None)
        if mode == "reference":
            os.environ["POSTA_SYNC_RECONNECT_CAP"] = str(15 * 60)
        os.environ["DJANGO_SETTINGS_MODULE"] = "posta.settings"
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from posta.accounts.models import Account
        from posta.core.crypto import seal
        from posta.mail.models import Message
        from posta.sync import reconnect, service

        if mode == "reference":
            reconnect.HOST_WAKEUPS.wake = lambda server, *, min_interval: 0  # type: ignore[method-assign]
        call_command("migrate", verbosity=0)
        users = [server.add_user() for _ in range(accounts)]
        owners = {}
        for user in users:
            owner = get_user_model().objects.create_user(username=user.name, password="pw-123")
            Account.objects.create(
                user=owner,
                username=user.name,
                email=user.address,
                password_secret=seal(user.password),
                description="bench",
                is_main=True,
                imap_host=server.host,
                imap_port=proxy.port,
                imap_security="none",
            )
            owners[user.name] = owner
        svc = service.SyncService(tick=1.0)
        thread = threading.Thread(target=svc.run, daemon=True)
        thread.start()
        idle = Account.SyncState.IDLE
        if not _wait(
            lambda: Account.objects.filter(sync_state=idle).count() == accounts, timeout=120
        ):
            raise RuntimeError("accounts did not reach IDLE")
        time.sleep(2)  # every account thread is in IDLE now
        proxy.down()
        time.sleep(outage)
        proxy.up()
        back = time.monotonic()
        for user in users:
            server.deliver(user, _message(f"after {user.name}"))
        lags: dict[str, float] = {}
        while len(lags) < accounts and time.monotonic() - back < 20 * 60:
            for user in users:
                if (
                    user.name not in lags
                    and Message.objects.filter(
                        user=owners[user.name], subject=f"after {user.name}"
                    ).exists()
                ):
                    lags[user.name] = time.monotonic() - back
            time.sleep(0.1)
        svc.stop()
        thread.join(timeout=60)
        return {"mode": mode, "lags": sorted(lags.values()), "refused": proxy.refused}
    finally:
        proxy.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--outage", type=float, default=90.0)
    parser.add_argument("--mode", choices=["capped", "reference"])
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run(args.mode, args.accounts, args.outage)))
        return
    results = {}
    for mode in ("capped", "reference"):
        out = (
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--mode",
                    mode,
                    "--accounts",
                    str(args.accounts),
                    "--outage",
                    str(args.outage),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        result = json.loads(out)
        results[mode] = result
        lags = ", ".join(f"{lag:.1f}" for lag in result["lags"])
        print(
            f"{mode:>9}: outage {args.outage:.0f} s, {args.accounts} accounts; "
            f"mail stored after the server returned: {lags} s; "
            f"connections refused during the outage: {result['refused']}"
        )
    print(
        f"RESULT capped_max={max(results['capped']['lags']):.1f} "
        f"reference_max={max(results['reference']['lags']):.1f}"
    )


if __name__ == "__main__":
    main()
