"""The compiled hot statements convert datetimes in one call (issue 15): the
same values as SQLAlchemy's own chain (UtcDateTime, then the dialect's type)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Dialect
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.dialects.sqlite import pysqlite

from runplane.adapters.sql.tables import UtcDateTime

MOMENTS = [
    datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    None,
]


@pytest.mark.parametrize("dialect", [pysqlite.dialect(), asyncpg.dialect()], ids=["sqlite", "pg"])
def test_direct_processors_give_what_sqlalchemy_gives(dialect: Dialect) -> None:
    column_type = UtcDateTime()
    bind, chained_bind = (
        column_type.direct_bind_processor(dialect),
        column_type._cached_bind_processor(dialect),
    )
    result = column_type.direct_result_processor(dialect)
    chained_result = column_type._cached_result_processor(dialect, None)
    assert bind is not None
    assert result is not None
    for moment in MOMENTS:
        stored = chained_bind(moment) if chained_bind is not None else moment
        assert bind(moment) == stored
        expected = chained_result(stored) if chained_result is not None else stored
        read = result(stored)
        assert read == expected
        assert (read.tzinfo if read else None) == (expected.tzinfo if expected else None)


def test_sqlite_texts_without_microseconds_read_the_same() -> None:
    dialect = pysqlite.dialect()
    column_type = UtcDateTime()
    result = column_type.direct_result_processor(dialect)
    chained = column_type._cached_result_processor(dialect, None)
    assert result is not None
    for text in ("2026-11-30 10:00:00", "2026-11-30 10:00:00.5"):
        assert result(text) == chained(text)
        assert result(text).tzinfo is UTC


@pytest.mark.parametrize("dialect", [pysqlite.dialect(), asyncpg.dialect()], ids=["sqlite", "pg"])
def test_a_naive_datetime_is_still_refused(dialect: Dialect) -> None:
    bind = UtcDateTime().direct_bind_processor(dialect)
    assert bind is not None
    with pytest.raises(ValueError, match="naive datetime"):
        bind(datetime(2026, 1, 1))
