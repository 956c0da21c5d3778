"""The benchmarks run only under `make bench`, not in the suite: what they import from the app, at the top of a
script or inside a function, must still be there."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def app_imports(path: Path) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kxn_meetings"):
            found.extend((node.module, alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_every_name_a_benchmark_imports_from_the_app_exists(script):
    missing = [
        f"{module}.{name}"
        for module, name in app_imports(script)
        if not hasattr(importlib.import_module(module), name) and importlib.util.find_spec(f"{module}.{name}") is None
    ]
    assert missing == []


def test_the_check_finds_a_name_that_is_gone(tmp_path):
    script = tmp_path / "gone.py"
    script.write_text("def seed():\n    from kxn_meetings.services.meetings import no_such_name\n")
    assert app_imports(script) == [("kxn_meetings.services.meetings", "no_such_name")]
    assert not hasattr(importlib.import_module("kxn_meetings.services.meetings"), "no_such_name")
