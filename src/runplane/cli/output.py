"""How CLI commands print what they read: `-o table|wide|json|yaml` (`--json`
stays an alias of `-o json`), ages instead of ISO times, short generated ids,
status colours.

Colour is Rich's choice: none when stdout is not a terminal or NO_COLOR is set.
json and yaml print the API's data as it came (full ids, full times), so a
script never parses a table."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from runplane.cli.rest_client import out


class Format(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


OutputOpt = Annotated[
    Format | None,
    typer.Option("-o", "--output", case_sensitive=False, help="table, wide, json or yaml"),
]


def chosen(output: Format | None, as_json: bool = False) -> Format:
    """The format asked for: -o wins, --json means json, else a table."""
    if output is not None:
        return output
    return Format.JSON if as_json else Format.TABLE


def is_document(fmt: Format) -> bool:
    return fmt in (Format.JSON, Format.YAML)


# Statuses of runtimes, hosts, keys, webhook deliveries and operations, by mood.
_GOOD = {"running", "up", "active", "succeeded", "success", "healthy", "enabled"}
_QUIET = {"stopped", "removed", "paused", "expired", "revoked", "disabled", "cordoned"}
_BAD = {
    "error",
    "failed",
    "failure",
    "engine_unreachable",
    "unhealthy",
    "down",
    "abandoned",
    "probe_failed",
    "inspect_unhealthy",
    "exited",
    "oom",
    "disappeared",
    "host_down",
}
STYLES = {
    **dict.fromkeys(_GOOD, "green"),
    **dict.fromkeys(_QUIET, "dim"),
    **dict.fromkeys(_BAD, "red"),
}
TRANSITIONAL = "yellow"
"""Anything else (starting, stopping, draining, pending...) is on its way somewhere."""


def status_style(status: str | None) -> str:
    if not status or status == "-":
        return ""
    return STYLES.get(status, TRANSITIONAL)


def styled(status: str | None) -> Text:
    return Text(status or "-", style=status_style(status))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def span(seconds: float) -> str:
    """A duration the way kubectl prints an age: `42s`, `5m`, `3h`, `4d`, `2y`
    (whole units, rounded down; a negative one reads `0s`)."""
    whole = max(int(seconds), 0)
    for unit, size in (("y", 365 * 86_400), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def age(value: str | None, now: datetime | None = None) -> str:
    """How long ago `value` was (`-` when unset). A time a little ahead (clock
    skew between hosts) reads `0s`."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    return span(((now or datetime.now(UTC)) - moment).total_seconds())


def until(value: str | None, now: datetime | None = None) -> str:
    """How long until `value` (`-` when unset, `0s` once past)."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    return span((moment - (now or datetime.now(UTC))).total_seconds())


SHORT_ID_CHARS = 8
"""Random characters kept after an id's prefix: 48 bits of a urlsafe token,
so two ids of one list share them practically never."""
_LONG_ID = 16


def short_id(value: str | None) -> str:
    """`wh_Xk3...` (27 chars) -> `wh_Xk3aB9Q2`: the prefix and 8 characters.
    Ids of 16 characters or fewer (`key_0a1b2c3d4e5f`) are shown whole; the
    commands that take an id also take this short form (see `resolve_id`)."""
    if not value:
        return "-"
    if len(value) <= _LONG_ID:
        return value
    for sep in ("_", "-"):
        prefix, found, rest = value.partition(sep)
        if found and prefix.isalpha() and len(prefix) <= 5:
            return f"{prefix}{sep}{rest[:SHORT_ID_CHARS]}"
    return value[: SHORT_ID_CHARS + 4]


def resolve_id(given: str, known: Iterable[str]) -> str:
    """The one known id `given` is, or starts (a short id from a table); `given`
    itself when it names none, so the API answers its own 404. Several matches
    are an error: guessing would act on the wrong one."""
    ids = list(known)
    if given in ids:
        return given
    matches = [i for i in ids if i.startswith(given)]
    if len(matches) > 1:
        raise typer.BadParameter(f"{given!r} is the start of {len(matches)} ids; give more of it")
    return matches[0] if matches else given


def labels_text(labels: dict[str, Any] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "-"


def cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: a header and how a row's cell is made. `wide` columns
    appear only in `-o wide`; `table_only` ones only in the narrow table (a
    short id or an age, which wide shows in full elsewhere)."""

    header: str
    value: Callable[[dict[str, Any]], str | Text]
    wide: bool = False
    table_only: bool = False


def table_of(
    rows: Sequence[dict[str, Any]], columns: Sequence[Column], fmt: Format, **options: Any
) -> Table:
    shown = [
        c
        for c in columns
        if (fmt is Format.WIDE or not c.wide) and not (fmt is Format.WIDE and c.table_only)
    ]
    table = Table(*(c.header for c in shown), **options)
    for column in table.columns:
        column.overflow = "fold"  # a long id wraps; it is never cut to an ellipsis
    for row in rows:
        table.add_row(*(plain(c.value(row)) for c in shown))
    return table


def plain(value: str | Text) -> Text:
    """A cell as Text: what the API returned is never read as console markup
    (an error message holding "[/x]" would otherwise break the table, and a
    tenant's string could restyle it)."""
    return value if isinstance(value, Text) else Text(value)


def document_text(data: Any, fmt: Format) -> str:
    """`data` as JSON (indented) or YAML (block style, keys in the API's order)."""
    if fmt is Format.YAML:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return json.dumps(data, indent=2) + "\n"


def print_document(data: Any, fmt: Format, console: Console = out) -> None:
    if fmt is Format.JSON:
        console.print_json(data=data)
    else:
        console.out(document_text(data, fmt), end="", highlight=False)


def show_list(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    fmt: Format,
    document: Any = None,
    console: Console = out,
) -> None:
    """A list command's answer: `document` (default the rows) as json/yaml, or a table."""
    if is_document(fmt):
        print_document(rows if document is None else document, fmt, console)
    else:
        console.print(table_of(rows, columns, fmt))


def show_fields(
    record: dict[str, Any],
    fields: Sequence[tuple[str, Callable[[dict[str, Any]], str | Text]]],
    fmt: Format,
    console: Console = out,
) -> None:
    """A get command's answer: the record as json/yaml, or `name  value` lines."""
    if is_document(fmt):
        print_document(record, fmt, console)
        return
    table = Table(show_header=False, box=None)
    for name, value in fields:
        table.add_row(name, plain(value(record)))
    console.print(table)


def when(value: str | None, fmt: Format, now: datetime | None = None) -> str:
    """A time as a table shows it: its age; the full time in `-o wide`."""
    if fmt is Format.WIDE:
        return cell(value)
    return age(value, now)
