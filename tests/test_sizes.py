"""Code a newcomer can read: no module over 300 lines, no function over 60 (tests and benchmarks aside)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("portrait", "serving", "experiments", "training", "features")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 60


def long_functions(source: str, *, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(name, lines) of every function or method longer than `limit`, decorators included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            if node.end_lineno - start + 1 > limit:
                found.append((node.name, node.end_lineno - start + 1))
    return found


MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_module_is_over_300_lines() -> None:
    lines = {p.relative_to(ROOT).as_posix(): p.read_text("utf-8").count("\n") for p in MODULES}
    assert not {m: n for m, n in lines.items() if n > MAX_MODULE_LINES}


def test_no_function_is_over_60_lines() -> None:
    long = {p.relative_to(ROOT).as_posix(): long_functions(p.read_text("utf-8")) for p in MODULES}
    assert not {m: f for m, f in long.items() if f}


def test_the_length_check_counts_decorators_and_bodies() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    assert long_functions(f"@decorator\ndef f():\n{body}\n") == [("f", 62)]
    assert long_functions(f"def f():\n{body}\n", limit=61) == []
