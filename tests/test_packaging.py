"""The wheel is the app: templates, static files and migrations inside, working away from the checkout.

The wheel goes into a fresh virtual environment without system site-packages. Its dependencies are not
downloaded again: a .pth file puts this environment's site-packages *after* the fresh one on sys.path, so
the installed wheel, not the checkout, is what gets imported (asserted), and the test stays offline and
fast. Instead of trusting a download, the script checks that every third-party package the app's code
imports belongs to a distribution the wheel declares, directly or through its dependencies.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import sys
from pathlib import Path

venv, work = Path(sys.prefix).resolve(), Path(sys.argv[1])
import kxn_meetings
from kxn_meetings import create_app, schema

assert Path(kxn_meetings.__file__).resolve().is_relative_to(venv), kxn_meetings.__file__
app = create_app({
    "SECRET_KEY": "a-real-secret-for-the-packaging-test-0123456789",
    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'kxn.sqlite3'}",
    "INSTANCE_PATH": str(work / "instance"),
})
assert Path(app.template_folder).resolve().is_relative_to(venv), app.template_folder
with app.app_context():
    schema.upgrade()
client = app.test_client()
for url in ("/", "/sign-in"):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    assert "Knowledge Exchange Network" in response.get_data(as_text=True), url
assert client.get("/static/site.css").status_code == 200
# Every third-party package the app's code imports must come from a declared dependency (or one of theirs).
import ast
from importlib.metadata import distribution, packages_distributions
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

imported = set()
for source in Path(kxn_meetings.__file__).parent.rglob("*.py"):
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
needed, todo = set(), [("kxn-meetings", frozenset())]
while todo:
    name, extras = todo.pop()
    key = (canonicalize_name(name), extras)
    if key in needed:
        continue
    needed.add(key)
    for line in distribution(name).requires or []:
        requirement = Requirement(line)
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in extras | {""}):
            continue
        todo.append((requirement.name, frozenset(requirement.extras)))
declared = {name for name, _ in needed}
owners = packages_distributions()
undeclared = sorted(
    f"{module} ({', '.join(owners.get(module, ['no distribution']))})"
    for module in imported - set(sys.stdlib_module_names) - {"kxn_meetings", "__future__"}
    if not {canonicalize_name(d) for d in owners.get(module, [])} & declared
)
assert not undeclared, "imported but not declared in pyproject dependencies: " + ", ".join(undeclared)
print("installed wheel serves pages")
"""


def run(*command: str | Path, **options) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300, **options)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def test_the_wheel_holds_the_whole_app_and_runs_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--quiet",
        *isolation,
        "--wheel-dir",
        dist,
        REPO,
        cwd=tmp_path,
    )
    [wheel] = dist.glob("kxn_meetings-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"kxn_meetings/templates/base.html", "kxn_meetings/static/site.css"} <= names
    migrations = {
        f"kxn_meetings/migrations/versions/{p.name}" for p in (REPO / "kxn_meetings/migrations/versions").glob("*.py")
    }
    assert migrations and migrations <= names
    templates = {
        f"kxn_meetings/templates/{p.relative_to(REPO / 'templates').as_posix()}"
        for p in (REPO / "templates").rglob("*")
        if p.is_file()
    }
    assert templates <= names, sorted(templates - names)
    assert not any(name.startswith(("tests/", "instance/")) for name in names)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel)
    site_packages = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(site_packages) / "kxn_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KXN_", "PYTHON", "FLASK_", "VIRTUAL_ENV"))
    }
    result = run(python, "-I", "-c", SCRIPT, elsewhere, cwd=elsewhere, env=environment)
    assert "installed wheel serves pages" in result.stdout
