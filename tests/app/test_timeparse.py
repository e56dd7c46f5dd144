"""``parse_until``: ISO 8601 dates and date-times for ``--until`` and the owner API's ``until``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.errors import OwnerError
from core.owner_api import parse_until


def epoch(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, tz: timezone = UTC
) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp())


def test_a_date_means_the_start_of_that_day_in_utc() -> None:
    assert parse_until("2026-12-01") == epoch(2026, 12, 1)


def test_a_date_time_with_an_offset_is_that_instant() -> None:
    assert parse_until("2026-12-01T17:00:00+02:00") == epoch(2026, 12, 1, 15)
    minus_5_30 = timezone(-timedelta(hours=5, minutes=30))
    assert parse_until("2026-12-01T17:00-05:30") == epoch(2026, 12, 1, 17, tz=minus_5_30)


def test_a_date_time_without_an_offset_is_read_as_utc() -> None:
    assert parse_until("2026-12-01T17:00") == epoch(2026, 12, 1, 17)
    assert parse_until("2026-12-01 17:00:30") == epoch(2026, 12, 1, 17, 0, 30)


def test_z_means_utc() -> None:
    assert parse_until("2026-12-01T17:00:00Z") == epoch(2026, 12, 1, 17)


def test_fractions_of_a_second_are_dropped() -> None:
    assert parse_until("2026-12-01T17:00:00.999Z") == epoch(2026, 12, 1, 17)


def test_surrounding_spaces_are_ignored() -> None:
    assert parse_until("  2026-12-01\n") == epoch(2026, 12, 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "tomorrow",
        "2026-13-01",
        "2026-02-30",
        "01/12/2026",
        "2026-12-01T25:00",
        "2026-12-01T10:00+25:00",
        "x" * 100,
    ],
)
def test_anything_else_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(OwnerError, match="ISO 8601") as err:
        parse_until(text)
    assert err.value.status == 400


def test_a_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(OwnerError):
        parse_until(20261201)  # type: ignore[arg-type]
