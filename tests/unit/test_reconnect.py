"""The reconnect policy after a failure, and waking the pauses of one server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from posta.mailproto import errors, failures
from posta.mailproto.failures import Verdict
from posta.sync import reconnect
from posta.sync.reconnect import Failure, HostWakeups

BASE = 2.0  # the service's default Timing.backoff_base
CAP = 60.0  # POSTA_SYNC_RECONNECT_CAP's default


def pauses(failures: int, *, cap: float | None, jitter: float) -> list[float]:
    return [
        reconnect.reconnect_delay(n, base=BASE, cap=cap, jitter=jitter)
        for n in range(1, failures + 1)
    ]


def lag_after_outage(outage: float, *, cap: float | None, jitter: float) -> float:
    """Seconds from the server's return to the first attempt after it, for a
    connection that dropped when the outage began and retried on the policy."""
    clock, failures = 0.0, 0
    while clock < outage:
        failures += 1
        clock += reconnect.reconnect_delay(failures, base=BASE, cap=cap, jitter=jitter)
    return clock - outage


def test_uncapped_backoff_doubles_up_to_fifteen_minutes() -> None:
    longest = pauses(12, cap=None, jitter=0.999999)
    assert [round(p) for p in longest[:6]] == [4, 8, 16, 32, 64, 128]
    assert round(longest[-1]) == reconnect.MAX_BACKOFF
    shortest = pauses(12, cap=None, jitter=0.0)
    assert [round(p) for p in shortest[:3]] == [2, 4, 8]
    assert shortest[-1] == reconnect.MAX_BACKOFF / 2


def test_a_healthy_outage_pause_stays_within_the_cap() -> None:
    for jitter in (0.0, 0.5, 0.999999):
        for pause in pauses(30, cap=CAP, jitter=jitter):
            assert pause <= CAP
    # Once capped, jitter still spreads the connections: half the cap to all of it.
    assert pauses(10, cap=CAP, jitter=0.0)[-1] == CAP / 2
    # A cap above the ceiling changes nothing.
    assert pauses(15, cap=10 * reconnect.MAX_BACKOFF, jitter=0.5) == pauses(
        15, cap=None, jitter=0.5
    )


@pytest.mark.parametrize("outage", [30.0, 90.0, 300.0, 1200.0])
def test_after_an_outage_a_healthy_connection_retries_within_the_cap(outage: float) -> None:
    for jitter in (0.0, 0.3, 0.999999):
        assert lag_after_outage(outage, cap=CAP, jitter=jitter) <= CAP
    # Without the cap the longest lag grows with the outage (the testing report's
    # 112 s after a 90 s outage is one such case).
    if outage >= 300:
        assert lag_after_outage(outage, cap=None, jitter=0.999999) > CAP


def test_failures_are_classified_by_what_they_say_about_the_server() -> None:
    assert reconnect.failure_kind(errors.ConnectionRefused("x")) is Failure.OUTAGE
    assert reconnect.failure_kind(errors.ConnectTimeout("x")) is Failure.OUTAGE
    assert reconnect.failure_kind(errors.TemporaryNetworkError("x")) is Failure.OUTAGE
    assert reconnect.failure_kind(errors.HostNotFound("x")) is Failure.OUTAGE
    assert reconnect.failure_kind(errors.ServerBusy("x")) is Failure.THROTTLED
    assert reconnect.failure_kind(errors.AuthenticationFailed("x")) is Failure.REFUSED
    assert reconnect.failure_kind(errors.TlsRequired("x")) is Failure.REFUSED
    assert reconnect.failure_kind(errors.CertificateError("x")) is Failure.REFUSED
    assert reconnect.failure_kind(errors.SettingsRefused("x")) is Failure.REFUSED
    assert reconnect.failure_kind(errors.ProtocolError("x")) is Failure.OTHER
    assert reconnect.failure_kind(RuntimeError("bug")) is Failure.OTHER


def _subclasses(cls: type[errors.MailError]) -> list[type[errors.MailError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _subclasses(child))]


def test_every_failure_kind_follows_the_failure_table() -> None:
    for cls in _subclasses(errors.MailError):
        exc = cls.__new__(cls)  # some take other arguments; the class is what counts
        rule = failures.rule_for_error(exc)
        kind = reconnect.failure_kind(exc)
        if rule.slow_down:
            assert kind is Failure.THROTTLED, cls
        elif rule.verdict is Verdict.RETRY:
            assert kind is Failure.OUTAGE, cls
        elif rule.verdict is Verdict.ACCOUNT:
            assert kind is Failure.REFUSED, cls
        else:
            assert kind is Failure.OTHER, cls


def test_healthy_means_a_recent_completed_sync() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert reconnect.is_healthy(now - timedelta(minutes=5), now=now)
    assert reconnect.is_healthy(now - reconnect.HEALTHY_WINDOW, now=now)
    assert not reconnect.is_healthy(now - reconnect.HEALTHY_WINDOW - timedelta(seconds=1), now=now)
    assert not reconnect.is_healthy(None, now=now)


def pausing_thread(
    wakeups: HostWakeups, server: str, *, since: int
) -> tuple[threading.Thread, threading.Event, list[bool]]:
    resume = threading.Event()
    outcome: list[bool] = []
    thread = threading.Thread(
        target=lambda: outcome.append(wakeups.pause(server, 60.0, resume=resume, since=since)),
        daemon=True,
    )
    thread.start()
    return thread, resume, outcome


def wait_pausing(wakeups: HostWakeups, server: str, count: int) -> None:
    done = threading.Event()
    for _ in range(500):
        if wakeups.pausing(server) == count:
            return
        done.wait(0.01)
    raise AssertionError(f"{wakeups.pausing(server)} pausing on {server}, not {count}")


def test_a_wake_ends_the_pauses_on_that_server_only() -> None:
    wakeups = HostWakeups()
    one, _r1, out_one = pausing_thread(wakeups, "mail.test:993", since=0)
    two, _r2, out_two = pausing_thread(wakeups, "mail.test:993", since=0)
    other, other_resume, out_other = pausing_thread(wakeups, "other.test:993", since=0)
    wait_pausing(wakeups, "mail.test:993", 2)
    wait_pausing(wakeups, "other.test:993", 1)
    assert wakeups.wake("mail.test:993", min_interval=0.0) == 2
    one.join(timeout=5)
    two.join(timeout=5)
    assert out_one == [True] and out_two == [True]
    assert wakeups.pausing("mail.test:993") == 0
    assert other.is_alive() and wakeups.pausing("other.test:993") == 1
    other_resume.set()  # the thread's own stop: not a wake
    other.join(timeout=5)
    assert out_other == [False]


def test_a_wake_between_the_failure_and_the_pause_is_not_missed() -> None:
    wakeups = HostWakeups()
    mark = wakeups.generation("mail.test:993")  # taken when the connection failed
    assert wakeups.wake("mail.test:993", min_interval=0.0) == 0  # nobody pausing yet
    resume = threading.Event()
    assert wakeups.pause("mail.test:993", 60.0, resume=resume, since=mark)
    # A later failure takes a new mark: the old wake does not end its pause.
    later, later_resume, outcome = pausing_thread(
        wakeups, "mail.test:993", since=wakeups.generation("mail.test:993")
    )
    wait_pausing(wakeups, "mail.test:993", 1)
    later_resume.set()
    later.join(timeout=5)
    assert outcome == [False]


def test_a_server_is_woken_at_most_once_per_interval() -> None:
    wakeups = HostWakeups()
    assert wakeups.wake("mail.test:993", min_interval=3600.0) == 0
    thread, _resume, outcome = pausing_thread(
        wakeups, "mail.test:993", since=wakeups.generation("mail.test:993")
    )
    wait_pausing(wakeups, "mail.test:993", 1)
    assert wakeups.wake("mail.test:993", min_interval=3600.0) == 0  # too soon
    assert thread.is_alive()
    assert wakeups.wake("mail.test:993", min_interval=0.0) == 1
    thread.join(timeout=5)
    assert outcome == [True]
