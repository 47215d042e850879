"""The runtime sandbox's rules: where a runtime's cwd may be, what its
environment holds, which user it runs as, and where work dirs go."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runplane.adapters.drivers import process_user
from runplane.adapters.drivers.process_spec import validate_process_spec
from runplane.adapters.drivers.process_user import (
    RuntimeSandbox,
    clean_env,
    resolve_cwd,
    resolve_runtime_user,
)
from runplane.config import Settings
from runplane.domain.errors import DriverError, InvalidSpec


def test_no_cwd_is_the_work_dir_and_a_relative_one_lies_inside_it(tmp_path: Path) -> None:
    work = tmp_path / "work" / "r1"
    (work / "sub").mkdir(parents=True)
    root = os.path.realpath(work)

    assert resolve_cwd(work, None) == str(work)
    assert resolve_cwd(work, "sub") == os.path.join(root, "sub")
    assert resolve_cwd(work, "sub/../sub/.") == os.path.join(root, "sub")
    assert resolve_cwd(work, ".") == root


def test_an_absolute_cwd_is_taken_as_given(tmp_path: Path) -> None:
    assert resolve_cwd(tmp_path / "work", "/srv/app") == "/srv/app"


@pytest.mark.parametrize("escape", ["..", "../other", "sub/../../other", "link", "link/deeper"])
def test_a_relative_cwd_may_not_lead_out_of_the_work_dir(tmp_path: Path, escape: str) -> None:
    work = tmp_path / "work" / "r1"
    (work / "sub").mkdir(parents=True)
    (tmp_path / "work" / "other").mkdir()
    # A symlink the runtime itself could have left in its folder.
    (work / "link").symlink_to(tmp_path / "work" / "other")

    with pytest.raises(DriverError, match="leads out of the runtime's working directory"):
        resolve_cwd(work, escape)


@pytest.mark.parametrize("cwd", ["..", "../x", "a/../../x", "./.."])
def test_the_spec_refuses_a_relative_cwd_that_climbs_out(cwd: str) -> None:
    with pytest.raises(InvalidSpec, match="leads out"):
        validate_process_spec({"command": ["x"], "cwd": cwd})


@pytest.mark.parametrize("cwd", ["data", "a/../b", "/abs/../path", "."])
def test_the_spec_keeps_a_cwd_that_stays_inside_or_is_absolute(cwd: str) -> None:
    assert validate_process_spec({"command": ["x"], "cwd": cwd})["cwd"] == cwd


def test_the_env_is_a_fixed_base_under_the_specs_own(tmp_path: Path) -> None:
    env = clean_env("nobody", tmp_path, {"APP": "1", "PATH": "/opt/bin"})

    assert env == {
        "PATH": "/opt/bin",
        "HOME": str(tmp_path),
        "USER": "nobody",
        "LOGNAME": "nobody",
        "LANG": "C.UTF-8",
        "APP": "1",
    }


@pytest.mark.parametrize("runtime_id", ["", ".", "..", "a/b"])
def test_a_runtime_id_that_is_no_folder_name_gets_no_work_dir(
    tmp_path: Path, runtime_id: str
) -> None:
    with pytest.raises(DriverError, match="cannot name a working directory"):
        RuntimeSandbox.of("", tmp_path).work_dir(runtime_id)


def test_the_empty_runtime_user_is_runplanes_own() -> None:
    user = resolve_runtime_user("")

    assert (user.uid, user.gid, user.switch) == (os.geteuid(), os.getegid(), False)


def test_an_unknown_runtime_user_is_an_error_for_root() -> None:
    if os.geteuid() == 0:
        with pytest.raises(DriverError, match="not a user on this host"):
            resolve_runtime_user("no-such-user-here")
    else:  # cannot switch anyway: runs as its own user
        assert resolve_runtime_user("no-such-user-here").uid == os.geteuid()


def test_as_root_runtimes_run_as_root_only_without_a_runtime_user(tmp_path: Path) -> None:
    root = os.geteuid() == 0
    as_root = process_user.runtimes_run_as_root
    assert as_root(Settings(data_dir=tmp_path, runtime_user="").runtime_user) is root
    assert as_root(Settings(data_dir=tmp_path, runtime_user="root").runtime_user) is root
    assert as_root(Settings(data_dir=tmp_path).runtime_user) is False


def test_the_work_dir_defaults_beside_the_data_dir(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path / "data").resolved_work_dir == tmp_path / "data-work"
    chosen = Settings(data_dir=tmp_path / "data", work_dir=tmp_path / "w")
    assert chosen.resolved_work_dir == tmp_path / "w"
    assert Settings().runtime_user == "nobody"


def test_without_root_runtimes_run_as_runplanes_user_and_another_name_is_warned_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    monkeypatch.setattr(os, "getegid", lambda: 4321)
    monkeypatch.setattr(process_user, "_warned", set())

    users = [resolve_runtime_user("someone-else") for _ in range(3)]

    assert {(u.uid, u.gid, u.switch) for u in users} == {(4321, 4321, False)}
    warnings = [r for r in caplog.records if "cannot switch users" in r.getMessage()]
    assert len(warnings) == 1
    assert process_user.runtimes_run_as_root("root") is False
