"""Subjects and References of replies and forwards: one set of rules, posta.mailproto's
(RFC 5322 §3.6.4-3.6.5, RFC 5537 §3.4.4), used by the drafts the mail app prepares."""

from __future__ import annotations

import pytest
from django.utils import timezone

from posta.accounts.models import Account
from posta.mail import replies
from posta.mail.models import Message
from posta.mailproto.mime import compose
from posta.users.models import User


@pytest.mark.parametrize(
    ("original", "reply"),
    [
        ("Offer", "Re: Offer"),
        ("Re: Offer", "Re: Offer"),
        ("Re: Re: Offer", "Re: Offer"),
        ("RE: re: Offer", "Re: Offer"),
        ("Re[2]: Offer", "Re: Offer"),
        ("R: Offerta", "Re: Offerta"),  # Italian clients (Outlook in Italian)
        ("AW: Angebot", "Re: Angebot"),
        ("SV: VS: Tilbud", "Re: Tilbud"),
        ("  Re:Offer  ", "Re: Offer"),
        ("Rebate", "Re: Rebate"),  # a word starting with "re" is not a prefix
        ("", "Re: "),
    ],
)
def test_reply_subject(original: str, reply: str) -> None:
    assert compose.reply_subject(original) == reply


@pytest.mark.parametrize(
    ("original", "forward"),
    [
        ("Offer", "Fwd: Offer"),
        ("Fwd: Offer", "Fwd: Offer"),
        ("FW: Offer", "FW: Offer"),
        ("I: Offerta", "I: Offerta"),  # Italian "Inoltro"
        ("Inoltro: Offerta", "Inoltro: Offerta"),
        ("WG: Angebot", "WG: Angebot"),
        ("Re: Offer", "Fwd: Re: Offer"),
        ("Information", "Fwd: Information"),  # "I" only as a prefix with its colon
    ],
)
def test_forward_subject(original: str, forward: str) -> None:
    assert compose.forward_subject(original) == forward


def test_references_follow_the_parent() -> None:
    assert compose.reply_references([], "", "p@x") == ["p@x"]
    assert compose.reply_references([], "a@x", "p@x") == ["a@x", "p@x"]
    # References win over In-Reply-To; a repeated id is written once.
    assert compose.reply_references(["r@x", "a@x"], "b@x", "a@x") == ["r@x", "a@x"]


def test_long_references_keep_the_root_and_the_closest_parents() -> None:
    chain = [f"{n:04d}.{'x' * 40}@example.test" for n in range(60)]
    refs = compose.reply_references(chain[:-1], "", chain[-1])
    written = " ".join(f"<{ref}>" for ref in refs)
    assert len(written) <= compose.MAX_REFERENCES_LENGTH
    assert refs[0] == chain[0]
    assert refs[-3:] == chain[-3:]
    # What is dropped is the oldest after the root: the rest stays in order.
    assert refs[1:] == chain[len(chain) - len(refs) + 1:]


def test_short_chains_are_never_trimmed_below_four() -> None:
    huge = ["a" * 400 + "@x", "b" * 400 + "@x", "c" * 400 + "@x", "d" * 400 + "@x"]
    assert compose.trim_references(huge) == huge


@pytest.fixture
def stored_message() -> Message:
    user = User.objects.create(username="anna", email="anna@example.test")
    Account.objects.create(
        user=user, username="anna@example.test", email="anna@example.test",
        description="Anna", imap_host="imap.example.test", smtp_host="smtp.example.test",
        is_main=True,
    )
    return Message.objects.create(
        user=user, identity="i1", message_id="p@example.test", subject="R: RE: Offerta",
        from_name="Bruno", from_email="bruno@example.test", date=timezone.now(),
        in_reply_to="a@example.test", references=["root@example.test", "a@example.test"],
        snippet="Hello",
    )


@pytest.mark.django_db
def test_a_prepared_reply_uses_the_mailproto_rules(stored_message: Message) -> None:
    user = stored_message.user
    row = replies.prepare_reply(user, stored_message).outgoing
    assert row.subject == compose.reply_subject(stored_message.subject) == "Re: Offerta"
    assert row.in_reply_to == "p@example.test"
    assert row.references == compose.reply_references(
        stored_message.references, stored_message.in_reply_to, stored_message.message_id
    )
    assert row.references == ["root@example.test", "a@example.test", "p@example.test"]


@pytest.mark.django_db
def test_a_prepared_forward_uses_the_mailproto_rules(stored_message: Message) -> None:
    user = stored_message.user
    Message.objects.filter(pk=stored_message.pk).update(subject="I: Offerta")
    stored_message.refresh_from_db()
    row = replies.prepare_forward(user, stored_message).outgoing
    assert row.subject == "I: Offerta"
