"""The out-of-office reply as Sieve text (RFC 5230 `vacation`), for the server
to run while Posta is down.

Pure: a `Vacation` in, a `SieveSection` out (the command text and the
extensions it needs, for the script writer's `require`). Every value the user
typed is a Sieve quoted string (`quoted`): a quote, a backslash, a newline, a
`${...}` or `"; discard;` stays text and never becomes a command.

With the server's `date` and `relational` (RFC 5260, RFC 5231) the period is
checked by the server itself through `currentdate`, so the reply starts and
stops on time without Posta; without them the caller re-uploads the script at
the start and at the end (`with_dates=False` leaves the test out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from posta.mailproto.sieve.script import SieveSection, render_script

# RFC 5228 §2.4.2: in a quoted string only `"` and `\` need a backslash; other
# characters stand for themselves, line breaks included.
_CONTROL = {c: None for c in range(32) if c not in (9, 10)} | {127: None}


@dataclass(frozen=True)
class Vacation:
    """What to answer and when: `days` between two replies to one sender
    (RFC 5230 §4.1, at least 1); `addresses` further addresses of mine
    (§4.5); `starts_at` / `ends_at` aware datetimes or None."""

    body: str
    subject: str
    from_address: str
    addresses: Sequence[str] = ()
    days: int = 7
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def quoted(value: str) -> str:
    """`value` as a Sieve quoted string (RFC 5228 §2.4.2): backslash and quote
    escaped, CR LF and lone CR made LF, other control characters dropped."""
    text = value.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string_list(values: Sequence[str]) -> str:
    """A Sieve string list (RFC 5228 §2.4.2.1)."""
    return "[" + ", ".join(quoted(v) for v in values) + "]"


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is needed")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _date_tests(vacation: Vacation) -> list[str]:
    # RFC 5260 §5: currentdate in UTC; ISO 8601 texts of one zone order as times,
    # so the relational "ge" / "lt" of i;ascii-numeric-free strings is exact.
    tests = []
    if vacation.starts_at is not None:
        tests.append(
            'currentdate :zone "+0000" :value "ge" "iso8601" '
            + quoted(_utc_iso(vacation.starts_at))
        )
    if vacation.ends_at is not None:
        tests.append(
            'currentdate :zone "+0000" :value "lt" "iso8601" '
            + quoted(_utc_iso(vacation.ends_at))
        )
    return tests


def vacation_command(vacation: Vacation) -> str:
    """The bare `vacation` command, one line per argument."""
    parts = [f"vacation :days {max(int(vacation.days), 1)}"]
    if vacation.addresses:
        parts.append(f"  :addresses {string_list(list(vacation.addresses))}")
    if vacation.subject:  # RFC 5230 §4.5: without it the server writes "Auto: " + subject
        parts.append(f"  :subject {quoted(vacation.subject)}")
    if vacation.from_address:
        parts.append(f"  :from {quoted(vacation.from_address)}")
    parts.append(f"  {quoted(vacation.body)};")
    return "\n".join(parts)


def render_vacation(vacation: Vacation, *, with_dates: bool) -> SieveSection:
    """The section for the generated script. With `with_dates`, a period is
    checked with `currentdate`; the caller passes it only when the server
    announced `date` and `relational`."""
    command = vacation_command(vacation)
    tests = _date_tests(vacation) if with_dates else []
    if not tests:
        return SieveSection(
            text=command + "\n", extensions=frozenset({"vacation"}), unless_junked=True
        )
    condition = tests[0] if len(tests) == 1 else "allof(" + ",\n      ".join(tests) + ")"
    body = "\n".join("  " + line for line in command.splitlines())
    text = f"if {condition} {{\n{body}\n}}\n"
    return SieveSection(
        text=text, extensions=frozenset({"vacation", "date", "relational"}), unless_junked=True
    )


def script_of(section: SieveSection) -> str:
    """A whole script of the section alone, by the filters' writer (a server
    where Posta's script holds no filters, and the tests' `sieve-test`)."""
    return render_script([], extensions=section.extensions, trailer=[section])
