"""A process runtime's kept output as plain text (the records' stamps cut off)."""

from __future__ import annotations

from pathlib import Path

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.supervisor_output import segment_name, segments


def output_text(driver: ProcessDriver, container_id: str) -> str:
    return folder_text(driver.log_path(container_id).parent)


def folder_text(folder: Path) -> str:
    """The output kept in a container's folder (`output.<offset>.log` files)."""
    text = []
    for offset in segments(str(folder)):
        for record in (folder / segment_name(offset)).read_bytes().splitlines():
            text.append(record.split(b" ", 2)[2].decode() if record.count(b" ") >= 2 else "")
    return "".join(line + "\n" for line in text)
