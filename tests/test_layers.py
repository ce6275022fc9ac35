"""Imports run one way: portrait/ -> serving/ -> experiments/ -> training/ -> features/.

Every import in every module is checked, including the ones inside functions. The base every
layer may import is portrait/settings.py and portrait/errors.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("features", "training", "experiments", "serving", "portrait")  # bottom to top
BASE = ("portrait.settings", "portrait.errors")


def imported_modules(source: str) -> list[tuple[int, str]]:
    """Every absolute module a source imports (`from a.b import c` gives a.b and a.b.c)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def upward_imports(relative: str, source: str) -> list[str]:
    """The imports of the module at `relative` that reach a layer above its own."""
    own = LAYERS.index(relative.split("/")[0])
    bad = []
    for line, module in imported_modules(source):
        top = module.split(".")[0]
        if top not in LAYERS or module == "portrait" or LAYERS.index(top) <= own:
            continue
        if any(module == b or module.startswith(b + ".") for b in BASE):
            continue
        bad.append(f"{relative}:{line} imports {module}")
    return bad


MODULES = sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py"))


def test_every_layer_has_modules() -> None:
    assert {p.relative_to(ROOT).parts[0] for p in MODULES} == set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_no_module_imports_a_layer_above_its_own(layer: str) -> None:
    bad = [
        line
        for path in MODULES
        if path.relative_to(ROOT).parts[0] == layer
        for line in upward_imports(path.relative_to(ROOT).as_posix(), path.read_text("utf-8"))
    ]
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_check_catches_upward_imports_and_allows_the_base() -> None:
    source = (
        "from portrait.errors import PortraitError\n"
        "from features.contract import CUSTOMER_ID\n"
        "def f():\n"
        "    from serving import state\n"
        "    import portrait.pipeline\n"
    )
    assert upward_imports("training/x.py", source) == [
        "training/x.py:4 imports serving",
        "training/x.py:4 imports serving.state",
        "training/x.py:5 imports portrait.pipeline",
    ]
    assert upward_imports("portrait/x.py", source) == []
