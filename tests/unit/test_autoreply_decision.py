"""The one decision, on the rules the Pigeonhole corpus cannot show (the period,
the history, known correspondents, the filters' outcome) and its words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import translation

from posta.rules.autoreply_decision import (
    Envelope,
    History,
    Policy,
    decide,
    delivered_at,
    envelope_address,
)

NOW = datetime(2026, 12, 21, 10, 0, tzinfo=UTC)
HEADERS = [("From", "Bob <bob@example.com>"), ("To", "me@example.org"), ("Subject", "Hi")]
ENVELOPE = Envelope(sender="<bob@example.com>", recipient="me@example.org")


def code(policy: Policy, history: History, envelope: Envelope = ENVELOPE) -> str:
    return decide(HEADERS, envelope, policy, history).code


def test_a_plain_message_gets_a_reply_to_the_envelope_sender() -> None:
    decision = decide(HEADERS, ENVELOPE, Policy(), History(now=NOW, arrived_at=NOW))
    assert (decision.reply, decision.reply_to, decision.addressed_to) == (
        True, "bob@example.com", "me@example.org"
    )
    assert decision.line() == "reply"


@pytest.mark.parametrize(
    ("policy", "history", "expected"),
    [
        (Policy(starts_at=NOW + timedelta(hours=1)), History(arrived_at=NOW), "before_start"),
        (Policy(ends_at=NOW), History(arrived_at=NOW), "after_end"),
        (Policy(ends_at=NOW + timedelta(seconds=1)), History(arrived_at=NOW), "reply"),
        (Policy(days=7), History(last_replied_at=NOW - timedelta(days=6, hours=23), now=NOW),
         "answered"),
        (Policy(days=7), History(last_replied_at=NOW - timedelta(days=7), now=NOW), "reply"),
        (Policy(days=0), History(last_replied_at=NOW - timedelta(hours=23), now=NOW),
         "answered"),
        (Policy(known_only=True), History(), "unknown_sender"),
        (Policy(known_only=True, known=frozenset({"bob@example.com"})), History(), "reply"),
        (Policy(), History(filter_outcome="spam"), "filtered"),
        (Policy(), History(filter_outcome="stopped"), "filtered"),
        (Policy(), History(filter_outcome="moved"), "reply"),
    ],
)
def test_posta_only_rules(policy: Policy, history: History, expected: str) -> None:
    assert code(policy, history) == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [("", "null_sender"), ("<>", "null_sender"), ("bob", "bad_sender"),
     ("<@relay.example:bob@example.com>", "reply")],
)
def test_envelope_senders(sender: str, expected: str) -> None:
    envelope = Envelope(sender=sender, recipient="me@example.org")
    assert code(Policy(), History(), envelope) == expected


def test_no_recipient_no_reply() -> None:
    assert code(Policy(), History(), Envelope(sender="bob@example.com", recipient="")) == (
        "no_recipient"
    )


def test_the_reasons_read_in_italian() -> None:
    decision = decide(
        [*HEADERS, ("List-Id", "<team.example.com>")], ENVELOPE, Policy(), History()
    )
    with translation.override("it"):
        assert decision.line() == (
            "no reply: il messaggio viene da una mailing list (intestazione List-Id)"
        )


def test_helpers() -> None:
    assert envelope_address(' <"a b"@example.com> ') == '"a b"@example.com'
    assert delivered_at([("Received", "from x by y; Mon, 21 Dec 2026 10:00:00 +0000")]) == NOW
    assert delivered_at([("Received", "garbage")]) is None
    assert delivered_at([]) is None
