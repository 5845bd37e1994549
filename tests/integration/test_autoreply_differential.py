"""Generated messages: Posta's out-of-office `decide` answers exactly the
messages Pigeonhole's vacation answers.

The test Dovecot runs the writer's vacation script (posta.mailproto.sieve.vacation)
at LMTP delivery and sends its replies to the test SMTP server; each batch is
several messages over every RFC 3834 / RFC 5230 condition (Auto-Submitted
values and case, List-* fields, Precedence, X-Auto-Response-Suppress, system
senders, my own addresses and aliases, messages not addressed to me, the null
sender, a sender written to twice within :days). A message got Pigeonhole's
reply when one naming it in In-Reply-To reached the SMTP server.

Posta is stricter than Pigeonhole on purpose in the places listed in
`deliberate` (the issue's senders and fields never answered; each also in
tests/integration/test_autoreply_agreement.py); there Pigeonhole must answer,
so the list cannot hide a disagreement.
"""

from __future__ import annotations

import itertools
import os
import smtplib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from posta.mailproto.sieve.vacation import Vacation, render_vacation, script_of
from posta.rules import autoreply_decision as ar
from tests.differential_harness import Mailbox, install, open_mailbox
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.slow

ALIAS = "alias@example.org"
OTHER = "carol@example.net"
AUTO_SUBMITTED = ["no", "No", "NO", "no (by a person)", "auto-replied", "Auto-Generated",
                  "auto-notified", "", "yes"]
LIST_FIELDS = ["List-Id", "List-Unsubscribe", "List-Post", "List-Help", "List-Archive",
               "List-Owner", "List-Subscribe", "List-Unsubscribe-Post", "List-ID"]
PRECEDENCE = ["bulk", "junk", "list", "BULK", "Junk", "first-class", "normal", "  bulk  "]
SUPPRESS = ["All", "OOF", "oof", "AutoReply", "DR", "DR, RN", "DR, OOF", "None", "all"]
PERSONS = ["bob", "Bob.Smith", "anna+tag", "o'neil"]
ROBOTS = ["MAILER-DAEMON", "mailer-daemon", "owner-dev", "OWNER-dev", "dev-request",
          "dev-REQUEST", "listserv", "LISTSERV", "majordomo", "postmaster", "noreply",
          "no-reply", "donotreply"]
# Pigeonhole's own list (cmd-vacation.c `_list_headers`).
PIGEONHOLE_LISTS = {"list-id", "list-owner", "list-subscribe", "list-post", "list-unsubscribe",
                    "list-help", "list-archive"}
POSTA_ONLY_SENDERS = {"noreply", "no-reply", "donotreply", "do-not-reply", "postmaster"}

_batches = itertools.count()


@dataclass
class Sent:
    """A message of a batch and the envelope it went in with."""

    case: str
    sender: str
    raw: bytes


@st.composite
def recipients(draw: st.DrawFn, me: str, *, mine: bool) -> list[bytes]:
    """Address fields naming me or my alias (in any case, among others, with
    encoded display names) or, with `mine` false, only others or a group."""
    if mine:
        box = draw(st.sampled_from([me, me.upper(), ALIAS, ALIAS.upper()]))
        field = draw(st.sampled_from(["To", "Cc", "Bcc", "Resent-To", "Resent-Cc"]))
    else:
        box = draw(st.sampled_from([OTHER, "undisclosed-recipients:;", f"x{me}"]))
        field = draw(st.sampled_from(["To", "Cc", "Reply-To", "X-Original-To"]))
    shown = draw(st.sampled_from(["", "Me", "=?utf-8?q?Caf=C3=A9?="]))
    if shown and "@" in box:
        box = f"{shown} <{box}>"
    fields = [f"{field}: {box}".encode()]
    if draw(st.booleans()):
        fields.append(f"Cc: Team: {OTHER}, x@example.net;".encode())
    return fields


FEATURES = ["none", "none", "auto-submitted", "list", "precedence", "suppress", "robot",
            "own", "null", "not addressed", "repeat"]


def _sender(draw: st.DrawFn, feature: str, me: str, domain: str, earlier: list[str]) -> str:
    if feature == "repeat" and earlier:
        sender = draw(st.sampled_from(earlier))
        return draw(st.sampled_from([sender, sender.upper()]))
    if feature == "robot":
        return f"{draw(st.sampled_from(ROBOTS))}@{domain}"
    if feature == "own":
        return draw(st.sampled_from([me, ALIAS, me.upper()]))
    if feature == "null":
        return ""
    return f"{draw(st.sampled_from(PERSONS))}@{domain}"


