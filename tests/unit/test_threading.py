"""Threading helpers: message-id keys, parents, base subjects (RFC 5256)."""

from __future__ import annotations

import pytest

from posta.mailproto.mime.headers import Envelope, parse_envelope
from posta.mailproto.mime.snippet import make_snippet
from posta.mailproto.mime.threading import base_subject, normalize_message_id, thread_parents


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("<Abc.123@Example.COM>", "Abc.123@example.com"),
        (" < a@B > ", "a@b"),
        ("bare@HOST", "bare@host"),
        ("<>", ""),
        ("<x@y@Z>", "x@y@z"),
    ],
)
def test_normalize_message_id(raw: str, key: str) -> None:
    assert normalize_message_id(raw) == key


def test_thread_parents_order_dedup_and_malformed() -> None:
    env = parse_envelope(
        b"Message-ID: <self@x.it>\r\n"
        b"References: <root@X.it> <garbage> <mid@x.it> <root@x.it> <self@x.it>\r\n"
        b"In-Reply-To: <last@x.it> (Anna's message)\r\n\r\n"
    )
    assert thread_parents(env) == ["root@x.it", "mid@x.it", "last@x.it"]
    assert thread_parents(Envelope()) == []
    assert thread_parents(Envelope(in_reply_to="<p@x.it>")) == ["p@x.it"]


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Re: Preventivo", "preventivo"),
        ("RE: re: Fwd: R: I: Preventivo", "preventivo"),
        ("AW: WG: TR: RIF: Angebot", "angebot"),
        ("[lista-soci] Re: [lista-soci] Riunione", "riunione"),
        ("Re[2]: Riunione", "riunione"),
        ("Riunione (fwd)", "riunione"),
        ("[Fwd: Riunione]", "riunione"),
        ("  Riunione    di   giovedì ", "riunione di giovedì"),
        ("[ticket 42]", "[ticket 42]"),
        ("Re:", ""),
        ("Resoconto: giugno", "resoconto: giugno"),
    ],
)
def test_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == base


def test_snippet_skips_quotes_attribution_and_signature() -> None:
    text = (
        "Ciao Mario,\r\n\r\n   ecco   il preventivo.\r\n\r\n"
        "Il giorno lun 1 gen 2024 alle 10:00 Anna <a@x.it> ha\r\nscritto:\r\n"
        "> testo citato\r\n> altro\r\n-- \r\nAnna Bianchi\r\nUfficio vendite\r\n"
    )
    assert make_snippet(text) == "Ciao Mario, ecco il preventivo."
    assert make_snippet("On Mon, Jan 1, 2024 Bob wrote:\n> hi\nSure.") == "Sure."
    assert make_snippet("Ok\n-----Original Message-----\nFrom: x") == "Ok"


def test_snippet_limit() -> None:
    text = " ".join(["parola"] * 100)
    snippet = make_snippet(text, limit=50)
    assert len(snippet) <= 50
    assert snippet.endswith("…")
    assert make_snippet("") == ""
