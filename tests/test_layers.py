"""The import layers hold: each layer imports only those below it, and nothing imports api/.

contracts < core < executors < activities < workflows < worker (worker.py, bootstrap.py).
telemetry sits beside core (it imports contracts only and is used from activities up and by api/).
api/ imports contracts, core and telemetry only. Product code never imports the dev tooling
(devenv/, standins/, bench/, tests/); the tooling may import anything.

Every import counts, including the ones inside functions (an upward import hidden in a function body
is still a cycle waiting to happen).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RANK = {"contracts": 0, "core": 1, "telemetry": 1, "executors": 2, "activities": 3, "workflows": 4}
TOP = {"worker", "bootstrap"}  # entry points: may import every layer and each other, but not api/
TOOLING = {"devenv", "standins", "bench", "tests"}
# Beside-core layers may not import each other (telemetry must not need core, nor core telemetry).
SIBLINGS = {("core", "telemetry"), ("telemetry", "core")}
API_MAY_IMPORT = {"api", "contracts", "core", "telemetry"}


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_packages(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _violation(importer: str, imported: str) -> str | None:
    ours = set(RANK) | TOP | TOOLING | {"api"}
    if imported not in ours or importer == imported or importer in TOOLING:
        return None
    if imported in TOOLING:
        return f"product code must not import the dev tooling {imported}/"
    if imported == "api":
        return "nothing imports api/"
    if importer == "api":
        return None if imported in API_MAY_IMPORT else f"api/ imports only {sorted(API_MAY_IMPORT - {'api'})}"
    if importer in TOP:
        return None
    if imported in TOP:
        return f"{imported} is an entry point; only the other entry points import it"
    if (importer, imported) in SIBLINGS or RANK[imported] > RANK[importer]:
        return f"{importer} (layer {RANK[importer]}) must not import {imported} (layer {RANK[imported]})"
    return None


def _python_files() -> list[Path]:
    packages = [ROOT / name for name in [*RANK, "api", *TOOLING]]
    files = [p for pkg in packages if pkg.is_dir() for p in pkg.rglob("*.py")]
    return sorted(files + [ROOT / f"{name}.py" for name in TOP if (ROOT / f"{name}.py").exists()])


def upward_imports() -> list[str]:
    problems = []
    for path in _python_files():
        importer = _package(path)
        for lineno, imported in _imported_packages(path):
            reason = _violation(importer, imported)
            if reason:
                problems.append(f"{path.relative_to(ROOT)}:{lineno} imports {imported}: {reason}")
    return problems


def test_no_import_runs_against_the_layers() -> None:
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("core", "executors", False),
        ("contracts", "core", False),
        ("executors", "activities", False),
        ("activities", "workflows", False),
        ("workflows", "activities", True),
        ("activities", "telemetry", True),
        ("core", "telemetry", False),
        ("api", "executors", False),
        ("api", "telemetry", True),
        ("worker", "api", False),
        ("devenv", "api", True),
        ("activities", "standins", False),
        ("workflows", "worker", False),
    ],
)
def test_the_rule_itself(importer: str, imported: str, allowed: bool) -> None:
    assert (_violation(importer, imported) is None) is allowed


def test_the_checker_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from workflows.agent_slots import slots_id\n")
    assert _imported_packages(module) == [(2, "workflows")]
