"""`runplane keys create --expires-in`: the durations it takes."""

from __future__ import annotations

import pytest
import typer

from runplane.cli.keys import parse_duration_s


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 2_592_000),
        ("12h", 43_200),
        ("90m", 5_400),
        ("45s", 45),
        ("2w", 1_209_600),
        ("3600", 3_600),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0d", "-5m", "1y", "1.5h", "soon"])
def test_a_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration_s(text)
