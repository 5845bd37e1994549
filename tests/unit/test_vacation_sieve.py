"""The vacation section: every user value stays a string, and the text parses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sievelib.parser import Parser

from posta.mailproto.sieve.vacation import Vacation, quoted, render_vacation, script_of

HOSTILE = [
    'a"b',
    "back\\slash",
    'x"; discard; keep; "',
    "line one\nline two\r\nline three\rfour",
    "${variable} * ? [list]",
    "text:\r\n.\r\n",
    "tab\tand nul\x00 and bell\x07",
    "Fuori ufficio: è così",
]


def _parsed(script: str) -> list[object]:
    parser = Parser()
    assert parser.parse(script), parser.error
    return list(parser.result)


def _vacation_args(commands: list[object]) -> dict[str, object]:
    command = commands[-1]
    if getattr(command, "name", "") == "if":
        command = command.children[0]  # type: ignore[attr-defined]
    assert command.name == "vacation"  # type: ignore[attr-defined]
    # sievelib keeps a tag's value apart from the tag; the reason is positional.
    args = dict(command.extra_arguments)  # type: ignore[attr-defined]
    args["reason"] = command.arguments["reason"]  # type: ignore[attr-defined]
    return args


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_strings(value: str) -> None:
    vacation = Vacation(
        body=value, subject=value, from_address="me@example.org", addresses=(value, "b@x.org")
    )
    section = render_vacation(vacation, with_dates=False)
    commands = _parsed(script_of(section))
    # require + vacation: nothing the user typed became a command.
    assert [c.name for c in commands] == ["require", "vacation"]  # type: ignore[attr-defined]
    args = _vacation_args(commands)
    expected = value.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    expected = expected.replace("\x07", "")
    assert args["reason"] == quoted(expected)
    assert args["subject"] == quoted(expected)
    assert args["addresses"] == [quoted(expected), '"b@x.org"']


def test_days_at_least_one_and_all_tags() -> None:
    section = render_vacation(
        Vacation(body="Away", subject="Auto: hi", from_address="me@example.org",
                 addresses=("alias@example.org",), days=0),
        with_dates=False,
    )
    assert section.extensions == {"vacation"}
    args = _vacation_args(_parsed(script_of(section)))
    assert args["days"] == "1"
    assert args["from"] == '"me@example.org"'
    assert args["addresses"] == ['"alias@example.org"']


def test_a_period_becomes_currentdate_tests_in_utc() -> None:
    rome = timezone(timedelta(hours=1))
    start = datetime(2026, 12, 20, 9, 0, tzinfo=rome)
    end = datetime(2027, 1, 7, 0, 0, tzinfo=UTC)
    section = render_vacation(
        Vacation(body="Away", subject="Auto", from_address="", starts_at=start, ends_at=end),
        with_dates=True,
    )
    assert section.extensions == {"vacation", "date", "relational"}
    assert '"ge" "iso8601" "2026-12-20T08:00:00+00:00"' in section.text
    assert '"lt" "iso8601" "2027-01-07T00:00:00+00:00"' in section.text
    commands = _parsed(script_of(section))
    assert [c.name for c in commands] == ["require", "if"]  # type: ignore[attr-defined]
    assert _vacation_args(commands)["days"] == "7"


def test_without_date_support_the_period_is_left_to_uploads() -> None:
    start = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)
    section = render_vacation(
        Vacation(body="Away", subject="Auto", from_address="", starts_at=start),
        with_dates=False,
    )
    assert section.text.startswith("vacation ")
    assert "currentdate" not in section.text


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        render_vacation(
            Vacation(body="x", subject="y", from_address="", starts_at=datetime(2026, 1, 1)),  # noqa: DTZ001 - the case under test
            with_dates=True,
        )
