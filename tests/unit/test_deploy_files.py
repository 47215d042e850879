"""deploy/: the compose file and the systemd units say what docs/deploy.md says.
No container engine with compose runs here, so the compose file is checked as
data: every RUNPLANE_ name is a setting, and the parts that must differ per
instance or per host do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from runplane.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
SYSTEMD = DEPLOY / "systemd"
PENDING = {"redis_cluster"}
"""Settings the deployment files name that another branch of issue 14 adds
(drop a name once config.py has it)."""


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services(prefix: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if name.startswith(prefix)}


def known(variable: str) -> bool:
    name = variable.removeprefix("RUNPLANE_").lower()
    return name in Settings.model_fields or name in PENDING


def test_every_runplane_variable_in_compose_is_a_setting() -> None:
    names = {
        key
        for service in compose()["services"].values()
        for key in (service.get("environment") or {})
        if key.startswith("RUNPLANE_")
    }
    assert "RUNPLANE_REDIS_URL" in names
    assert sorted(n for n in names if not known(n)) == []


def test_serves_share_the_stores_and_differ_in_name_port_and_data() -> None:
    serves = services("serve-")
    assert len(serves) >= 2
    envs = [s["environment"] for s in serves.values()]
    assert {e["RUNPLANE_EMBEDDED_HOST"] for e in envs} == {"false"}
    assert {e["RUNPLANE_REDIS_CLUSTER"] for e in envs} == {"true"}
    assert len({e["RUNPLANE_DATABASE_URL"] for e in envs}) == 1
    assert envs[0]["RUNPLANE_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert len({e["RUNPLANE_INSTANCE_NAME"] for e in envs}) == len(serves)
    assert len({tuple(s["ports"]) for s in serves.values()}) == len(serves)
    assert len({tuple(s["volumes"]) for s in serves.values()}) == len(serves)
    for serve in serves.values():
        assert "/readyz" in " ".join(serve["healthcheck"]["test"])


def test_agents_have_a_host_id_and_a_data_dir_each() -> None:
    agents = services("agent-")
    assert len(agents) >= 2
    ids = [a["environment"]["RUNPLANE_HOST_ID"] for a in agents.values()]
    assert len(set(ids)) == len(agents)
    assert len({tuple(a["volumes"]) for a in agents.values()}) == len(agents)
    assert all("RUNPLANE_DATABASE_URL" not in a["environment"] for a in agents.values())


def test_the_redis_cluster_is_formed_before_runplane_starts() -> None:
    nodes = services("redis-")
    init = nodes.pop("redis-init")
    assert len(nodes) == 3
    assert all("--cluster-enabled" in n["command"] for n in nodes.values())
    script = init["command"][0]
    assert "--cluster create" in script
    assert "--cluster-yes" in script
    assert set(init["depends_on"]) == set(nodes)
    for name, service in {**services("serve-"), **services("agent-")}.items():
        condition = service["depends_on"]["redis-init"]["condition"]
        assert condition == "service_completed_successfully", name


def unit(name: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit file, by key (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z]+)=(.*)", line)
        if match:
            found.setdefault(match[1], []).append(match[2])
    return found


def test_the_agent_unit_lets_process_runtimes_outlive_the_agent() -> None:
    agent = unit("runplane-agent.service")
    assert agent["KillMode"] == ["process"]
    assert agent["Restart"] == ["always"]
    assert agent["ExecStart"][0].endswith("runplane agent")
    written = " ".join(agent["ReadWritePaths"])
    assert all(path in written for path in ("/var/lib/runplane/agent", "agent-work"))


def test_the_serve_unit_is_one_instance_per_port_and_locked_down() -> None:
    serve = unit("runplane-serve@.service")
    assert "RUNPLANE_PORT=%i" in serve["Environment"]
    assert "RUNPLANE_EMBEDDED_HOST=false" in serve["Environment"]
    assert serve["User"] == ["runplane"]
    assert serve["NoNewPrivileges"] == ["true"]
    assert serve["ProtectSystem"] == ["strict"]
    assert serve["ReadWritePaths"] == ["/var/lib/runplane/serve-%i"]


def test_every_variable_the_units_and_env_file_set_is_a_setting() -> None:
    lines = (SYSTEMD / "runplane.env.example").read_text().splitlines()
    for name in ("runplane-agent.service", "runplane-serve@.service"):
        lines += unit(name).get("Environment", [])
    names = {line.split("=", 1)[0] for line in lines if line.startswith("RUNPLANE_")}
    assert {"RUNPLANE_REDIS_URL", "RUNPLANE_DATABASE_URL", "RUNPLANE_HOST_ID"} <= names
    assert sorted(n for n in names if not known(n)) == []
