"""One IMAP connection's session: the only place raw IMAP is spoken.

`Session` wraps a logged-in IMAPClient with what the connection offers, learnt once
after login: the extensions ENABLEd (CONDSTORE, QRESYNC, RFC 7162), the capability
flags the callers branch on, and which folder is selected. Commands IMAPClient
lacks (EXAMINE with the QRESYNC parameter, ESEARCH COUNT) are sent here on its
imaplib connection; new commands of that kind belong here too, as methods, so
that the rest of Posta never touches `client._imap`. (Some callers still send
commands on `session.client` themselves; they move here as they are touched.)

No Django here: the callers turn what the session answers into rows.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

from imapclient import IMAPClient

from posta.mailproto import errors
from posta.mailproto.imap.client import capabilities, imap_errors
from posta.mailproto.imap.fastfetch import fetch_uids

# One Session per connection: ENABLE is legal once, before any SELECT (RFC 5161
# §3.1), so a second pass on the same connection must reuse what the first learnt.
_SESSIONS: weakref.WeakKeyDictionary[IMAPClient, Session] = weakref.WeakKeyDictionary()
_FETCH_UID = re.compile(rb"\bUID (\d+)", re.I)
_FETCH_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)", re.I)
_FETCH_MODSEQ = re.compile(rb"\bMODSEQ \((\d+)\)", re.I)
_ESEARCH_COUNT = re.compile(rb"\bCOUNT (\d+)", re.I)


@dataclass
class Resync:
    """What a QRESYNC EXAMINE reported before its tagged OK (RFC 7162 §3.2.5):
    copies whose flags changed since the stored HIGHESTMODSEQ, and UIDs expunged
    since then (VANISHED (EARLIER), §3.2.10)."""

    changes: list[tuple[int, tuple[str, ...], int | None]] = field(default_factory=list)
    vanished: set[int] = field(default_factory=set)


@dataclass
class Session:
    """What one connection offers, learnt once after login, and the only place
    raw IMAP is spoken: a command IMAPClient lacks becomes a method here.

    `selected` is the folder this session EXAMINEd last: callers compare it
    before selecting again.
    """

    client: IMAPClient
    host: str
    condstore: bool
    gmail: bool
    idle: bool
    move: bool
    uidplus: bool
    qresync: bool = False
    esearch: bool = False
    selected: str | None = None

    @classmethod
    def start(cls, client: IMAPClient, *, modseq: bool = True) -> Session:
        """The session of `client`, created (and extensions ENABLEd) on first use.

        `modseq=False` ignores CONDSTORE/QRESYNC even where offered: the path for
        servers without them, which tests and the benchmark exercise on Dovecot.
        """
        known = _SESSIONS.get(client)
        if known is not None:
            return known
        caps = capabilities(client)
        host = str(client.host)
        can_enable = "ENABLE" in caps and client._imap.state == "AUTH"
        qresync = modseq and can_enable and "QRESYNC" in caps
        condstore = modseq and ("CONDSTORE" in caps or "QRESYNC" in caps)
        if condstore and can_enable:
            # RFC 7162 §3.1: after ENABLE CONDSTORE every SELECT/EXAMINE reports
            # HIGHESTMODSEQ, and FETCH may ask for MODSEQ. ENABLE QRESYNC implies
            # CONDSTORE (§3.2.3) and makes EXAMINE accept the QRESYNC parameter.
            with imap_errors(host=host):
                enabled = client.enable("QRESYNC" if qresync else "CONDSTORE")
            qresync = qresync and any(
                bytes(e).upper() == b"QRESYNC" for e in enabled if isinstance(e, bytes)
            )
        session = cls(
            client=client,
            host=host,
            condstore=condstore,
            gmail="X-GM-EXT-1" in caps,
            idle="IDLE" in caps,
            move="MOVE" in caps,
            uidplus="UIDPLUS" in caps,
            qresync=qresync,
            esearch="ESEARCH" in caps,
        )
        _SESSIONS[client] = session
        return session

    def examine(self, name: str) -> dict[bytes, object]:
        """EXAMINE `name` (read-only: syncing never changes \\Seen or \\Recent)."""
        with imap_errors(host=self.host):
            result: dict[bytes, object] = self.client.select_folder(name, readonly=True)
        self.selected = name
        return result

    def examine_qresync(
        self, name: str, *, uidvalidity: int, modseq: int, uidnext: int
    ) -> tuple[dict[bytes, object], Resync]:
        """EXAMINE `name` with the QRESYNC parameter (RFC 7162 §3.2.5): the answer
        carries the flag changes since `modseq` and the expunges since then, in the
        same round trip. The server ignores the parameter when `uidvalidity` is no
        longer current; the caller compares the returned UIDVALIDITY.

        IMAPClient has no QRESYNC select, so the command goes out on its imaplib
        connection, as IMAPClient's own select_folder does.
        """
        imap = self.client._imap
        known = f" 1:{uidnext - 1}" if uidnext > 1 else ""
        parameter = f"(QRESYNC ({int(uidvalidity)} {int(modseq)}{known}))"
        imap.untagged_responses = {}  # what imaplib's select() does first
        # Also as select(readonly=True) does: imaplib refuses every later command
        # with "mailbox status changed to READ-ONLY" when the [READ-ONLY] code of
        # an EXAMINE (RFC 3501 §6.3.2) meets a connection it thinks is writable.
        imap.is_readonly = True
        with imap_errors(host=self.host):
            typ, data = imap._simple_command(
                "EXAMINE", self.client._normalise_folder(name), parameter
            )
        if typ != "OK":
            self.selected = None
            raise errors.ProtocolError(f"EXAMINE {name}: {data!r}"[:300])
        imap.state = "SELECTED"
        fetched = imap.untagged_responses.pop("FETCH", [])
        vanished = imap.untagged_responses.pop("VANISHED", [])
        result: dict[bytes, object] = self.client._process_select_response(
            imap.untagged_responses
        )
        self.selected = name
        return result, _resync_from(fetched, vanished)

    def message_count(self) -> int:
        """How many messages the selected folder holds now: ESEARCH COUNT (RFC 4731
        §3.1) where offered, one number instead of every UID; else the UID list."""
        if self.esearch:
            imap = self.client._imap
            imap.untagged_responses.pop("ESEARCH", None)
            with imap_errors(host=self.host):
                typ, _data = imap._simple_command("UID", "SEARCH", "RETURN", "(COUNT)", "ALL")
            answers = imap.untagged_responses.pop("ESEARCH", [])
            if typ == "OK":
                for answer in answers:
                    found = _ESEARCH_COUNT.search(answer if isinstance(answer, bytes) else b"")
                    if found is not None:
                        return int(found.group(1))
        return len(fetch_uids(self.client, "1:*"))


def _resync_from(fetched: list[object], vanished: list[object]) -> Resync:
    resync = Resync()
    for item in fetched:
        text = item[0] if isinstance(item, tuple) else item
        if not isinstance(text, bytes):
            continue
        uid = _FETCH_UID.search(text)
        flags = _FETCH_FLAGS.search(text)
        if uid is None or flags is None:
            continue
        mod = _FETCH_MODSEQ.search(text)
        names = tuple(flags.group(1).decode("utf-8", "replace").split())
        resync.changes.append((int(uid.group(1)), names, int(mod.group(1)) if mod else None))
    for item in vanished:
        if not isinstance(item, bytes):
            continue
        # "(EARLIER) 41,43:116" (RFC 7162 §3.2.10); EARLIER marks the answer to our
        # QRESYNC, as opposed to an expunge happening now: both mean "gone".
        text = item.decode("ascii", "replace").replace("(EARLIER)", "").strip()
        resync.vanished.update(_uids_in(text))
    return resync


def _uids_in(uid_set: str) -> Iterator[int]:
    for part in uid_set.split(","):
        first, _, last = part.strip().partition(":")
        if not first.isdigit() or (last and not last.isdigit()):
            continue
        low, high = int(first), int(last or first)
        yield from range(min(low, high), max(low, high) + 1)
