"""Typed parsing of request parameters for the views.

Every value a view reads from the query string, the form body or the URL goes
through one of these parsers (or a Django form). A value that does not parse is
the sender's mistake, not ours: it becomes a PostaError with status 400 and a
message naming the parameter, never an uncaught ValueError or a database
overflow (a 30-digit id does not fit SQLite's or PostgreSQL's 64-bit integers).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from django.http import QueryDict
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from posta.core.errors import PostaError

# Primary keys are BigAutoField (settings.DEFAULT_AUTO_FIELD): signed 64-bit on
# both databases.
MAX_ID = 2**63 - 1
_MAX_ID_DIGITS = len(str(MAX_ID))
# The form's datetime-local value is "YYYY-MM-DDTHH:MM[:SS]"; an ISO time with
# microseconds and an offset is still under 40 characters.
MAX_DATETIME_LENGTH = 40
DATETIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
# Years a typed time may have: converting year 1 or 9999 between time zones
# overflows datetime, and no mail is scheduled that far away.
MIN_YEAR = 1970
MAX_YEAR = 9000


class IdConverter:
    """Path converter for ids: ASCII digits within the database's range. Anything
    else does not match the URL, so it is a 404 before any view runs."""

    regex = f"[0-9]{{1,{_MAX_ID_DIGITS}}}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(value)  # Django: the pattern does not match
        return number

    def to_url(self, value: int) -> str:
        return str(value)


def bad_parameter(name: str, message: object) -> PostaError:
    """The one error for a malformed parameter: 400, naming it."""
    return PostaError(
        "bad_parameter",
        format_lazy(_("The value of “{name}” is not valid: {reason}"), name=name, reason=message),
        status=400,
        field=name,
    )


def _is_id(value: str) -> bool:
    # str.isdigit() is also true for "²" and other digits int() refuses.
    return (
        0 < len(value) <= _MAX_ID_DIGITS
        and value.isascii()
        and value.isdigit()
        and int(value) <= MAX_ID
    )


def parse_id(value: str, *, name: str) -> int:
    """A record id: a whole number from 0 to MAX_ID."""
    value = value.strip()
    if not _is_id(value):
        raise bad_parameter(name, _("expected a record number."))
    return int(value)


def optional_id(data: QueryDict, name: str) -> int | None:
    """The id in `data[name]`, or None when it is absent or empty."""
    value = data.get(name, "")
    return parse_id(value, name=name) if value.strip() else None


def id_list(values: Sequence[str], *, name: str, max_count: int) -> list[int]:
    """Ids given as repeated parameters and/or comma-separated lists, in order,
    without duplicates; at most `max_count` of them, repeats counted."""
    out: dict[int, None] = {}
    count = 0
    for value in values:
        for piece in value.split(","):
            piece = piece.strip()
            if not piece:
                continue
            count += 1  # repeats count too: a megabyte of "1," is not one id
            if count > max_count:
                raise bad_parameter(
                    name,
                    format_lazy(_("at most {count} items at a time."), count=max_count),
                )
            out[parse_id(piece, name=name)] = None
    return list(out)


def text(data: QueryDict, name: str, *, max_length: int, strip: bool = True) -> str:
    """A string of at most `max_length` characters ("" when absent)."""
    value = data.get(name, "")
    if strip:
        value = value.strip()
    if len(value) > max_length:
        raise bad_parameter(
            name, format_lazy(_("at most {count} characters."), count=max_length)
        )
    return value


def choice(data: QueryDict, name: str, *, choices: Collection[str], default: str = "") -> str:
    """One of `choices`, or `default` when absent or empty."""
    value = data.get(name, "")
    if not value:
        return default
    if value not in choices:
        raise bad_parameter(name, _("not one of the offered choices."))
    return value


def flag(data: QueryDict, name: str) -> bool:
    """A checkbox-like switch: "1" is on; absent, empty or "0" is off."""
    return choice(data, name, choices=("0", "1"), default="0") == "1"


def part_path(data: QueryDict, name: str, *, max_depth: int = 32) -> str:
    """A MIME part number such as "2.1.3" (RFC 3501 §6.4.5 section numbers), or ""."""
    value = data.get(name, "")
    if not value:
        return ""
    return check_part_path(value, name=name, max_depth=max_depth)


def check_part_path(value: str, *, name: str, max_depth: int = 32) -> str:
    pieces = value.split(".")
    if len(pieces) > max_depth or not all(
        0 < len(p) <= 6 and p.isascii() and p.isdigit() for p in pieces
    ):
        raise bad_parameter(name, _("expected a part number such as 1.2."))
    return value


def local_datetime(
    data: QueryDict, name: str, *, formats: Sequence[str] = DATETIME_FORMATS
) -> datetime | None:
    """A naive date and time in one of the form's `formats`, or None when empty.
    The caller reads it in the user's time zone."""
    value = text(data, name, max_length=MAX_DATETIME_LENGTH)
    if not value:
        return None
    for fmt in formats:
        try:
            parsed = datetime.strptime(value, fmt)  # noqa: DTZ007 - naive by contract
        except ValueError:
            continue
        return _in_range(parsed, name=name)
    raise bad_parameter(name, _("expected a date and time."))


def _in_range(value: datetime, *, name: str) -> datetime:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise bad_parameter(name, _("the year is out of range."))
    return value


def iso_datetime(data: QueryDict, name: str) -> datetime | None:
    """A date and time in ISO 8601 form (the quick-schedule buttons), or None."""
    value = text(data, name, max_length=MAX_DATETIME_LENGTH)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise bad_parameter(name, _("expected a date and time.")) from exc
    return _in_range(parsed, name=name)
