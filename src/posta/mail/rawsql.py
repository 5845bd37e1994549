"""Plain SQL for the bulk statements of the mail store, on Django's connection.

The ORM prepares every value of an `IN (...)` list and every field of every object
of a bulk_create through several Python calls; for the first sync of a large
mailbox that costs more than the database's own work. These helpers send the same
statements with values passed as parameters (never formatted into the text), and
adapt datetimes and JSON the way Django itself writes them, so ORM reads, orderings
and comparisons see identical values. Table and column names come from the models'
metadata.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import Model

IN_CHUNK = 5000  # values per IN (...) list, well below SQLite's 32,766 parameters
# Strings that can go into JSON between quotes as they are (RFC 8259 §7).
_JSON_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*\Z')


def quote(name: str) -> str:
    return str(connection.ops.quote_name(name))


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)  # noqa: SLF001 - Model._meta is Django's documented API


def chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    ordered = list(values)
    for i in range(0, len(ordered), IN_CHUNK):
        yield ordered[i : i + IN_CHUNK]


def select_in(
    model: type[Model],
    columns: Sequence[str],
    *,
    user_id: int,
    column: str,
    values: Iterable[Any],
    where: str = "",
) -> Iterator[tuple[Any, ...]]:
    """Rows of `columns` of the user's `model` rows whose `column` is in `values`
    (chunked). `where` is extra SQL of our own, without parameters."""
    cols = ", ".join(quote(c) for c in columns)
    for chunk in chunks(values):
        marks = ", ".join(["%s"] * len(chunk))
        sql = (
            f"SELECT {cols} FROM {table(model)} WHERE {quote('user_id')} = %s "  # noqa: S608
            f"AND {quote(column)} IN ({marks}){where}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [user_id, *chunk])
            yield from cursor.fetchall()


def insert_sql(model: type[Model], columns: Sequence[str], *, ignore_conflicts: bool) -> str:
    cols = ", ".join(quote(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    return f"INSERT INTO {table(model)} ({cols}) VALUES ({marks}){tail}"  # noqa: S608


def executemany(sql: str, rows: list[tuple[Any, ...]]) -> int:
    """Run `sql` once per row; returns the rows changed in all (the drivers sum
    them: sqlite3 and psycopg 3 alike), so an ON CONFLICT DO NOTHING insert tells
    how many of its rows it really wrote."""
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
        return int(cursor.rowcount)


class Adapt:
    """Values as the connection's driver takes them for DateTimeField and
    JSONField columns, as Django would write them."""

    def __init__(self) -> None:
        self.sqlite = connection.vendor == "sqlite"
        self._json_general = connection.ops.adapt_json_value
        self._dt_general = connection.ops.adapt_datetimefield_value
        self.empty = self.json([])

    def json(self, value: Any) -> Any:
        if not self.sqlite:
            return self._json_general(value, None)
        if not value:
            return "[]"
        return json.dumps(value)

    def json_strings(self, values: list[str]) -> Any:
        """A JSON array of strings; on SQLite built directly when no string needs
        escaping (message ids and addresses almost never do)."""
        if not self.sqlite or not values:
            return self.json(values)
        plain = _JSON_PLAIN.match
        if all(plain(v) for v in values):
            return '["' + '", "'.join(values) + '"]'
        return json.dumps(values)

    def when(self, value: datetime) -> Any:
        if self.sqlite:
            # Django on SQLite stores aware datetimes as naive UTC text (str()).
            return str(value.astimezone(UTC).replace(tzinfo=None))
        return self._dt_general(value)
