"""posta.mail.quotes: the trailing quote of a plain-text reply, and only that."""

from __future__ import annotations

from posta.mail.quotes import split_quoted


def test_attribution_and_quote_at_the_end_fold() -> None:
    text = "Fine by me.\n\nOn Mon, 2 Mar 2026 Anna wrote:\n> Shall we meet?\n> Thursday\n"
    assert split_quoted(text) == (
        "Fine by me.\n", "On Mon, 2 Mar 2026 Anna wrote:\n> Shall we meet?\n> Thursday\n"
    )


def test_italian_attribution_and_outlook_separator() -> None:
    text = "Va bene.\nIl giorno lun 2 mar 2026, Anna ha scritto:\n> Ci vediamo?\n"
    assert split_quoted(text)[1].startswith("Il giorno lun")
    outlook = "Ok.\n-----Messaggio originale-----\nDa: Anna\nOggetto: Ordine\n"
    assert split_quoted(outlook) == ("Ok.\n", outlook[len("Ok.\n"):])


def test_an_answered_quote_in_the_middle_and_an_all_quote_body_stay_shown() -> None:
    inline = "> Price?\n120 euro.\n> Date?\nThursday.\n"
    assert split_quoted(inline) == (inline, "")
    only_quote = "> just a quote\n"
    assert split_quoted(only_quote) == (only_quote, "")
    assert split_quoted("No quote at all.\n") == ("No quote at all.\n", "")
