"""posta.web.params: every string either parses or is a PostaError 400 naming the
parameter; nothing else escapes (no ValueError, no id past the database's range)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from django.http import QueryDict
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from posta.core.errors import PostaError
from posta.web import params


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """The messages below are matched in English, whatever a test before left active."""
    with translation.override("en"):
        yield


def query(**values: str) -> QueryDict:
    data = QueryDict(mutable=True)
    data.update(values)
    return data


@given(st.text(max_size=40))
def test_an_id_is_a_number_within_range_or_a_400(value: str) -> None:
    try:
        parsed = params.parse_id(value, name="m")
    except PostaError as error:
        assert error.status == 400
        assert error.field == "m"
        assert "“m”" in str(error)
    else:
        assert 0 <= parsed <= params.MAX_ID
        assert str(parsed) == value.strip().lstrip("0") or parsed == 0


@pytest.mark.parametrize("value", ["abc", "-1", "²", "١٢", "9" * 30, str(2**63), "1.5", ""])
def test_malformed_ids_are_refused(value: str) -> None:
    with pytest.raises(PostaError):
        params.parse_id(value, name="folder")


def test_the_largest_id_parses() -> None:
    assert params.parse_id(str(2**63 - 1), name="m") == 2**63 - 1


def test_the_path_converter_matches_only_ids_in_range() -> None:
    converter = params.IdConverter()
    assert converter.to_python("42") == 42
    with pytest.raises(ValueError, match=str(2**63)):
        converter.to_python(str(2**63))


def test_id_lists_keep_order_drop_repeats_and_count_every_item() -> None:
    assert params.id_list(["3,1", "3", " 2 ,"], name="ids", max_count=10) == [3, 1, 2]
    with pytest.raises(PostaError, match="at most 10"):
        params.id_list(["1," * 11], name="ids", max_count=10)
    with pytest.raises(PostaError, match="“threads”"):
        params.id_list(["1,x"], name="threads", max_count=10)


def test_text_choice_and_flag() -> None:
    assert params.text(query(q=" hi "), "q", max_length=2) == "hi"
    with pytest.raises(PostaError, match="at most 2 characters"):
        params.text(query(q="abc"), "q", max_length=2)
    assert params.choice(query(), "view", choices=("a",), default="d") == "d"
    with pytest.raises(PostaError):
        params.choice(query(view="b"), "view", choices=("a",))
    assert params.flag(query(all="1"), "all") is True
    assert params.flag(query(), "all") is False
    with pytest.raises(PostaError):
        params.flag(query(all="yes"), "all")


def test_dates_in_the_forms_format_with_bounded_length_and_year() -> None:
    assert params.local_datetime(query(t="2026-03-02T10:30"), "t") == datetime(2026, 3, 2, 10, 30)  # noqa: DTZ001
    assert params.local_datetime(query(), "t") is None
    for bad in ["2026-03-02T10:00" + "0" * 10_000, "0001-01-01T00:00", "9999-12-31T23:59", "x"]:
        with pytest.raises(PostaError, match="“t”"):
            params.local_datetime(query(t=bad), "t")
    assert params.iso_datetime(query(q="2026-03-02T10:30:00+01:00"), "q") is not None
    with pytest.raises(PostaError):
        params.iso_datetime(query(q="tomorrow"), "q")


def test_part_numbers() -> None:
    assert params.part_path(query(nested="2.1"), "nested") == "2.1"
    assert params.part_path(query(), "nested") == ""
    for bad in ["²", "1..2", "a", "1." * 40 + "1", "9" * 10]:
        with pytest.raises(PostaError):
            params.part_path(query(nested=bad), "nested")
