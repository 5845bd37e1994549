"""Connections that wait for news: IDLE on one folder, reconnecting with backoff.

The shared parts of the sync service's threads (posta.sync.service draws the
whole): `Timing`, the per-folder locks that keep two connections from syncing one
folder at once, the choice of the busiest folders to watch within a connection
budget, `IdleWait` (IDLE with NOOPs at doubling intervals), the reconnecting thread
base class, and `FolderWatcher`, the extra connection that EXAMINEs one folder and
waits there with IDLE (RFC 2177).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Case, F, OuterRef, Subquery, Value, When
from imapclient import IMAPClient

from posta.accounts.models import Account, Folder
from posta.mail.models import Location
from posta.mailproto import errors
from posta.mailproto.imap.client import close_quietly, imap_errors
from posta.mailproto.imap.session import Session
from posta.remote import connect
from posta.sync import bodies, folder_state, reconnect
from posta.sync.reconnect import HOST_WAKEUPS

log = logging.getLogger(__name__)

IDLE_MAX = 25 * 60  # RFC 2177 §3: re-issue IDLE at least every 29 minutes
SETTLE_MAX = 120.0  # longest IDLE between two NOOPs once settled
RESYNC_SECONDS = 300
BODIES_PER_NEWS = 50  # bodies fetched after news, as for INBOX; the rest follow later


@dataclass
class Timing:
    """Intervals of an account thread and its watchers; tests shorten them."""

    idle_check: float = 1.0  # how often IDLE/NOOP waiting looks at stop and "sync now"
    noop_poll: float = 30.0  # NOOP polling interval where IDLE is missing
    resync: float = RESYNC_SECONDS
    idle_max: float = IDLE_MAX
    # A first short IDLE, then a NOOP: mail that landed in the instant before IDLE
    # began may not be announced by it (a Maildir server trusts directory times to
    # the second and falls back to its own slow check), but a NOOP a moment later
    # makes it look again.
    idle_settle: float = 2.0
    backoff_base: float = 2.0
    # Longest random wait of a pause that another connection's login woke: the
    # connections of a server that came back do not all log in in one instant.
    wake_spread: float = 5.0


class FolderLocks:
    """One lock per folder, keyed by Folder id (so per account and folder).

    Whoever brings a folder up to date holds its lock: two connections syncing one
    folder would both fetch the same new UIDs and overwrite each other's stored
    UIDNEXT and HIGHESTMODSEQ with older values.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        # Weak values: a folder's lock lives while someone holds or waits for it.
        self._locks: weakref.WeakValueDictionary[int, threading.Lock] = (
            weakref.WeakValueDictionary()
        )

    def lock_of(self, folder_id: int) -> threading.Lock:
        """The lock of folder `folder_id` (the same object for every caller)."""
        with self._guard:
            lock = self._locks.get(folder_id)
            if lock is None:
                lock = threading.Lock()
                self._locks[folder_id] = lock
            return lock

    @contextlib.contextmanager
    def syncing(self, folder: Folder) -> Iterator[None]:
        """Hold `folder`'s lock. Inside, `folder` carries the state stored by
        whichever connection synced it last, as the engine expects (it fetches
        from the stored UIDNEXT and asks for changes since HIGHESTMODSEQ)."""
        with self.lock_of(folder.pk):
            folder.refresh_from_db()
            yield


FOLDER_LOCKS = FolderLocks()

# Where mail lands without the user, most often first: spam filing, Sent copies of
# the user's other clients, drafts saved elsewhere, then archiving rules.
WATCH_ROLE_ORDER = (Folder.Role.SPAM, Folder.Role.SENT, Folder.Role.DRAFTS, Folder.Role.ARCHIVE)


def folders_to_watch(account_id: int, *, budget: int) -> list[int]:
    """Ids of the (at most `budget`) folders that get a watcher, busiest first.

    Selectable folders other than INBOX (the account's own connection waits there)
    and Trash (mail reaches it only by the user's own hand), ranked by their newest
    stored message, then by role (WATCH_ROLE_ORDER), then by name. One query: the
    newest date per folder is one step down the (folder, -date, -id) index.
    """
    if budget <= 0:
        return []
    newest = Location.objects.filter(folder=OuterRef("pk")).order_by("-date", "-id")
    rank = Case(
        *(When(role=role, then=Value(i)) for i, role in enumerate(WATCH_ROLE_ORDER)),
        default=Value(len(WATCH_ROLE_ORDER)),
    )
    chosen = (
        Folder.objects.filter(account_id=account_id, selectable=True)
        .exclude(role__in=[Folder.Role.INBOX, Folder.Role.TRASH])
        .exclude(name__iexact="INBOX")  # RFC 3501 §5.1: INBOX in any case
        .annotate(newest=Subquery(newest.values("date")[:1]), rank=rank)
        .order_by(F("newest").desc(nulls_last=True), "rank", "name")
        .values_list("pk", flat=True)
    )
    return list(chosen[:budget])