@st.composite
def message(draw: st.DrawFn, case: str, me: str, batch: int, earlier: list[str]) -> Sent:
    """A message from a person to me with one feature (sometimes two) that may
    stop the reply, so each check is put to the test alone."""
    features = {draw(st.sampled_from(FEATURES)) for _ in range(draw(st.sampled_from([1, 1, 2])))}
    feature = next(iter(features & {"repeat", "robot", "own", "null"}), "none")
    sender = _sender(draw, feature, me, f"b{batch}.example.com", earlier)
    fields = [f"X-Posta-Case: {case}".encode(), f"From: Sender <{sender or OTHER}>".encode()]
    fields += draw(recipients(me, mine="not addressed" not in features))
    for name, values, wanted in (
        ("Auto-Submitted", AUTO_SUBMITTED, "auto-submitted"),
        ("Precedence", PRECEDENCE, "precedence"),
        ("X-Auto-Response-Suppress", SUPPRESS, "suppress"),
    ):
        if wanted in features:
            fields.append(f"{name}: {draw(st.sampled_from(values))}".encode())
    if "list" in features:
        fields.append(f"{draw(st.sampled_from(LIST_FIELDS))}: <dev.example.net>".encode())
    if draw(st.booleans()):
        fields.append(f"Return-Path: <{sender}>".encode())
    fields += [b"Subject: Meeting", f"Message-ID: <{case}@example.com>".encode(),
               b"Date: Mon, 30 Nov 2026 09:00:00 +0100", b"MIME-Version: 1.0",
               b"Content-Type: text/plain; charset=utf-8"]
    return Sent(case, sender, b"\r\n".join(fields) + b"\r\n\r\nFree on Monday?\r\n")


def deliberate(decision: ar.Decision, raw: bytes) -> bool:
    """Posta refuses, Pigeonhole answers, on purpose (the issue's list)."""
    code, params = decision.code, decision.params
    if code == "system_sender":
        local = params["address"].rpartition("@")[0]
        return local.lower() in POSTA_ONLY_SENDERS or local != local.lower()
    if code == "suppressed":  # "AutoReply" asks for none (MS-OXCMAIL), and any case
        return not ({t.strip() for t in params["value"].split(",")} & {"All", "OOF"})
    if code == "mailing_list":  # any List-* field (RFC 2369, RFC 8058)
        return params["field"].lower() not in PIGEONHOLE_LISTS
    if code == "precedence":  # read without surrounding blanks
        return f"Precedence: {params['value']}\r\n".encode() not in raw
    return False


@pytest.fixture
def answering(
    dovecot_factory: Callable[..., DovecotServer], smtp_server: SmtpServer
) -> Iterator[tuple[Mailbox, SmtpServer]]:
    dovecot = dovecot_factory(extra_config=f"submission_host = 127.0.0.1:{smtp_server.port}")
    with open_mailbox(dovecot) as box:
        vacation = Vacation(body="Away until Monday.", subject="Away",
                            from_address=box.user.name, addresses=(ALIAS,), days=1)
        install(box, script_of(render_vacation(vacation, with_dates=False)))
        yield box, smtp_server


def _deliver(box: Mailbox, sent: Sent) -> None:
    with smtplib.LMTP("127.0.0.1", box.dovecot.lmtp_port, timeout=30) as lmtp:
        assert not lmtp.sendmail(sent.sender, [box.user.name], sent.raw)


def _answered(smtp: SmtpServer, marker: str) -> set[str]:
    """The cases Pigeonhole replied to, once the marker's reply is in: delivery
    is sequential and each reply goes out before LMTP says done."""
    for _ in range(300):
        replied = {
            str(m.message().get("In-Reply-To", "")).strip("<>").partition("@")[0]
            for m in smtp.messages
        }
        if marker in replied:
            return replied - {marker}
        time.sleep(0.1)
    raise AssertionError(f"no reply to the marker {marker}")


@settings(max_examples=int(os.environ.get("POSTA_DIFFERENTIAL_EXAMPLES", "100")), deadline=None,
          derandomize=not os.environ.get("POSTA_DIFFERENTIAL_EXAMPLES"),
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_posta_answers_exactly_what_pigeonhole_answers(
    answering: tuple[Mailbox, SmtpServer], data: Any
) -> None:
    box, smtp = answering
    me = box.user.name
    batch = next(_batches)
    smtp.clear()
    sent: list[Sent] = []
    for n in range(data.draw(st.integers(3, 8), label="count")):
        earlier = [s.sender for s in sent if s.sender]
        sent.append(data.draw(message(f"b{batch}m{n}", me, batch, earlier), label=f"m{n}"))
    marker = Sent(f"b{batch}marker", f"marker@b{batch}.example.com",
                  f"X-Posta-Case: b{batch}marker\r\nFrom: marker@b{batch}.example.com\r\n"
                  f"To: {me}\r\nSubject: marker\r\nMessage-ID: <b{batch}marker@example.com>"
                  "\r\n\r\nmarker\r\n".encode())
    for one in [*sent, marker]:
        _deliver(box, one)
    theirs = _answered(smtp, marker.case)

    policy = ar.Policy(addresses=(ALIAS,), days=1)
    now = datetime.now(UTC)
    replied_at: dict[str, datetime] = {}
    disagreements = []
    for one in sent:
        sender = ar.normalized(one.sender)
        decision = ar.decide(
            ar.headers_of(one.raw), ar.Envelope(sender=one.sender, recipient=me), policy,
            ar.History(last_replied_at=replied_at.get(sender), now=now),
        )
        pigeonhole = one.case in theirs
        if decision.reply:
            replied_at[sender] = now
        if not decision.reply and pigeonhole and deliberate(decision, one.raw):
            # The sender did get Pigeonhole's reply: its :days run from it.
            replied_at[sender] = now
            event(f"Posta stricter: {decision.code}")
            continue
        event(f"agreed: {'reply' if decision.reply else decision.code}")
        if decision.reply != pigeonhole:
            disagreements.append((one.sender, decision.line(), pigeonhole, one.raw.decode()))
    assert not disagreements, disagreements
