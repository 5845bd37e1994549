"""Helpers of the filter tests: rules saved through the services the Filters tab
uses, Posta's executor driven to the end, and the server's view of a mailbox."""

from __future__ import annotations

import email
import imaplib
import re
from email.header import decode_header, make_header
from typing import Any

from posta.accounts.models import Account, Folder
from posta.rules import arrivals, filters, sieve_upload
from posta.rules.filter_models import FilterServer
from posta.sync import actions
from posta.sync.account_pass import sync_account_once as sync_account_once
from tests.servers.dovecot import DovecotServer, MailUser

SERVER_FOLDERS = ("Trash", "Junk", "Clienti", "Clienti/Acme", "Copie", "Liste")


def add_folders(dovecot: DovecotServer, user: MailUser) -> None:
    for name in SERVER_FOLDERS:
        dovecot.create_folder(user, name)


def folder(account: Account, name: str) -> Folder:
    return Folder.objects.get(account=account, name=name)


def save_rule(account: Account, name: str, conditions: list[dict[str, Any]],
              actions_: list[dict[str, Any]], **options: Any) -> Any:
    """A rule as the tab saves it; `folder` in actions is a folder *name* here."""
    shaped = []
    for a in actions_:
        a = dict(a)
        if "folder" in a:
            a["folder"] = str(folder(account, a["folder"]).pk)
        shaped.append(a)
    data = filters.RuleData(
        name=name, account_id=account.pk, conditions=conditions, actions=shaped, **options
    )
    return filters.check_save_rule(account.user, None, data)


def use_test_port(account: Account, dovecot: DovecotServer) -> None:
    """The test Dovecot's ManageSieve listens on a free port, not on 4190."""
    FilterServer.objects.update_or_create(
        account=account, defaults={"port": dovecot.managesieve_port}
    )


def set_server_side(account: Account, on: bool) -> FilterServer:
    filters.do_set_use_server(account.user, account, on)
    server = sieve_upload.do_sync_server(account.pk)
    assert server is not None
    return server


def run_posta(account: Account, *, rounds: int = 6) -> None:
    """Sync, run the arrival pipeline, carry out the intents, until nothing is left."""
    for _round in range(rounds):
        sync_account_once(account.pk)
        from posta.rules.models import Arrival

        Arrival.objects.filter(state="pending").update(next_attempt_at=None)
        arrivals.process_pending(account.user_id)
        actions.run_account_actions(account.pk)
        if not Arrival.objects.filter(user=account.user, state="pending").exists() and not (
            account.mail_actions.filter(state__in=["pending", "running"]).exists()
        ):
            sync_account_once(account.pk)
            return
    raise AssertionError("Posta's executor did not settle")


def _list_folders(client: imaplib.IMAP4) -> list[str]:
    typ, lines = client.list()
    names = []
    for line in lines or []:
        raw = line.decode() if isinstance(line, bytes) else str(line)
        found = re.match(r'\((?P<flags>[^)]*)\) "(?P<sep>[^"]*)" (?P<name>.+)$', raw)
        if found and "\\Noselect" not in found["flags"]:
            names.append(found["name"].strip('"'))
    return names


def server_state(dovecot: DovecotServer, user: MailUser) -> dict[str, set[tuple[str, str]]]:
    """{subject: {(folder, flags)}} over every folder, flags limited to \\Seen and
    \\Flagged (what filters set)."""
    client = dovecot.imap(user)
    found: dict[str, set[tuple[str, str]]] = {}
    try:
        for name in _list_folders(client):
            typ, _data = client.select(f'"{name}"', readonly=True)
            if typ != "OK":
                continue
            typ, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for item in data or []:
                if not isinstance(item, tuple):
                    continue
                meta = item[0].decode()
                flags = " ".join(
                    f for f in ("\\Seen", "\\Flagged") if f in meta
                )
                header = email.message_from_bytes(item[1])
                subject = str(make_header(decode_header(header.get("Subject", ""))))
                found.setdefault(subject, set()).add((name, flags))
    finally:
        client.logout()
    return found
