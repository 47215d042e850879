"""JSON objects given on the command line (`--spec`): inline, or `@path` to
read them from a file. A bad one is refused before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runplane.cli.rest_client import ExitCode, fail


def parse_object(text: str, option: str = "--spec") -> dict[str, Any]:
    """The JSON object `text` holds, or the file `@path` names holds."""
    source = option
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            fail(
                f"{option}: cannot read {path}: {exc.strerror or exc}",
                code="invalid_request",
                exit_code=ExitCode.NOT_SENT,
            )
        source = f"{option} file {path}"
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail(f"{source} is not JSON: {exc}", code="invalid_request", exit_code=ExitCode.NOT_SENT)
    if not isinstance(value, dict):
        fail(
            f"{source} must be a JSON object, not {type(value).__name__}",
            code="invalid_request",
            exit_code=ExitCode.NOT_SENT,
        )
    return value
