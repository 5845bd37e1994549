"""OAuth2 benchmark: what signing in with a token costs against a password.

    .venv/bin/python bench/oauth_bench.py [--rounds N]

Starts the local authorization server (tests/servers/oauth.py) and a private
Dovecot whose oauth2 passdb introspects tokens there (tests/servers/dovecot.py),
on SQLite in a temporary data directory. Prints, each as a median of N rounds:

- `imap_token_login`: posta.remote.connect.open_account of an OAuth2 account with a
  fresh token (OAUTHBEARER, Dovecot asks the introspection endpoint), next to
  `imap_password_login`, the same call for a password account on the same server;
- `refresh`: posta.remote.tokens.access_token when the token is due (the lease
  UPDATE, the refresh request, the sealed store), next to `bare_refresh`, one
  refresh POST to the same token endpoint with urllib.

Ends with `RESULT ...` (milliseconds). Never part of the test run.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def _median_ms(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    rounds = parser.parse_args().rounds
    work = Path(tempfile.mkdtemp(prefix="posta-oauth-bench-"))
    os.environ["POSTA_DATA_DIR"] = str(work / "data")
    os.environ["DJANGO_SETTINGS_MODULE"] = "posta.settings"
    os.environ.pop("POSTA_DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from posta.accounts.models import Account, CompanySettings, OAuthToken
    from posta.core.crypto import seal
    from posta.mailproto.imap.client import close_quietly
    from posta.remote import connect, tokens
    from tests.oauth_setup import CLIENT_ID, CLIENT_SECRET, OAuthMail, signed_in_account
    from tests.servers.dovecot import start_dovecot
    from tests.servers.oauth import start_oauth_server
    from tests.servers.smtp import start_smtp

    call_command("migrate", verbosity=0)
    oauth = start_oauth_server()
    oauth.add_client(CLIENT_ID, CLIENT_SECRET)
    oauth.add_client("mailserver", "mailserver-secret")
    dovecot = start_dovecot(
        oauth2_introspection_url=f"http://mailserver:mailserver-secret@{oauth.host}:{oauth.port}/introspect"
    )
    smtp = start_smtp()
    try:
        CompanySettings.objects.update_or_create(pk=1, defaults={"allowed_mail_hosts": "127.0.0.1"})
        mail = OAuthMail(oauth=oauth, dovecot=dovecot, smtp=smtp)
        token_user = mail.add_user()
        account = signed_in_account(mail, token_user)
        password_user = dovecot.add_user()
        by_password = Account.objects.create(
            user=account.user, username=password_user.name, email=password_user.address,
            description="password", password_secret=seal(password_user.password),
            imap_host=dovecot.host, imap_port=dovecot.imap_port, imap_security="none",
        )

        def login(which: Account) -> None:
            close_quietly(connect.open_account(which))

        token_login = _median_ms(rounds, lambda: login(account))
        password_login = _median_ms(rounds, lambda: login(by_password))

        def refresh() -> None:
            OAuthToken.objects.filter(account=account).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
            tokens.access_token(account)

        refreshed = _median_ms(rounds, refresh)
        issued = oauth.issue(CLIENT_ID, token_user.name)
        credentials = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        current = {"refresh": issued.refresh_token}

        def bare() -> None:
            body = urllib.parse.urlencode(
                {"grant_type": "refresh_token", "refresh_token": current["refresh"]}
            ).encode()
            request = urllib.request.Request(  # noqa: S310 - the local test server
                f"{oauth.url}/token", data=body, headers={"Authorization": f"Basic {credentials}"}
            )
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                import json

                current["refresh"] = json.loads(answer.read())["refresh_token"]

        bare_refresh = _median_ms(rounds, bare)
        print(f"imap_token_login     {token_login:8.2f} ms   (reference imap_password_login "
              f"{password_login:8.2f} ms)")
        print(f"refresh              {refreshed:8.2f} ms   (reference bare_refresh "
              f"{bare_refresh:8.2f} ms)")
        print(
            f"RESULT imap_token_login={token_login:.2f} imap_password_login={password_login:.2f} "
            f"refresh={refreshed:.2f} bare_refresh={bare_refresh:.2f}"
        )
    finally:
        smtp.stop()
        dovecot.stop()
        oauth.stop()


if __name__ == "__main__":
    main()