class IdleWait:
    """Waiting in IDLE (RFC 2177) on the folder selected on a connection, until the
    server reports news, the thread is stopped, or `leave()` says to look elsewhere."""

    def __init__(
        self,
        *,
        timing: Timing,
        stop_event: threading.Event,
        leave: Callable[[], bool] | None = None,
    ) -> None:
        self.timing = timing
        self.stop_event = stop_event
        self.leave = leave or (lambda: False)

    def until_news(self, session: Session) -> bool:
        """IDLE until news (True), or until stopped, IDLE_MAX is over or `leave()`
        (False)."""
        client = session.client
        started = time.monotonic()
        step = self.timing.idle_settle
        settle_until = started + step
        with imap_errors(host=session.host):
            while True:
                client.idle()
                try:
                    outcome = self._wait(client, started, settle_until)
                finally:
                    _tag_line, done_responses = client.idle_done()
                if outcome is not None:
                    return outcome or bool(done_responses)
                # A settle period is over: one NOOP, then IDLE again. Each new IDLE
                # has the same blind instant at its start, so the NOOPs continue at
                # doubling intervals (2 s, 4 s, ... up to SETTLE_MAX).
                _typ, noop_responses = client.noop()
                if done_responses or noop_responses:
                    return True
                step = min(step * 2, SETTLE_MAX)
                settle_until = time.monotonic() + step

    def _wait(self, client: IMAPClient, started: float, settle_until: float) -> bool | None:
        """Wait inside IDLE: True on news, False when it is time to leave, None when
        the settle period ends."""
        while not self.stop_event.is_set():
            if client.idle_check(timeout=self.timing.idle_check):
                return True
            now = time.monotonic()
            if now - started > self.timing.idle_max or self.leave():
                return False
            if now >= settle_until:
                return None
        return False


def changed_since_stored(session: Session, folder: Folder) -> bool:
    """EXAMINE `folder` and compare with what is stored: mail that arrived before
    IDLE began is not announced during it (RFC 2177 reports only new events)."""
    raw = session.examine(folder.name)
    return raw.get(b"UIDNEXT") != folder.uidnext or raw.get(b"EXISTS") != folder.message_count


class Reconnecting(threading.Thread, abc.ABC):
    """A thread that keeps one connection up: `_connected_once` until it returns
    None, pausing between attempts for the delay it returns. A pause after an
    outage ends early when another connection gets back into the same server
    (posta.sync.reconnect)."""

    def __init__(self, name: str, *, account_id: int, timing: Timing) -> None:
        super().__init__(name=name, daemon=True)
        self.account_id = account_id
        self.timing = timing
        self.stop_event = threading.Event()
        self.failures = 0
        self.server = ""  # reconnect.server_of the account, set on each attempt
        # Set by stop() and by a wake of the server: ends a pause early.
        self.resume = threading.Event()
        # HOST_WAKEUPS.generation at the last failure when it was an outage (a
        # pause a wake may end), else None.
        self.wake_mark: int | None = None
        self.woken = False  # the last pause was ended by a wake

    def stop(self) -> None:
        self.stop_event.set()
        self.resume.set()

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                delay = self._connected_once()
                if delay is None:
                    return
                self._pause(delay)
        finally:
            self._ended()
            connection.close()

    def _pause(self, delay: float) -> None:
        since, self.wake_mark = self.wake_mark, None
        self.woken = False
        if since is None or not self.server:
            self.stop_event.wait(delay)
            return
        self.woken = HOST_WAKEUPS.pause(self.server, delay, resume=self.resume, since=since)
        self.resume.clear()
        if self.woken:
            spread = min(self.timing.wake_spread, delay)
            self.stop_event.wait(random.uniform(0, spread))  # noqa: S311 - jitter, not a secret

    def _logged_in(self) -> None:
        """After a login: a reconnect on this thread's own timer shows the server is
        back, so the pauses of the other connections there end now."""
        if self.failures and not self.woken:
            HOST_WAKEUPS.wake(self.server, min_interval=float(settings.POSTA_SYNC_RECONNECT_CAP))

    @abc.abstractmethod
    def _connected_once(self) -> float | None:
        """Connect, work until something fails; the pause before the next
        attempt, or None to end the thread."""

    def _ended(self) -> None:
        """Called once as the thread ends, whatever the reason."""

    def _refused_before(self) -> bool:
        """True when a login was refused in the current run of failures."""
        return False

    def _backoff(self, exc: BaseException) -> float:
        """The pause after failure `exc` (posta.sync.reconnect)."""
        kind = reconnect.failure_kind(exc)
        if kind is reconnect.Failure.OUTAGE:
            self.wake_mark = HOST_WAKEUPS.generation(self.server)
        self.failures += 1
        cap = reconnect.cap_for(self.account_id, kind, refused_before=self._refused_before())
        return reconnect.reconnect_delay(
            self.failures,
            base=self.timing.backoff_base,
            cap=cap,
            jitter=random.random(),  # noqa: S311 - jitter, not a secret
        )


