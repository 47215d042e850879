"""cli/output.py: ages, short ids, json/yaml documents, tables and colours."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
import typer
import yaml
from rich.console import Console
from typer.testing import CliRunner

from runplane.cli.main import app
from runplane.cli.output import (
    Column,
    Format,
    age,
    chosen,
    document_text,
    print_document,
    resolve_id,
    short_id,
    show_list,
    status_style,
    styled,
    table_of,
    until,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        ("2026-03-01T11:59:55Z", "5s"),
        ("2026-03-01T11:59:00.999+00:00", "59s"),
        ("2026-03-01T11:57:00Z", "3m"),
        ("2026-03-01T09:30:00Z", "2h"),
        ("2026-02-25T11:00:00Z", "4d"),
        ("2024-01-01T00:00:00Z", "2y"),
        ("2026-03-01T13:00:00+01:00", "0s"),  # the same instant, another offset
        ("2026-03-01T12:00:03Z", "0s"),  # a little ahead: clock skew, not a negative age
        ("2026-03-01T11:00:00", "1h"),  # no offset: taken as UTC, as the API writes
        (None, "-"),
        ("", "-"),
        ("not a time", "-"),
    ],
)
def test_age_reads_like_kubectl(moment: str | None, shown: str) -> None:
    assert age(moment, NOW) == shown


def test_until_counts_forward_and_stops_at_zero() -> None:
    assert until("2026-03-31T12:00:00Z", NOW) == "30d"
    assert until("2026-03-01T11:00:00Z", NOW) == "0s"
    assert until(None, NOW) == "-"


@pytest.mark.parametrize(
    ("whole", "short"),
    [
        ("wh_Xk3aB9Q2r7LmNpQs-TuVwXy0", "wh_Xk3aB9Q2"),
        ("dlv_AbCdEfGhIjKlMnOpQrStUvWx", "dlv_AbCdEfGh"),
        ("snap-0123456789abcdef0123", "snap-01234567"),
        ("key_0a1b2c3d4e5f", "key_0a1b2c3d4e5f"),  # 16 characters: whole
        ("0123456789abcdef0123456789abcdef", "0123456789ab"),  # no prefix: 12 characters
        ("runtime_0123456789abcdef", "runtime_0123"),  # a prefix over 5 letters is no prefix
        (None, "-"),
    ],
)
def test_short_id_keeps_the_prefix_and_eight_characters(whole: str | None, short: str) -> None:
    assert short_id(whole) == short


def test_resolve_id_takes_a_whole_or_unique_short_id() -> None:
    known = ["wh_Xk3aB9Q2aaaa", "wh_Xk3aB9Q2bbbb", "wh_Zz9yyyyyyyyy"]
    assert resolve_id("wh_Zz9", known) == "wh_Zz9yyyyyyyyy"
    assert resolve_id("wh_Xk3aB9Q2aaaa", known) == "wh_Xk3aB9Q2aaaa"
    assert resolve_id("wh_nothing", known) == "wh_nothing"  # the API answers its 404
    with pytest.raises(typer.BadParameter, match="start of 2 ids"):
        resolve_id("wh_Xk3aB9Q2", known)


DOCUMENT = {
    "runtime_id": "web-1",
    "labels": {"app": "web", "tier": "front"},
    "spec": {"command": ["/bin/sleep", "300"], "port": 8080},
    "started_at": "2026-03-01T11:59:55.123456Z",
    "stopped_at": None,
    "version": 3,
    "unicode": "café",
}


@pytest.mark.parametrize(
    ("fmt", "load"), [(Format.JSON, json.loads), (Format.YAML, yaml.safe_load)]
)
def test_documents_round_trip(fmt: Format, load: object) -> None:
    assert callable(load)
    assert load(document_text(DOCUMENT, fmt)) == DOCUMENT
    console = Console(file=io.StringIO(), width=40)  # narrower than the data: no wrapping
    print_document(DOCUMENT, fmt, console)
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert load(printed) == DOCUMENT


def test_yaml_keeps_the_apis_key_order() -> None:
    assert document_text({"b": 1, "a": 2}, Format.YAML) == "b: 1\na: 2\n"


def test_chosen_format_json_flag_is_an_alias() -> None:
    assert chosen(None) is Format.TABLE
    assert chosen(None, as_json=True) is Format.JSON
    assert chosen(Format.YAML, as_json=True) is Format.YAML


COLUMNS = (
    Column("ID", lambda r: short_id(r["id"]), table_only=True),
    Column("ID", lambda r: r["id"], wide=True),
    Column("STATUS", lambda r: styled(r["status"])),
    Column("LABELS", lambda r: r["labels"], wide=True),
)
ROWS = [{"id": "wh_Xk3aB9Q2r7LmNpQs-TuVwXy0", "status": "running", "labels": "app=web"}]


def test_wide_adds_its_columns_and_drops_the_short_forms() -> None:
    narrow = table_of(ROWS, COLUMNS, Format.TABLE)
    wide = table_of(ROWS, COLUMNS, Format.WIDE)
    assert [c.header for c in narrow.columns] == ["ID", "STATUS"]
    assert [c.header for c in wide.columns] == ["ID", "STATUS", "LABELS"]
    assert [c.plain for c in wide.columns[0].cells] == ["wh_Xk3aB9Q2r7LmNpQs-TuVwXy0"]  # type: ignore[union-attr]
    assert [c.plain for c in narrow.columns[0].cells] == ["wh_Xk3aB9Q2"]  # type: ignore[union-attr]


def test_what_the_api_returns_is_never_markup() -> None:
    """An error message or a tenant's string with brackets is printed as it is."""
    rows = [{"id": "a", "status": "[red]owned[/red] [/x]", "labels": ""}]
    console = Console(file=io.StringIO(), width=100)
    show_list(rows, COLUMNS, Format.TABLE, console=console)
    assert "[red]owned[/red] [/x]" in console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "style"),
    [
        ("running", "green"),
        ("up", "green"),
        ("succeeded", "green"),
        ("stopped", "dim"),
        ("revoked", "dim"),
        ("error", "red"),
        ("engine_unreachable", "red"),
        ("failure", "red"),
        ("down", "red"),
        ("abandoned", "red"),
        ("starting", "yellow"),
        ("draining", "yellow"),
        ("pending", "yellow"),
        (None, ""),
    ],
)
def test_status_colours(status: str | None, style: str) -> None:
    assert status_style(status) == style


def _rendered(console: Console) -> str:
    show_list(ROWS, COLUMNS, Format.TABLE, console=console)
    text: str = console.file.getvalue()  # type: ignore[attr-defined]
    return text


def test_colour_on_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=100)
    assert "\x1b[32mrunning" in _rendered(console)


def test_no_colour_when_not_a_terminal() -> None:
    text = _rendered(Console(file=io.StringIO(), width=100))
    assert "running" in text
    assert "\x1b[" not in text


def test_no_colour_with_no_color_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    text = _rendered(Console(file=io.StringIO(), force_terminal=True, width=100))
    assert "running" in text
    assert "\x1b[32m" not in text


def test_an_unknown_output_format_is_a_usage_error() -> None:
    done = CliRunner().invoke(app, ["runtime", "ls", "-o", "xml", "--url", "http://127.0.0.1:9"])
    assert done.exit_code == 2
    assert "xml" in done.output
