"""A remove leaves a runtime's empty work dir in place for a start that
follows; a second later, unclaimed, it is removed, or discarded like a full
one if something was written into it meanwhile."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from runplane.adapters.drivers import process_workdirs
from runplane.adapters.drivers.process_workdirs import EmptyWorkDirs


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_workdirs, "LEAVE_S", 0.05)


def folder(path: Path, *files: str) -> Path:
    path.mkdir()
    for name in files:
        (path / name).write_text("x")
    return path


async def test_what_is_not_a_folder_is_not_left(tmp_path: Path) -> None:
    dirs = EmptyWorkDirs(lambda _: False, lambda _: None)
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(folder(tmp_path / "target"))
    assert not dirs.leave("a", tmp_path / "missing")
    assert not dirs.leave("b", tmp_path / "file")
    assert not dirs.leave("c", tmp_path / "link")


async def test_unclaimed_empty_folders_go_and_claimed_ones_stay(tmp_path: Path) -> None:
    claimed = {"kept"}
    dirs = EmptyWorkDirs(lambda runtime_id: runtime_id in claimed, lambda _: None)
    assert dirs.leave("gone", folder(tmp_path / "gone"))
    assert dirs.leave("kept", folder(tmp_path / "kept"))
    assert not dirs.leave("full", folder(tmp_path / "full", "data"))
    assert (tmp_path / "gone").is_dir()  # not at once: a start may follow
    await asyncio.sleep(0.2)
    assert sorted(os.listdir(tmp_path)) == ["full", "kept"]


async def test_one_written_into_meanwhile_is_discarded_as_a_full_one(tmp_path: Path) -> None:
    discarded: list[Path] = []
    dirs = EmptyWorkDirs(lambda _: False, discarded.append)
    late = folder(tmp_path / "late")
    assert dirs.leave("late", late)
    (late / "written").write_text("x")
    await asyncio.sleep(0.2)
    assert discarded == [late]


async def test_closing_removes_what_is_left_at_once(tmp_path: Path) -> None:
    dirs = EmptyWorkDirs(lambda _: False, lambda _: None)
    assert dirs.leave("r", folder(tmp_path / "r"))
    dirs.close()
    assert os.listdir(tmp_path) == []