class FolderWatcher(Reconnecting):
    """Waits with IDLE on one folder of an account, on a connection of its own, and
    brings the folder up to date whenever the server reports news (see the module
    docstring). Owned, started and stopped by the account's AccountWorker."""

    def __init__(self, account_id: int, folder_id: int, *, timing: Timing) -> None:
        super().__init__(
            f"posta-idle-{account_id}-{folder_id}", account_id=account_id, timing=timing
        )
        self.folder_id = folder_id
        self.idle_wait = IdleWait(timing=timing, stop_event=self.stop_event)
        # Set while the folder is up to date and the connection waits in IDLE:
        # the watcher's health, as the account thread and tests see it.
        self.waiting = threading.Event()

    def run(self) -> None:
        log.info("account %s: folder %s watched with IDLE", self.account_id, self.folder_id)
        super().run()

    def _ended(self) -> None:
        log.info("account %s: folder %s no longer watched", self.account_id, self.folder_id)

    def _connected_once(self) -> float | None:
        close_old_connections()
        account = Account.objects.filter(pk=self.account_id).first()
        folder = Folder.objects.filter(pk=self.folder_id, account_id=self.account_id).first()
        if account is None or folder is None:
            return None
        self.server = reconnect.server_of(account)
        client: IMAPClient | None = None
        try:
            client = connect.open_account(account)
            self._logged_in()
            session = Session.start(client)
            if not session.idle:
                return None  # the account thread's resync covers the folder
            self._watch(session, folder)
            return None
        except (errors.SettingsRefused, errors.AuthenticationFailed) as exc:
            # The account thread records these and pauses the account; retrying here
            # would only add refused logins at the server.
            log.info("account %s: folder %s: %s", self.account_id, self.folder_id, exc.code)
            return None
        except Folder.DoesNotExist:
            return None  # deleted by the full pass meanwhile
        except errors.ServerBusy as exc:
            log.info("account %s: folder %s: %s", self.account_id, self.folder_id, exc.code)
            self.failures += 2  # throttled (RFC 5530): slow down more
            return self._backoff(exc)
        except errors.MailError as exc:
            # The code only: the detail may name the folder.
            log.info("account %s: folder %s: %s", self.account_id, self.folder_id, exc.code)
            return self._backoff(exc)
        except Exception as exc:
            log.exception("account %s: folder %s: watch failed", self.account_id, self.folder_id)
            return self._backoff(exc)
        finally:
            self.waiting.clear()
            if client is not None:
                close_quietly(client)

    def _watch(self, session: Session, folder: Folder) -> None:
        """EXAMINE the folder, catch up, IDLE until news, catch up again, until
        stopped."""
        # A plain EXAMINE (RFC 3501 §6.3.2: read-only, so \Seen and \Recent stay as
        # they are) lets sync_selected catch up without selecting again.
        session.examine(folder.name)
        news = True  # a new connection: whatever came since the last look
        while not self.stop_event.is_set():
            if news:
                news = self._catch_up(session, folder)
            else:
                self.waiting.set()
                news = self.idle_wait.until_news(session)

    def _catch_up(self, session: Session, folder: Folder) -> bool:
        """Bring the folder up to date and leave it selected for IDLE; True when
        something arrived meanwhile that IDLE would not announce."""
        with FOLDER_LOCKS.syncing(folder):
            if not folder_state.sync_selected(session, folder):
                folder_state.sync_folder(session, folder, source="idle")  # EXAMINEs it for IDLE
        self.failures = 0
        # Bodies of this folder's copies only, on this connection: the account
        # thread mirrors the rest, and the folder stays selected for IDLE.
        bodies.fetch_pending_bodies(
            session, folder.account, limit=BODIES_PER_NEWS, folder_id=folder.pk
        )
        # Should anything have selected another folder, select this one again and
        # look at what arrived in between.
        return session.selected != folder.name and changed_since_stored(session, folder)
