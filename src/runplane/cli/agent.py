"""`runplane agent`: run this machine's drivers for the host it serves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runplane.config import Settings


def agent(
    host_id: Annotated[str | None, typer.Option(help="the host served (default: hostname)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="where the runtimes' state lives")] = None,
) -> None:
    """Execute the driver calls addressed to this host (dials out to RUNPLANE_REDIS_URL)."""
    from runplane.bootstrap.agent import agent as run_agent

    overrides = {k: v for k, v in {"host_id": host_id, "data_dir": data_dir}.items() if v}
    run_agent(Settings().model_copy(update=overrides))
