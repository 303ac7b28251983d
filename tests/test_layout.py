"""The package's folders are its stages, stacked: nothing imports a stage above its own, nothing imports in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import musiclstm

PACKAGE = Path(musiclstm.__file__).parent
# Each stage and the stages under it: a module may import its own stage and any stage below, never one above.
# The public API (the package's __init__, `serving`, which serves a page on a port, and `playing.web`, which serves
# the live page) stands over every stage;
# the command line and the pages stand on it alone.
STAGES = ["base", "music", "data", "network", "judging", "composing", "listening", "playing", "api", "pages"]
BASE = {"musiclstm.config", "musiclstm.files"}
API = {"musiclstm", "musiclstm.serving", "musiclstm.playing.web"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str:
    if module in BASE:
        return "base"
    if module in API:
        return "api"
    if module == "musiclstm.cli":
        return "pages"
    return module.split(".")[1]


def imports_of(path: Path) -> set[str]:
    """Every musiclstm module a file imports, at the top or inside a function, with `from a import b` read as a.b
    where b is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in MODULES}


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_every_module_lies_in_a_known_stage():
    assert {stage_of(module) for module in MODULES} <= set(STAGES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_stage_above_its_own(module):
    floor = STAGES.index(stage_of(module))
    above = sorted(name for name in imports_of(MODULES[module]) if STAGES.index(stage_of(name)) > floor)
    assert above == [], f"{module} ({stage_of(module)}) imports a stage above it"


def test_no_modules_import_each_other_in_a_circle():
    graph = {module: imports_of(path) - {module} for module, path in MODULES.items()}
    graph = {module: {name for name in names if not module.startswith(name + ".")} for module, names in graph.items()}
    visiting, done, circles = set(), set(), []

    def visit(module: str, trail: list[str]) -> None:
        if module in visiting:
            circles.append(trail[trail.index(module) :])
            return
        if module in done:
            return
        visiting.add(module)
        for name in sorted(graph[module]):
            visit(name, [*trail, name])
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        visit(module, [module])
    assert circles == []


@pytest.mark.parametrize("module", ["musiclstm.cli", "musiclstm.pages.studio", "musiclstm.pages.listening"])
def test_the_command_line_and_the_pages_import_nothing_of_musiclstm_but_its_public_api(module):
    tree = ast.parse(MODULES[module].read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {name for name in imported if name.startswith("musiclstm")} == {"musiclstm"}
