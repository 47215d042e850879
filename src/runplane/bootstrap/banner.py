"""What `serve` prints once it answers: where it is, where its dashboard, docs
and admin key are, and the command to try next (README, "A first session")."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from runplane.config import Settings

NEXT_COMMAND = 'runplane runtime create demo --command "python3 -m http.server 9000" --port 9000'
ALL_ADDRESSES = ("0.0.0.0", "::", "")


def browsable_url(settings: Settings) -> str:
    """The URL to open: a listener on every address is reached on 127.0.0.1."""
    if settings.host in ALL_ADDRESSES:
        return f"http://127.0.0.1:{settings.port}"
    return settings.base_url


def summary(settings: Settings) -> dict[str, str]:
    """The fields of the one `runplane serving` log line."""
    url = browsable_url(settings)
    return {
        "version": version("runplane"),
        "url": url,
        "dashboard": f"{url}/ui",
        "docs": f"{url}/docs",
        "admin_key": str(settings.admin_key_path.resolve()),
    }


def banner(settings: Settings) -> str:
    """A few lines for a person at a terminal. The next command carries the
    settings a CLI in another terminal would not have: a URL or data dir other
    than the defaults the CLI assumes."""
    fields = summary(settings)
    env = []
    if fields["url"] != Settings.model_construct().base_url:
        env.append(f"RUNPLANE_URL={fields['url']}")
    if settings.data_dir != Settings.model_construct().data_dir:
        env.append(f"RUNPLANE_DATA_DIR={Path(settings.data_dir).resolve()}")
    listening = " (every address)" if settings.host in ALL_ADDRESSES else ""
    return "\n".join(
        [
            f"runplane {fields['version']} is serving on {fields['url']}{listening}",
            f"  dashboard  {fields['dashboard']}",
            f"  API docs   {fields['docs']}",
            f"  admin key  {fields['admin_key']} (the CLI reads it from there)",
            f"  try        {' '.join([*env, NEXT_COMMAND])}",
            "",
        ]
    )
