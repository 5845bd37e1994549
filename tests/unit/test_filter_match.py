"""Posta's matcher (posta.mailproto.filtering.match) where it once disagreed with
Pigeonhole (tests/integration/test_filters_differential.py found each case)."""

from __future__ import annotations

from posta.mailproto.filtering import match
from posta.mailproto.filtering.spec import Action, Condition, FilterRule


def view(headers: str, body: str = "Ciao\r\n") -> match.MailView:
    raw = (headers.replace("\n", "\r\n") + "\r\n" + body).encode()
    return match.MailView(raw, size=len(raw))


def rule(*conditions: Condition, actions: tuple[Action, ...] = (Action("seen"),),
         **options: bool) -> FilterRule:
    return FilterRule(conditions=conditions, actions=actions, **options)


def test_a_field_without_any_address_is_its_whole_raw_value() -> None:
    # Pigeonhole's address test reads "undisclosed-recipients:;" as one value.
    message = view("From: a@example.test\nCc: undisclosed-recipients:;\n")
    assert message.addresses(["cc"]) == ["undisclosed-recipients:;"]
    assert match.matches(rule(Condition("cc", "begins", "")), message)
    assert match.matches(rule(Condition("cc", "is", "UNDISCLOSED-recipients:;")), message)
    assert message.addresses(["from"]) == ["a@example.test"]


def test_names_without_a_domain_are_skipped_beside_real_addresses() -> None:
    message = view("To: Rossi, Mario <m@acme.it>\nCc: undisclosed-recipients:;, d@w.it\n")
    assert message.addresses(["to"]) == ["m@acme.it"]
    assert message.addresses(["cc"]) == ["d@w.it"]


def test_an_undecodable_name_alone_stays_encoded() -> None:
    message = view("From: =?utf-8?q?Jos=C3=A9?=\n")
    assert message.addresses(["from"]) == ["=?utf-8?q?Jos=C3=A9?="]


def test_a_move_into_a_folder_already_copied_to_makes_the_copy_a_move() -> None:
    rules = [
        rule(actions=(Action("copy", folder="Clienti"),)),
        rule(actions=(Action("flag"), Action("move", folder="Clienti"))),
    ]
    plan = match.plan(rules, view("Subject: x\n"))
    assert not plan.keep
    assert plan.filings == [match.Filing("Clienti", frozenset({"\\Flagged"}), "move")]


def test_a_second_filing_gives_the_folder_the_later_flags() -> None:
    # Pigeonhole stores once and merges the flags of the later fileinto.
    rules = [
        rule(actions=(Action("flag"), Action("copy", folder="Copie"), Action("move", folder="X"))),
        rule(actions=(Action("seen"), Action("move", folder="Copie"))),
    ]
    plan = match.plan(rules, view("Subject: x\n"))
    assert plan.filings == [
        match.Filing("Copie", frozenset({"\\Seen", "\\Flagged"}), "move"),
        match.Filing("X", frozenset({"\\Flagged"}), "move"),
    ]


def test_an_ascii_value_ignores_ascii_case_only() -> None:
    """The writer compares an ASCII value with i;ascii-casemap (RFC 4790 §9.2),
    which folds A-Z and nothing else: a Kelvin sign is no "k", a long s no "s"."""
    message = view("X-Tag: \u212a\nSubject: \u017fale SALE\n")
    assert not match.matches(rule(Condition("header", "is", "k", header="X-Tag")), message)
    assert match.matches(rule(Condition("header", "is", "\u212a", header="X-Tag")), message)
    assert not match.matches(rule(Condition("subject", "begins", "sale")), message)
    assert match.matches(rule(Condition("subject", "ends", "sale")), message)


def test_a_value_with_other_cased_letters_folds_them() -> None:
    message = view("Subject: =?utf-8?q?CITT=C3=80_=CE=A3=CE=99?=\n")
    assert match.matches(rule(Condition("subject", "contains", "città σι")), message)
    assert not match.matches(
        rule(Condition("subject", "contains", "città"), case_sensitive=True), message
    )
