"""Imports run one way: views and CLI -> services -> models and the pure helpers -> extensions.

The graph is read from the source with `ast`, so an import hidden inside a function counts too.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from kxn_meetings.models import MessageKind

PACKAGE = Path(__file__).resolve().parent.parent / "kxn_meetings"
TOP = {"views", "forms", "cli", "demo"}
SERVICES = "services"
MODELS = "models"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {
        module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.relative_to(PACKAGE).parts
    }


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in known:
                    found.add(submodule)
                elif target in known:
                    found.add(target)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph.get(node, ())):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_reader_sees_relative_and_absolute_imports():
    graph = import_graph()
    # `from ..extensions import Model` and `from .base import ...`: a module named by a relative import.
    assert {"kxn_meetings.extensions", "kxn_meetings.models.base"} <= graph["kxn_meetings.models.meetings"]
    # `from ..services import meetings as meeting_service`: a submodule imported by name from its package.
    assert "kxn_meetings.services.meetings" in graph["kxn_meetings.views.meetings"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_of_the_package_imports_itself_round_in_a_circle():
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(component) for component in found)


def imports_upward(from_layer: str, into: set[str]) -> list[str]:
    return sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        if layer(name) == from_layer
        for target in targets
        if layer(target) in into
    )


def test_services_never_import_views_forms_or_the_cli():
    assert imports_upward(SERVICES, TOP) == []


def test_models_import_nothing_above_them():
    assert imports_upward(MODELS, TOP | {SERVICES, "mail", "ical", "filters", "security"}) == []


HELPER = PACKAGE / "views" / "transactions.py"


def session_endings(source: str) -> list[str]:
    """Each `<...>session.commit()` or `<...>session.rollback()` call in the source, as written."""
    return [
        ast.unparse(node.func)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("commit", "rollback")
        and ast.unparse(node.func.value).endswith("session")
    ]


def test_the_reader_finds_commits_and_rollbacks():
    source = "db.session.commit()\nif x:\n    db.session.rollback()\nsession.commit()\nother.commit()\n"
    assert sorted(session_endings(source)) == ["db.session.commit", "db.session.rollback", "session.commit"]


def test_views_end_a_request_only_through_the_transaction_helper():
    found = [
        f"{path.relative_to(PACKAGE.parent)}: {call}"
        for path in sorted((PACKAGE / "views").rglob("*.py"))
        if path != HELPER
        for call in session_endings(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "commit or roll back with views/transactions.transaction(): " + "; ".join(found)


def organiser_checks(source: str) -> list[str]:
    """Each place that decides on its own who is an organiser: `current_user.is_organiser` read, or `abort(403)`."""
    checks = {(ast.Attribute, "current_user.is_organiser"), (ast.Call, "abort(403)")}
    nodes = (node for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Attribute, ast.Call)))
    return [ast.unparse(node) for node in nodes if (type(node), ast.unparse(node)) in checks]


def test_views_require_an_organiser_only_with_the_one_decorator():
    assert organiser_checks("if not current_user.is_organiser:\n    abort(403)\nis_organiser()\n") == [
        "current_user.is_organiser",
        "abort(403)",
    ]
    found = [
        f"{path.relative_to(PACKAGE.parent)}: {check}"
        for path in sorted((PACKAGE / "views").rglob("*.py"))
        for check in organiser_checks(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "use security.organiser_required (or is_organiser() to show or hide): " + "; ".join(found)


TEMPLATES = PACKAGE.parent / "templates"
# A status or kind compared by its stored string: `x.status.value == 'draft'`, `kind == "nudge"`.
VALUE_COMPARISON = re.compile(r"\.value\s*(?:==|!=|\bin\b|\bnot\s+in\b)")


def kind_comparison() -> re.Pattern[str]:
    words = "|".join(re.escape(kind.value) for kind in MessageKind)
    return re.compile(rf"""(?:==|!=|\bin\b)\s*\(?\s*["'](?:{words})["']""")


def vocabulary_comparisons(text: str) -> list[str]:
    kinds = kind_comparison()
    return [line.strip() for line in text.splitlines() if VALUE_COMPARISON.search(line) or kinds.search(line)]


def test_the_reader_finds_statuses_and_kinds_compared_as_strings():
    source = (
        "{% if meeting.status.value == 'draft' %}\nif kind != 'update':\nif m.status.value in ('sent',):\n"
        "if meeting.status.is_draft:\nif kind == MessageKind.UPDATE:\nkind = 'update'\n"
    )
    assert vocabulary_comparisons(source) == [
        "{% if meeting.status.value == 'draft' %}",
        "if kind != 'update':",
        "if m.status.value in ('sent',):",
    ]


def test_statuses_and_message_kinds_are_compared_as_enums_not_strings():
    files = [*package_modules().values(), *TEMPLATES.rglob("*.html"), *TEMPLATES.rglob("*.txt")]
    found = [
        f"{path.relative_to(PACKAGE.parent)}: {line}"
        for path in sorted(files)
        for line in vocabulary_comparisons(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "ask the enum (is_draft, is_failed, MessageKind...): " + "; ".join(found)


def test_a_web_process_does_not_import_the_migration_tools(tmp_path):
    """Alembic costs a worker about 10 MiB (README, "What each web process keeps"): only the commands need it."""
    script = "import sys; from kxn_meetings import create_app; create_app(); print(sorted(sys.modules))"
    env = {**os.environ, "KXN_SECRET_KEY": "k" * 64, "KXN_INSTANCE_PATH": str(tmp_path)}
    env["KXN_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'kxn.sqlite3'}"
    loaded = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert "'flask'" in loaded
    assert "'alembic'" not in loaded and "'mako'" not in loaded
