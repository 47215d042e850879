"""The REST client every CLI command uses, and the options they share. The key
comes from --api-key, RUNPLANE_API_KEY or `<data dir>/admin.key`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from runplane.config import Settings

out = Console()
err = Console(stderr=True)

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="RUNPLANE_URL", help="API base URL")]
KeyOpt = Annotated[str | None, typer.Option("--api-key", envvar="RUNPLANE_API_KEY", help="API key")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the raw JSON answer")]


class Client:
    """A thin synchronous client for the REST API that turns errors into exit codes."""

    def __init__(self, url: str | None, api_key: str | None) -> None:
        settings = Settings()
        self.base = (url or settings.base_url).rstrip("/")
        key = api_key or _read_admin_key(settings.admin_key_path)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=None)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            err.print(f"[red]cannot reach runplane at {self.base}: {exc}[/red]")
            raise typer.Exit(2) from exc
        try:
            body = response.json() if response.content else {}
        except ValueError:  # not JSON (a proxy's page, say): shown as text below
            body = {}
        if response.is_error:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            code = error.get("code", str(response.status_code))
            message = error.get("message", response.text)
            err.print(f"[red]{escape(str(code))}[/red]: {escape(str(message))}")
            raise typer.Exit(1)
        return body


def _read_admin_key(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
