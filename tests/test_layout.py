"""The test suite's own layout: everything shared lives in tests/helpers.py (and the
test peers, servers in threads: SIP2 in tests/sip2_peers.py, SMTP in
tests/smtp_peer.py; the app behind a real server in a process of its own, gunicorn or
waitress, in tests/servers.py; the watch on the run's logs in tests/log_watch.py), so no test module imports another test module, a conftest, or
any other module of tests/."""
import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ALLOWED = {"helpers", "log_watch", "servers", "sip2_peers", "smtp_peer"}
RETIRED = {"factories", "staff_helpers", "tools"}  # merged into helpers.py


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import statement of the file, top-level or nested."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x` names x, `from .x import y` names x
                names = [node.module] if node.module else [alias.name for alias in node.names]
                found += [(node.lineno, "." + name) for name in names]
            else:
                found.append((node.lineno, node.module))
    return sorted(found)


def test_modules_import_nothing_of_tests_but_helpers():
    files = sorted(TESTS.rglob("*.py"))
    local = {path.stem for path in files} | RETIRED
    offences = []
    for path in files:
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            relative = module.startswith(".")
            of_tests = top in local or top.startswith("test_") or top == "conftest"
            if relative or (of_tests and top not in ALLOWED):
                offences.append(f"{path.relative_to(TESTS)}:{line} imports {module}")

    assert {"conftest.py", "helpers.py", "test_layout.py"} <= {path.name for path in files}
    assert offences == [], "import shared code from helpers.py instead:\n" + "\n".join(offences)
