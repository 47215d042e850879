"""The layout's rules, checked on the source: dependencies point inward, no
import circle, small modules (docs/architecture.md explains the layers)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "runplane"
MAX_LINES = 300

ALLOWED: dict[str, set[str]] = {
    # layer -> the layers (or single modules) it may import, besides itself.
    # The fakes name streams as the Redis adapters do, from the one names module.
    "domain": set(),
    "ports": {"domain"},
    "services": {"domain", "ports"},
    "streams": {"domain", "ports"},
    "adapters": {"domain", "ports"},
    "testing": {"domain", "ports", "adapters.redis.names"},
    "workers": {"domain", "ports", "services", "streams"},
    "api": {"domain", "ports", "services"},
    "cli": {"domain", "config", "bootstrap"},
    "bootstrap": {"*"},
    "config": {"adapters"},
    "__main__": {"cli"},
    "client": set(),
}
ANYWHERE = {"logs"}
"""Leaf modules every layer may use: logging and its correlation id."""


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every runplane module `path` imports, at any depth of the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("runplane"):
                # `from package import module` depends on the module alone.
                submodules = [f"{node.module}.{a.name}" for a in node.names]
                inside = [name for name in submodules if name in known]
                yield from inside or [node.module]
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("runplane"))


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imports_of(path, known)) & known.keys() for name, path in known.items()}


def test_dependencies_point_inward() -> None:
    wrong = []
    for module, targets in graph().items():
        own = layer(module)
        allowed = ALLOWED.get(own, set())
        for target in targets:
            theirs = layer(target)
            if target.removeprefix("runplane.") in allowed:
                continue
            if theirs in {own, "", *ANYWHERE} or "*" in allowed or theirs in allowed:
                continue
            wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_leaf_modules_import_nothing_of_runplane() -> None:
    edges = graph()
    assert {leaf: edges[f"runplane.{leaf}"] for leaf in ANYWHERE} == {
        leaf: set() for leaf in ANYWHERE
    }


def test_client_imports_nothing_else_of_runplane() -> None:
    """runplane.client can ship on its own: not even the leaf modules."""
    outside = {
        f"{module} -> {target}"
        for module, targets in graph().items()
        if layer(module) == "client"
        for target in targets
        if layer(target) != "client"
    }
    assert outside == set()


def test_no_import_circle() -> None:
    edges = graph()
    # Package __init__ modules that only hold a docstring import nothing; a
    # circle through one would still show here.
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == []


@pytest.mark.parametrize("path", sorted(modules().values()), ids=lambda p: p.name)
def test_module_is_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES
