"""The shape of the code: the domain knows nothing of the web, modules stay small."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kiosk"
OUTER_LAYERS = ("flask", "flask_babel", "flask_wtf", "flask_sqlalchemy", "flask_migrate", "htmx_flask",
                "werkzeug.wrappers", "kiosk.app", "kiosk.web", "kiosk.cli", "kiosk.wording")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "migrations" not in p.parts)


def test_no_domain_or_storage_module_imports_flask_or_an_outer_layer():
    offenders = {}
    for layer in ("domain", "storage"):
        for path in python_modules(PACKAGE / layer):
            bad = {name for name in imported_modules(path)
                   if any(name == outer or name.startswith(outer + ".") for outer in OUTER_LAYERS)}
            if bad:
                offenders[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}


def test_the_check_itself_sees_a_flask_import(tmp_path):
    # The test above must be able to fail: a module importing Flask is seen.
    module = tmp_path / "m.py"
    module.write_text("from flask import g\nimport kiosk.web.kiosk\nfrom kiosk.domain import clock\n")
    assert imported_modules(module) == {"flask", "kiosk.web.kiosk", "kiosk.domain"}


def test_importing_the_domain_loads_no_flask():
    import subprocess
    import sys

    probe = ("import sys, kiosk.domain.issuing, kiosk.domain.pools, kiosk.domain.kiosks, kiosk.domain.settings; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'flask_babel', 'flask_wtf')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent)
    assert loaded.stdout.strip() == "[]"


def test_no_module_is_longer_than_400_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for folder in (PACKAGE, PACKAGE.parent / "printing")
            for p in python_modules(folder) if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_views_write_only_through_the_unit_of_work():
    """No view or command commits by itself: writes go through kiosk.app.units.write."""
    offenders = [str(p.relative_to(PACKAGE)) for folder in ("web", "cli", "domain")
                 for p in python_modules(PACKAGE / folder) if ".commit()" in p.read_text()]
    assert offenders == []
