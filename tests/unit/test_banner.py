"""What `serve` prints once it answers (bootstrap/banner.py)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from runplane.bootstrap.banner import NEXT_COMMAND, banner, summary
from runplane.config import Settings


def test_the_default_settings_need_nothing_before_the_next_command() -> None:
    text = banner(Settings.model_construct())
    lines = text.splitlines()
    assert lines[0] == f"runplane {version('runplane')} is serving on http://127.0.0.1:8080"
    assert "  dashboard  http://127.0.0.1:8080/ui" in lines
    assert "  API docs   http://127.0.0.1:8080/docs" in lines
    key = Path(".runplane/admin.key").resolve()
    assert f"  admin key  {key} (the CLI reads it from there)" in lines
    assert lines[-1] == f"  try        {NEXT_COMMAND}"


def test_another_port_or_data_dir_is_carried_into_the_next_command(tmp_path: Path) -> None:
    settings = Settings.model_construct(port=9123, data_dir=tmp_path / "state")
    [next_line] = [line for line in banner(settings).splitlines() if "try" in line]
    assert next_line == (
        f"  try        RUNPLANE_URL=http://127.0.0.1:9123 "
        f"RUNPLANE_DATA_DIR={(tmp_path / 'state').resolve()} {NEXT_COMMAND}"
    )


def test_a_listener_on_every_address_is_shown_on_loopback() -> None:
    settings = Settings.model_construct(host="0.0.0.0", port=8080)
    assert summary(settings)["url"] == "http://127.0.0.1:8080"
    assert (
        banner(settings)
        .splitlines()[0]
        .endswith("serving on http://127.0.0.1:8080 (every address)")
    )
