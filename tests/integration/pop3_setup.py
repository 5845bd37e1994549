"""Building POP3 import test state through the services production uses: a CRM
user with an IMAP account on the test Dovecot, and a source pointing at another
Dovecot user's POP3 mailbox (or at a POP3 server of tests/servers/pop3.py)."""

from __future__ import annotations

import email
import re
from datetime import datetime
from typing import Any

from posta.accounts.models import Account, Folder
from posta.core.crypto import seal
from posta.rules.pop3_models import Pop3Source
from posta.users.models import User
from tests.servers.dovecot import DovecotServer, MailUser


def make_target(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> Account:
    """A CRM user with one account on `mail_user`, its INBOX known as the inbox."""
    settings.POSTA_ALLOWED_MAIL_HOSTS = [dovecot.host]
    user = User.objects.create_user(username=mail_user.name, password="pw-unused-123")
    account = Account.objects.create(
        user=user,
        username=mail_user.name,
        email=mail_user.address,
        password_secret=seal(mail_user.password),
        description="Office",
        is_main=True,
        imap_host=dovecot.host,
        imap_port=dovecot.imap_port,
        imap_security="none",
    )
    Folder.objects.create(account=account, name="INBOX", display_name="INBOX", role="inbox")
    return account


def make_source(
    account: Account, *, host: str, port: int, username: str, password: str,
    folder: str = "INBOX", **fields: Any,
) -> Pop3Source:
    return Pop3Source.objects.create(
        user=account.user,
        host=host,
        port=port,
        security="none",
        username=username,
        password_secret=seal(password),
        account=account,
        folder_name=folder,
        **fields,
    )


def numbered(i: int, *, msgid: bool = True, date: str | None = None) -> bytes:
    """Test message `i`, dated one minute after the previous one."""
    lines = [
        "From: Alice <alice@example.test>",
        "To: Bob <bob@example.test>",
        f"Subject: pop3 message {i}",
        f"Date: {date or f'Mon, 02 Mar 2026 10:{i // 60 % 60:02d}:{i % 60:02d} +0100'}",
    ]
    if msgid:
        lines.append(f"Message-ID: <pop3-{i}@example.test>")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "",
              f"Body of message {i}.", ".dot-stuffed line", ""]
    return "\r\n".join(lines).encode()


_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')


def folder_contents(
    dovecot: DovecotServer, user: MailUser, folder: str = "INBOX"
) -> list[tuple[str, datetime, bool, bytes]]:
    """(subject, INTERNALDATE, seen, body) of every message in `folder`, by UID."""
    client = dovecot.imap(user)
    try:
        client.select(f'"{folder}"', readonly=True)
        typ, data = client.uid("FETCH", "1:*", "(INTERNALDATE FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        found = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            text = _INTERNALDATE.search(head).group(1).decode().strip()
            stamp = datetime.strptime(text, "%d-%b-%Y %H:%M:%S %z")
            subject = email.message_from_bytes(body)["Subject"] or ""
            found.append((str(subject), stamp, b"\\Seen" in head, body))
        return found
    finally:
        client.logout()
