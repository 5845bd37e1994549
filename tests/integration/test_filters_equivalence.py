"""The two executors agree: every condition, operator and action shape, run by
the test Dovecot's Pigeonhole at LMTP delivery (Posta's script uploaded through
ManageSieve) and by Posta's own executor (ManageSieve off for that account),
leaves each message in the same folders with the same flags.

Each case is one rule, tagged by a unique subject marker, with messages that
match it and messages that do not; a few cases have several rules (stop, the
order of flags and moves)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest

from posta.rules.filter_models import FilterServer
from tests.filters_harness import (
    add_folders,
    run_posta,
    save_rule,
    server_state,
    set_server_side,
    use_test_port,
)
from tests.integration.test_sync_checker import make_account
from tests.servers.dovecot import DovecotServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def mail(subject: str, *, from_: str = "Alice <alice@example.test>",
         to: str = "Bob <bob@example.test>", body: str = "Hello\n",
         attachment: bool = False, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = from_
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    for key, value in headers.items():
        msg[key.replace("_", "-")] = value
    msg.set_content(body)
    if attachment:
        msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf",
                           filename="fattura.pdf")
    return msg.as_bytes()


def raw(subject_header: str, *, from_header: str = "Alice <alice@example.test>") -> bytes:
    return (
        f"From: {from_header}\r\nTo: bob@example.test\r\nSubject: {subject_header}\r\n"
        "Date: Mon, 02 Mar 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nCiao\r\n"
    ).encode()


def tag(n: int) -> dict[str, Any]:
    return {"field": "subject", "op": "contains", "value": f"[eq{n:02d}]"}


def c(field: str, op: str, value: str = "", **more: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value, **more}


MOVE = {"kind": "move", "folder": "Clienti/Acme"}
MOVE2 = {"kind": "move", "folder": "Clienti"}
COPY = {"kind": "copy", "folder": "Copie"}
SEEN = {"kind": "seen"}
FLAG = {"kind": "flag"}
TRASH = {"kind": "trash"}
SPAM = {"kind": "spam"}
LISTS = {"kind": "move", "folder": "Liste"}

# (rules: [(conditions, actions, options)], messages)
CASES: list[tuple[list[tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]],
                  list[bytes]]] = []


def case(n: int, condition: dict[str, Any], action: dict[str, Any], messages: list[bytes],
         **options: Any) -> None:
    CASES.append(([([tag(n), condition], [action], options)], messages))


case(1, c("from", "contains", "@acme.it"), MOVE, [
    mail("[eq01] a", from_="Mario Rossi <mario@acme.it>"), mail("[eq01] b")])
case(2, c("from", "not_contains", "@acme.it"), FLAG, [
    mail("[eq02] a", from_="mario@acme.it"), mail("[eq02] b")])
case(3, c("from", "is", "mario@acme.it"), SEEN, [
    mail("[eq03] a", from_="Mario <Mario@Acme.it>"),
    mail("[eq03] b", from_="mario@acme.it.evil.example")])
case(4, c("from", "is_not", "mario@acme.it"), COPY, [
    mail("[eq04] a", from_="mario@acme.it"), mail("[eq04] b")])
case(5, c("from", "begins", "mario@"), TRASH, [
    mail("[eq05] a", from_="mario@acme.it"), mail("[eq05] b", from_="Mario <rossi@acme.it>")])
case(6, c("from", "ends", "@acme.it"), SPAM, [
    mail("[eq06] a", from_="x <y@acme.it>"), mail("[eq06] b", from_="y@acme.it.example")])
case(7, c("from", "matches", "m*o@acme.??"), MOVE2, [
    mail("[eq07] a", from_="mario@acme.it"), mail("[eq07] b", from_="mario@acme.com")])
case(8, c("to", "contains", "sales@"), MOVE, [
    mail("[eq08] a", to="Sales <sales@example.test>"), mail("[eq08] b")])
case(9, c("cc", "is", "boss@example.test"), FLAG, [
    mail("[eq09] a", Cc="Boss <boss@example.test>"), mail("[eq09] b")])
case(10, c("to_or_cc", "contains", "team@"), SEEN, [
    mail("[eq10] a", Cc="team@example.test"), mail("[eq10] b", to="team@example.test"),
    mail("[eq10] c")])
case(11, c("subject", "is", "[eq11] Fattura"), MOVE, [
    mail("[eq11] Fattura"), mail("[eq11] Fattura 2")])
case(12, c("subject", "begins", "[eq12] Re:"), COPY, [
    mail("[eq12] Re: ciao"), mail("[eq12] Fwd: ciao")])
case(13, c("subject", "ends", "urgent"), FLAG, [
    mail("[eq13] very URGENT"), mail("[eq13] urgent not")])
case(14, c("subject", "matches", "[eq14] * order ?"), SEEN, [
    mail("[eq14] your order 7"), mail("[eq14] your order 77")])
case(15, c("header", "contains", "<dev.lists.example.test>", header="List-Id"), LISTS, [
    mail("[eq15] a", List_Id="Developers <dev.lists.example.test>"), mail("[eq15] b")])
case(16, c("header", "is", "1", header="X-Priority"), FLAG, [
    mail("[eq16] a", X_Priority="1"), mail("[eq16] b", X_Priority="3")])
case(17, c("body", "contains", "invoice number"), MOVE, [
    mail("[eq17] a", body="Here is the Invoice Number 42\n"), mail("[eq17] b")])
case(18, c("body", "not_contains", "unsubscribe"), SEEN, [
    mail("[eq18] a", body="click to unsubscribe\n"), mail("[eq18] b")])
case(19, {"field": "size", "op": "over", "value": "20"}, MOVE2, [
    mail("[eq19] big", body="x" * 40000 + "\n"), mail("[eq19] small")])
case(20, {"field": "size", "op": "under", "value": "4"}, FLAG, [
    mail("[eq20] big", body="y" * 20000 + "\n"), mail("[eq20] small")])
case(21, {"field": "attachment", "op": "yes"}, MOVE, [
    mail("[eq21] a", attachment=True), mail("[eq21] b")])
case(22, {"field": "attachment", "op": "no"}, SEEN, [
    mail("[eq22] a", attachment=True), mail("[eq22] b")])
case(23, c("subject", "contains", "URGENTE"), FLAG, [
    mail("[eq23] URGENTE"), mail("[eq23] urgente")], case_sensitive=True)
case(24, c("subject", "contains", "fattura"), SEEN, [
    mail("[eq24] FATTURA 3"), mail("[eq24] ricevuta")])
case(25, c("subject", "contains", "Città"), MOVE, [
    raw("=?utf-8?q?=5Beq25=5D_Citt=C3=A0_di_Roma?="), raw("[eq25] Citta di Roma")],
    case_sensitive=True)
case(26, c("from", "contains", "José Pérez"), FLAG, [
    raw("[eq26] a", from_header="=?utf-8?q?Jos=C3=A9_P=C3=A9rez?= <jp@example.es>"),
    raw("[eq26] b", from_header="Jose Perez <jp@example.es>")], case_sensitive=True)
case(27, c("subject", "contains", '"; discard; ${x} \\'), MOVE2, [
    mail('[eq27] "; discard; ${x} \\ yes'), mail("[eq27] discard")])
case(28, c("header", "not_contains", "x", header="X-Missing"), FLAG, [
    mail("[eq28] a"), mail("[eq28] b", X_Missing="xyz")])
case(29, c("subject", "matches", "*[eq29] ?a*"), SEEN, [
    mail("[eq29] pa"), mail("[eq29] a")])
# Any of: either condition.
CASES.append(([([c("subject", "contains", "[eq40] alpha"), c("subject", "contains",
                                                                "[eq40] beta")],
                [MOVE], {"match_all": False})],
              [mail("[eq40] alpha"), mail("[eq40] beta"), mail("[eq40] gamma")]))
# Stop: the second rule never sees what the first one stopped.
CASES.append(([([tag(41)], [FLAG], {"stop": True}), ([tag(41)], [MOVE2], {})],
              [mail("[eq41] stopped")]))
# A move, then a later rule's mark: the copy filed first keeps its flags of then.
CASES.append(([([tag(42)], [MOVE2], {}), ([tag(42)], [SEEN], {})],
              [mail("[eq42] moved then seen")]))
# Within one rule, flags come first: the copy and the kept message are both read.
CASES.append(([([tag(43)], [COPY, SEEN], {})], [mail("[eq43] copied and read")]))
# Several actions and several matching rules.
CASES.append(([([tag(44)], [MOVE, FLAG], {}), ([tag(44)], [COPY], {})],
              [mail("[eq44] everything")]))


def _install(account: Any) -> None:
    for n, (rules, _messages) in enumerate(CASES):
        for i, (conditions, actions, options) in enumerate(rules):
            save_rule(account, f"case {n}.{i}", conditions, actions, **options)


def test_sieve_and_posta_put_every_message_in_the_same_place(
    dovecot: DovecotServer, settings: Any
) -> None:
    on_server = dovecot.add_user()
    in_posta = dovecot.add_user()
    for user in (on_server, in_posta):
        add_folders(dovecot, user)
    sieve = make_account(dovecot, on_server, settings)
    posta = make_account(dovecot, in_posta, settings)
    from tests.filters_harness import sync_account_once

    for account in (sieve, posta):
        use_test_port(account, dovecot)
        sync_account_once(account.pk)  # folders known, inbox mirrored
        _install(account)

    assert set_server_side(sieve, True).state == FilterServer.State.SERVER, (
        FilterServer.objects.get(account=sieve).reason_detail
    )
    assert set_server_side(posta, False).state == FilterServer.State.POSTA

    messages = [m for _rules, batch in CASES for m in batch]
    for data in messages:
        dovecot.deliver(on_server, data)
        dovecot.deliver(in_posta, data)
    run_posta(posta)

    by_server = server_state(dovecot, on_server)
    by_posta = server_state(dovecot, in_posta)
    assert len(by_server) == len(messages)
    differences = {
        subject: (by_server.get(subject), by_posta.get(subject))
        for subject in set(by_server) | set(by_posta)
        if by_server.get(subject) != by_posta.get(subject)
    }
    assert differences == {}
    # The cases did something: most messages left INBOX or got a flag.
    acted = [s for s, places in by_server.items() if places != {("INBOX", "")}]
    assert len(acted) >= len(CASES)
