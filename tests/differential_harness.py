"""Running generated filter rules on the test Dovecot's Pigeonhole and in
Posta's matcher, side by side (tests/integration/test_filters_differential.py).

One Dovecot user holds a batch: its script is replaced through ManageSieve
(PUTSCRIPT, so Pigeonhole compiles every script the writer produces), the batch's
messages go in through LMTP, and the mailbox is read back and emptied. Each
message carries an `X-Posta-Case` field naming it; rules never look at that field.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from imapclient import IMAPClient

from posta.mailproto.filtering import match
from posta.mailproto.filtering.spec import FilterRule
from posta.mailproto.sieve import managesieve
from tests.servers.dovecot import DovecotServer, MailUser

CASE_FIELD = "X-Posta-Case"
SCRIPT_NAME = "posta-differential"
# Where the generated rules file mail (Trash and Junk hold the special uses).
FOLDERS = ("Trash", "Junk", "Clienti", "Clienti/Acme", "Copie", "Città")
FILTER_FLAGS = ("\\Seen", "\\Flagged")

#: {case: {(folder, "flags")}}: where the copies of each message are.
State = dict[str, set[tuple[str, str]]]


@dataclass
class Mailbox:
    """A Dovecot user set up for batches, with a ManageSieve session open."""

    dovecot: DovecotServer
    user: MailUser
    sieve: managesieve.SieveConnection

    @property
    def extensions(self) -> frozenset[str]:
        return frozenset(self.sieve.extensions())


@contextlib.contextmanager
def open_mailbox(dovecot: DovecotServer) -> Iterator[Mailbox]:
    user = dovecot.add_user()
    for name in FOLDERS:
        dovecot.create_folder(user, name)
    settings = managesieve.SieveSettings(
        host="127.0.0.1", port=dovecot.managesieve_port, address="127.0.0.1",
        security="none", username=user.name, password=user.password,
    )
    with managesieve.connect(settings) as sieve:
        yield Mailbox(dovecot, user, sieve)


def install(box: Mailbox, script: str) -> None:
    """Store and activate `script`; the server's words fail the test."""
    refused = box.sieve.put(SCRIPT_NAME, script)
    assert refused is None, f"Pigeonhole refused the script: {refused}\n{script}"
    assert box.sieve.activate(SCRIPT_NAME) is None


def wire(raw: bytes) -> bytes:
    """`raw` with CRLF line ends, as LMTP carries it (RFC 5321 §2.3.8)."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


def deliver(box: Mailbox, raw: bytes, *, sender: str = "sender@example.test") -> None:
    """LMTP delivery from one envelope sender, whatever From says."""
    with smtplib.LMTP("127.0.0.1", box.dovecot.lmtp_port, timeout=30) as lmtp:
        assert not lmtp.sendmail(sender, [box.user.name], wire(raw))


def _flags(flags: Sequence[bytes | str]) -> str:
    names = {f.decode() if isinstance(f, bytes) else f for f in flags}
    return " ".join(f for f in FILTER_FLAGS if f in names)


_CASE = re.compile(rb"^" + CASE_FIELD.encode() + rb": *(\S+)", re.MULTILINE | re.IGNORECASE)


def collect(box: Mailbox) -> tuple[State, dict[str, bytes]]:
    """The copies of every message (by case), and each message's stored bytes;
    then the mailbox is emptied for the next batch."""
    state: State = {}
    stored: dict[str, bytes] = {}
    with IMAPClient("127.0.0.1", port=box.dovecot.imap_port, ssl=False, timeout=30) as imap:
        imap.login(box.user.name, box.user.password)
        for _flags_of, _sep, name in imap.list_folders():
            imap.select_folder(name)
            ids = imap.search()
            fetched = imap.fetch(ids, ["FLAGS", "BODY.PEEK[]"]) if ids else {}
            for data in fetched.values():
                raw = data[b"BODY[]"]
                found = _CASE.search(raw)
                assert found, raw[:400]
                case = found.group(1).decode()
                state.setdefault(case, set()).add((str(name), _flags(data[b"FLAGS"])))
                stored[case] = raw
            if fetched:
                imap.delete_messages(list(fetched))
                imap.expunge()
    return state, stored


def expected(rules: Sequence[FilterRule], raw: bytes) -> set[tuple[str, str]]:
    """Where Posta's plan puts the message: the copy kept in INBOX with the
    final flags, each filing with the flags of its moment (as the executor
    carries a plan out, posta.rules.executor)."""
    plan = match.plan(rules, match.MailView(raw, size=len(raw)))
    places = {(f.folder, _flags(sorted(f.flags))) for f in plan.filings}
    if plan.keep:
        places.add(("INBOX", _flags(sorted(plan.keep_flags))))
    return places
