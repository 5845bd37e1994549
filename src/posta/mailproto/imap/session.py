"""One IMAP connection's session: the only place raw IMAP is spoken.

`Session` wraps a logged-in IMAPClient with what the connection offers, learnt once
after login: the extensions ENABLEd (CONDSTORE, QRESYNC, RFC 7162), the capability
flags the callers branch on, and which folder is selected. Commands IMAPClient
lacks (EXAMINE with the QRESYNC parameter, ESEARCH COUNT) are sent here on its
imaplib connection; new commands of that kind belong here too, as methods, so
that the rest of Posta never touches `client._imap`. The commands that change a
mailbox are here as well, each written once: search by header, APPEND with its
APPENDUID, MOVE (or its COPY fallback), flag changes and the expunge of given
UIDs. There is no plain EXPUNGE (RFC 3501 §6.4.3): it would remove every
\\Deleted message of the folder, other clients' too, so the session expunges by
UID where UIDPLUS allows it (RFC 4315 §2.1) and otherwise leaves the copy marked
\\Deleted; the client itself refuses a plain EXPUNGE and CLOSE
(posta.mailproto.imap.client.PlainExpungeRefused).

No Django here: the callers turn what the session answers into rows.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

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
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.I)


class Appended(NamedTuple):
    """Where an APPEND put the message, from its APPENDUID response code (RFC 4315
    §3): both None when the server does not send one (no UIDPLUS)."""

    uidvalidity: int | None
    uid: int | None


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
    can_move: bool  # MOVE, RFC 6851
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
            can_move="MOVE" in caps,
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

    # --- commands that change a mailbox --------------------------------------

    def select(self, name: str) -> int | None:
        """SELECT `name` read-write, for the commands that change it; returns its
        UIDVALIDITY (None when the server sent none). UIDs of this selection stay
        valid for the whole session (RFC 3501 §2.3.1.1)."""
        with imap_errors(host=self.host):
            answer = self.client.select_folder(name)
        self.selected = name
        value = answer.get(b"UIDVALIDITY")
        return int(value) if isinstance(value, int) else None

    def select_uidnext(self, name: str) -> tuple[int | None, int | None]:
        """SELECT `name` read-write (as `select`) and return its UIDVALIDITY and
        UIDNEXT (RFC 3501 §6.3.1), each None when the server sent none: the UID
        the next message appended will get at the earliest."""
        with imap_errors(host=self.host):
            answer = self.client.select_folder(name)
        self.selected = name
        values = (answer.get(b"UIDVALIDITY"), answer.get(b"UIDNEXT"))
        return tuple(int(v) if isinstance(v, int) else None for v in values)  # type: ignore[return-value]

    def uids_from(self, first: int) -> list[int]:
        """UIDs of the selected folder from `first` on, ascending (UID SEARCH)."""
        with imap_errors(host=self.host):
            found = self.client.search(["UID", f"{int(first)}:*"])
        return sorted(u for u in (int(f) for f in found) if u >= first)

    def fetch_raw(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The whole messages `uids` of the selected folder, without setting
        \\Seen (BODY.PEEK[], RFC 3501 §6.4.5)."""
        if not uids:
            return {}
        with imap_errors(host=self.host):
            data = self.client.fetch(list(uids), ["BODY.PEEK[]"])
        found: dict[int, bytes] = {}
        for uid, values in data.items():
            body = values.get(b"BODY[]")
            if isinstance(body, bytes):
                found[int(uid)] = body
        return found

    def has_uid(self, uid: int) -> bool:
        """Whether the selected folder still holds `uid` (UID SEARCH UID)."""
        with imap_errors(host=self.host):
            found = self.client.search(["UID", str(uid)])
        return uid in {int(u) for u in found}

    def search_header(self, name: str, value: str) -> list[int]:
        """UIDs in the selected folder whose header `name` contains `value`
        (SEARCH HEADER, RFC 3501 §6.4.4), ascending. An empty value would match
        every message with that header, so it matches none here. The value goes as
        a quoted string (backslash and quote escaped) or, when not ASCII, with
        CHARSET UTF-8. No RETURN option is sent, so the answer is a plain SEARCH
        response even where ESEARCH is offered (RFC 4731 §3.1)."""
        if not value:
            return []
        charset = None if value.isascii() else "UTF-8"
        with imap_errors(host=self.host):
            found = self.client.search(["HEADER", name, value], charset=charset)
        return sorted(int(u) for u in found)

    def search_message_id(self, message_id: str) -> list[int]:
        """UIDs in the selected folder whose Message-ID is `message_id` (given
        without the angle brackets of RFC 5322 §3.6.4)."""
        if not message_id:
            return []
        return self.search_header("Message-ID", f"<{message_id}>")

    def append(
        self,
        folder: str,
        raw: bytes,
        *,
        flags: Sequence[str] = (),
        date: datetime | None = None,
    ) -> Appended:
        """APPEND `raw` to `folder` with `flags` and, when given, `date` as its
        INTERNALDATE. Where the message went comes from APPENDUID (RFC 4315 §3);
        without UIDPLUS the caller finds it by a header search."""
        with imap_errors(host=self.host):
            reply = self.client.append(folder, raw, flags=list(flags), msg_time=date)
        return parse_appenduid(reply)

    def set_flags(self, uids: Sequence[int], flags: Sequence[str], *, on: bool) -> None:
        """UID STORE +FLAGS.SILENT / -FLAGS.SILENT in the selected folder: it sets
        a state, so repeating it changes nothing."""
        with imap_errors(host=self.host):
            if on:
                self.client.add_flags(list(uids), list(flags), silent=True)
            else:
                self.client.remove_flags(list(uids), list(flags), silent=True)

    def expunge_uids(self, uids: Sequence[int]) -> bool:
        """Remove `uids` of the selected folder: \\Deleted, then UID EXPUNGE of
        exactly those (RFC 4315 §2.1). Without UIDPLUS they stay marked \\Deleted
        and False is returned: a plain EXPUNGE would take other clients' \\Deleted
        mail with them. True when they are gone."""
        if not uids:
            return True
        self.set_flags(uids, ["\\Deleted"], on=True)
        if not self.uidplus:
            return False
        with imap_errors(host=self.host):
            self.client.uid_expunge(list(uids))
        return True

    def copy(self, uids: Sequence[int], target: str) -> None:
        """UID COPY `uids` of the selected folder to `target`."""
        with imap_errors(host=self.host):
            self.client.copy(list(uids), target)

    def move(self, uids: Sequence[int], target: str) -> bool:
        """Move `uids` of the selected folder to `target`: UID MOVE (RFC 6851)
        where offered, else UID COPY and the expunge of those UIDs only
        (`expunge_uids`). Returns False when the originals could not be expunged
        (no UIDPLUS): they stay in the source marked \\Deleted, which other
        clients show as deleted. True when they left the source."""
        if not uids:
            return True
        if self.can_move:
            with imap_errors(host=self.host):
                self.client.move(list(uids), target)
            return True
        self.copy(uids, target)
        return self.expunge_uids(uids)

    def header_fields(self, uid: int, names: Sequence[str]) -> bytes | None:
        """The raw header fields `names` of message `uid` in the selected folder,
        without setting \\Seen (BODY.PEEK, RFC 3501 §6.4.5); None when the folder
        no longer holds it."""
        item = f"BODY.PEEK[HEADER.FIELDS ({' '.join(names)})]"
        with imap_errors(host=self.host):
            data = self.client.fetch([uid], [item])
        for values in data.values():
            for key, value in values.items():
                if isinstance(key, bytes) and key.startswith(b"BODY[") and isinstance(value, bytes):
                    return value
        return None

    def header_block(self, uid: int) -> bytes | None:
        """The whole raw header block of message `uid` in the selected folder,
        without setting \\Seen (BODY.PEEK[HEADER]); None when it is gone."""
        with imap_errors(host=self.host):
            data = self.client.fetch([uid], ["BODY.PEEK[HEADER]"])
        for values in data.values():
            for key, value in values.items():
                if isinstance(key, bytes) and key.startswith(b"BODY[") and isinstance(value, bytes):
                    return value
        return None


def parse_appenduid(reply: object) -> Appended:
    """The APPENDUID response code of an APPEND's tagged OK (RFC 4315 §3:
    "A003 OK [APPENDUID 38505 3955] APPEND completed"), the one parser of it."""
    if isinstance(reply, str):
        reply = reply.encode("ascii", "replace")
    found = _APPENDUID.search(reply if isinstance(reply, bytes) else b"")
    if found is None:
        return Appended(None, None)
    return Appended(int(found.group(1)), int(found.group(2)))


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
