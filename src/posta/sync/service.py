"""The sync service: a supervisor that claims accounts and keeps each one current.

One process (`posta sync`) runs one `SyncService`. Its supervisor loop, every few
seconds:

1. claims accounts with a database lease (`SyncLease`): one conditional UPDATE
   `... WHERE expires_at < now OR owner = me`, or an INSERT for an account never
   leased; both are atomic on SQLite and PostgreSQL, so two processes never hold
   one account, and a dead process's accounts are taken over once its leases
   expire (leases.LEASE_SECONDS, well within a minute);
2. renews the leases it holds in one UPDATE; an account whose lease was lost (the
   process stalled past expiry and another took it) has its thread stopped;
3. starts one thread per claimed account (`AccountWorker`).

An account thread connects, runs a full pass (posta.sync.account_pass), then waits for
news on INBOX with IDLE (RFC 2177; re-issued before 29 minutes, here every
IDLE_MAX seconds, with a NOOP after 2 s, 4 s, ... up to SETTLE_MAX for mail that
landed just before an IDLE began) or, where IDLE is missing, NOOP polling (RFC 3501
§6.1.2). Other
folders are resynced every RESYNC_SECONDS, and at once when the user asks ("sync
now": Account.sync_requested_at). On failure it reconnects with exponential
backoff and jitter; ServerBusy (RFC 5530 throttling codes) slows it down further;
repeated AuthenticationFailed pauses the account (sync_state "paused",
last_error_code "auth_failed", last_error_at) until the user asks to sync again.
After an outage a healthy account pauses at most POSTA_SYNC_RECONNECT_CAP, and the
first connection to get back into a server wakes the pauses of the others there
(posta.sync.reconnect).

Push beyond INBOX. IDLE watches only the selected mailbox (RFC 2177 §3), yet mail
also lands elsewhere without the user: server-side filters (Sieve fileinto), spam
filing, the Sent copies of the user's other clients. So each account thread also
runs up to POSTA_IDLE_FOLDERS `FolderWatcher` threads, each with a connection of
its own that EXAMINEs one folder and waits there with IDLE (the same waiting as on
INBOX); on news it brings that folder up to date on its connection and waits
again. The budget is small because servers limit connections per user (Dovecot's
mail_max_userip_connections is 10 by default, Gmail allows 15) and opening a
message whose body is not stored yet takes one short connection more: an account
never holds more than 1 + POSTA_IDLE_FOLDERS connections besides that one.

    account thread ── full pass ──> choose folders ──> start/stop watchers
         │    ▲                     (busiest first)            │
         ▼    │ resync due / "sync now"                        ▼
     IDLE on INBOX                                watcher: connect, EXAMINE
                                                  folder, catch up ──> IDLE
                                                            ▲            │ news
                                                            └── sync ◄───┘

The folders are chosen after every full pass: selectable ones other than INBOX and
Trash (mail reaches Trash only by the user's own hand), the one with the newest
stored message first, ties broken by role (spam, sent, drafts, archive, then the
rest). Watchers no longer chosen are stopped (and joined before new ones start, so
the budget holds while they change); a server without IDLE gets none, its folders
are covered by the resync. A watcher reconnects with backoff on errors and ends on
a refused login (the account thread owns the account's state and pauses it). The
account thread stops and joins its watchers whenever it ends (lease lost,
shutdown, account paused or gone).

One folder is never synced by two connections at once: `FOLDER_LOCKS` holds a lock
per folder, taken by a watcher while it brings its folder up to date (never while
it waits in IDLE) and by the full pass around each folder it looks at.
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
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Case, F, OuterRef, Subquery, Value, When
from imapclient import IMAPClient

from posta.accounts.models import Account, Folder
from posta.mail.models import Location
from posta.mailproto import errors
from posta.mailproto.imap.client import close_quietly, imap_errors
from posta.mailproto.imap.session import Session
from posta.sync import account_pass, bodies, connect, folder_state, leases, reconnect
from posta.sync.reconnect import HOST_WAKEUPS

log = logging.getLogger(__name__)

IDLE_MAX = 25 * 60  # RFC 2177 §3: re-issue IDLE at least every 29 minutes
SETTLE_MAX = 120.0  # longest IDLE between two NOOPs once settled
RESYNC_SECONDS = 300
AUTH_FAILURES_TO_PAUSE = 3
# How long an account thread waits for a watcher it stopped: one IDLE check, DONE
# and LOGOUT, or at worst a command running into the network timeout.
WATCHER_JOIN_SECONDS = 30.0
BODIES_PER_NEWS = 50  # bodies fetched after news, as for INBOX; the rest follow later


# --- one account ----------------------------------------------------------------


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


class _Reconnecting(threading.Thread, abc.ABC):
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


class FolderWatcher(_Reconnecting):
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
                folder_state.sync_folder(session, folder)  # EXAMINEs it: IDLE waits there
        self.failures = 0
        # Bodies of this folder's copies only, on this connection: the account
        # thread mirrors the rest, and the folder stays selected for IDLE.
        bodies.fetch_pending_bodies(
            session, folder.account, limit=BODIES_PER_NEWS, folder_id=folder.pk
        )
        # Should anything have selected another folder, select this one again and
        # look at what arrived in between.
        return session.selected != folder.name and changed_since_stored(session, folder)


class AccountWorker(_Reconnecting):
    """Keeps one account current until `stop` is set (see the module docstring)."""

    def __init__(self, account_id: int, *, timing: Timing) -> None:
        super().__init__(f"posta-sync-{account_id}", account_id=account_id, timing=timing)
        self.auth_failures = 0
        self.handled_request: datetime | None = None
        self.idle_wait = IdleWait(
            timing=timing, stop_event=self.stop_event, leave=self._request_pending
        )
        # Folder id -> its running watcher; the lock guards it against `stop()`,
        # called from the supervisor's thread.
        self.watchers: dict[int, FolderWatcher] = {}
        self.watchers_lock = threading.Lock()
        # Stopped watchers that did not end within WATCHER_JOIN_SECONDS: their
        # connections still count against the budget.
        self.retiring: list[FolderWatcher] = []
        self.chosen: tuple[int, ...] | None = None  # folders chosen at the last full pass

    def stop(self) -> None:
        super().stop()
        with self.watchers_lock:
            for watcher in self.watchers.values():
                watcher.stop()

    def _refused_before(self) -> bool:
        return self.auth_failures > 0

    def _ended(self) -> None:
        with self.watchers_lock:
            ending = list(self.watchers.values())
            self.watchers.clear()
        self._retire(ending)

    def _connected_once(self) -> float | None:
        """Connect, sync, wait for news until something fails; return the pause
        before reconnecting, or None to end the thread (account gone or paused)."""
        close_old_connections()
        account = Account.objects.filter(pk=self.account_id).first()
        if account is None:
            return None
        self.handled_request = account.sync_requested_at
        self.server = reconnect.server_of(account)
        client: IMAPClient | None = None
        try:
            client = connect.open_account(account)
            self._logged_in()
            session = self._full_pass(client, account)
            self.auth_failures = self.failures = 0
            self._watch(session, account)
            return 0.0 if not self.stop_event.is_set() else None
        except errors.SettingsRefused as exc:
            # The failure table's ACCOUNT verdict that retrying cannot change (the
            # secret cannot be decrypted, the host is not allowed): pause until the
            # user fixes the settings.
            account_pass.record_failure(self.account_id, exc, pause=True)
            log.warning("account %s: settings refused (%s)", self.account_id, exc.code)
            return None
        except errors.AuthenticationFailed as exc:
            self.auth_failures += 1
            pause = self.auth_failures >= AUTH_FAILURES_TO_PAUSE
            account_pass.record_failure(self.account_id, exc, pause=pause)
            log.warning("account %s: login refused (%s)", self.account_id, exc.code)
            return None if pause else self._backoff(exc)
        except errors.ServerBusy as exc:
            account_pass.record_failure(self.account_id, exc)
            self.failures += 2  # throttled: slow down more than for a network error
            return self._backoff(exc)
        except errors.MailError as exc:
            account_pass.record_failure(self.account_id, exc)
            log.info("account %s: %s", self.account_id, exc)
            return self._backoff(exc)
        except Exception as exc:
            log.exception("account %s: sync failed", self.account_id)
            return self._backoff(exc)
        finally:
            if client is not None:
                close_quietly(client)

    def _full_pass(
        self, client: IMAPClient, account: Account, *, session: Session | None = None
    ) -> Session:
        """Sync every folder, then choose the folders to watch anew.

        The pass waits for a folder's lock rather than skipping a folder a watcher
        holds: a watcher holds it only while it syncs (never while in IDLE), so the
        wait is short, and the pass stays the safety net for a watcher whose
        connection died silently in IDLE (a dropped NAT mapping shows only at the
        next re-issue). Where the STATUS answer shows no change (CONDSTORE), the
        pass skips the folder anyway without selecting it.
        """
        session = account_pass.sync_account(
            client, account, session=session, folder_guard=FOLDER_LOCKS.syncing
        )
        self._arrange_watchers(session)
        return session

    def _arrange_watchers(self, session: Session) -> None:
        """Stop the watchers no longer chosen (or ended), then start the missing
        ones, never holding more connections than the budget allows."""
        # Read at run time: the setting may differ per process (and per test).
        budget = settings.POSTA_IDLE_FOLDERS if session.idle else 0
        chosen = folders_to_watch(self.account_id, budget=budget)
        self.chosen = tuple(chosen)
        with self.watchers_lock:
            leaving = [
                self.watchers.pop(folder_id)
                for folder_id, watcher in list(self.watchers.items())
                if folder_id not in chosen or not watcher.is_alive()
            ]
        self._retire(leaving)
        with self.watchers_lock:
            room = budget - len(self.watchers) - len(self.retiring)
            for folder_id in [f for f in chosen if f not in self.watchers][: max(room, 0)]:
                if self.stop_event.is_set():
                    return  # stop() has stopped those already running
                watcher = FolderWatcher(self.account_id, folder_id, timing=self.timing)
                self.watchers[folder_id] = watcher
                watcher.start()

    def _retire(self, leaving: list[FolderWatcher]) -> None:
        """Stop and join `leaving` (outside the lock: `stop()` must not wait for it)."""
        for watcher in leaving:
            watcher.stop()
        deadline = time.monotonic() + WATCHER_JOIN_SECONDS
        for watcher in [*self.retiring, *leaving]:
            watcher.join(timeout=max(deadline - time.monotonic(), 0.0))
        self.retiring = [w for w in [*self.retiring, *leaving] if w.is_alive()]

    def _watch(self, session: Session, account: Account) -> None:
        """Wait for changes on INBOX and act on them until stopped or resync is due."""
        last_full = time.monotonic()
        downloading = bodies.bodies_pending(account)
        while not self.stop_event.is_set():
            inbox = Folder.objects.filter(account=account, role=Folder.Role.INBOX).first()
            if inbox is None:
                inbox = Folder.objects.filter(account=account, name__iexact="INBOX").first()
            if inbox is None:
                self.stop_event.wait(self.timing.noop_poll)
                return
            if downloading:
                # The mirror of the bodies continues one step at a time, with a
                # look at INBOX between steps so new mail still shows at once.
                bodies.fetch_pending_bodies(session, account)
                downloading = bodies.bodies_pending(account)
                news = not folder_state.sync_selected(session, inbox) and (
                    changed_since_stored(session, inbox)
                )
            elif session.idle:
                news = self._idle(session, inbox)
            else:
                news = self._noop(session, inbox)
            if self.stop_event.is_set():
                return
            requested = self._sync_requested()
            if requested or time.monotonic() - last_full > self.timing.resync:
                self._full_pass(session.client, account, session=session)
                last_full = time.monotonic()
            elif news:
                if not folder_state.sync_selected(session, inbox):
                    folder_state.sync_folder(session, inbox)
                bodies.fetch_pending_bodies(session, account, limit=50)
                account_pass.record_success(account.pk)

    def _sync_requested(self) -> bool:
        requested = (
            Account.objects.filter(pk=self.account_id)
            .values_list("sync_requested_at", flat=True)
            .first()
        )
        if requested is not None and (
            self.handled_request is None or requested > self.handled_request
        ):
            self.handled_request = requested
            return True
        return False

    def _idle(self, session: Session, inbox: Folder) -> bool:
        """IDLE on INBOX until the server reports something (True), or until it is
        time to look at the database (False)."""
        known = inbox.uidnext
        if folder_state.sync_selected(session, inbox):
            # Stored whatever arrived since the last look, without a SELECT. Mail
            # stored just now still needs its body: the caller fetches it, as for
            # news announced during IDLE (the IDLE would not announce it again).
            if inbox.uidnext != known:
                return True
        elif changed_since_stored(session, inbox):
            return True  # arrived between the last sync and this IDLE
        return self.idle_wait.until_news(session)

    def _noop(self, session: Session, inbox: Folder) -> bool:
        if changed_since_stored(session, inbox):
            return True
        deadline = time.monotonic() + self.timing.noop_poll
        while time.monotonic() < deadline and not self.stop_event.is_set():
            if self._request_pending():
                return False
            self.stop_event.wait(self.timing.idle_check)
        with imap_errors(host=session.host):
            _typ, responses = session.client.noop()
        return bool(responses)

    def _request_pending(self) -> bool:
        requested = (
            Account.objects.filter(pk=self.account_id)
            .values_list("sync_requested_at", flat=True)
            .first()
        )
        return requested is not None and (
            self.handled_request is None or requested > self.handled_request
        )


# --- supervisor -----------------------------------------------------------------


class SyncService:
    """Claims accounts and runs one AccountWorker per claimed account."""

    def __init__(
        self,
        *,
        owner: str | None = None,
        tick: float = 5.0,
        max_accounts: int = 500,
        timing: Timing | None = None,
    ) -> None:
        self.owner = owner or leases.make_owner()
        self.tick = tick
        self.max_accounts = max_accounts
        self.timing = timing or Timing()
        self.workers: dict[int, AccountWorker] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        """Supervise until `stop()`; then stop the threads and release the leases."""
        try:
            while not self.stop_event.is_set():
                self.step()
                self.stop_event.wait(self.tick)
        finally:
            self.shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def step(self) -> None:
        """One supervisor round: reap, renew, claim, start."""
        close_old_connections()
        for account_id, worker in list(self.workers.items()):
            if not worker.is_alive():
                del self.workers[account_id]
                leases.release(self.owner, [account_id])
        held = leases.renew(self.owner, list(self.workers))
        for account_id in [a for a in self.workers if a not in held]:
            log.warning("account %s: lease lost; stopping its thread", account_id)
            self.workers.pop(account_id).stop()
        for account_id in leases.candidate_accounts():
            if len(self.workers) >= self.max_accounts:
                break
            if account_id in self.workers or not leases.try_claim(account_id, self.owner):
                continue
            worker = AccountWorker(account_id, timing=self.timing)
            self.workers[account_id] = worker
            worker.start()

    def shutdown(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        for worker in self.workers.values():
            worker.join(timeout=30)
        leases.release(self.owner, list(self.workers))
        self.workers.clear()
        connection.close()
