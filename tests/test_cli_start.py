"""The `kiosk` command loads only what it uses: `kiosk --help` neither the app nor a
command, a command's --help only its own module, a command the app without its
pages. Each start is a fresh interpreter, asked afterwards what it imported."""
import json
import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from kiosk.cli import COMMANDS, KioskGroup, app_for_command, main

ROOT = Path(__file__).resolve().parent.parent
# The pages, the printouts (a slip's text, printing.slip, is no printout), the spreadsheets,
# migrations and the server: no command that serves no page, prints nothing, reads no
# spreadsheet and does not migrate needs any of them.
NEVER = ("kiosk.web", "printing.pdf", "printing.escpos", "printing.barcodes",
         "printing.fonts", "reportlab", "openpyxl", "xlrd", "segno", "barcode", "escpos", "waitress", "flask_wtf",
         "alembic", "flask_migrate")
# ...nor a command's help the app; nor the listing of the commands anything but kiosk.cli.
NOT_FOR_HELP = NEVER + ("kiosk.app.factory",)
NOT_FOR_THE_LISTING = NOT_FOR_HELP + ("sqlalchemy", "flask_sqlalchemy", "babel", "flask_babel", "holidays", "re2",
                                      "kiosk.app", "kiosk.domain", "kiosk.storage", "kiosk.wording", "kiosk.cli.",
                                      "printing")

PROBE = """
import json, sys
from kiosk.cli import main
runs = json.loads(sys.argv[1])
for args in runs:
    try:
        main(args, prog_name="kiosk")
    except SystemExit as exit:
        if exit.code not in (0, None):
            raise
print("\\nIMPORTED " + json.dumps(sorted(sys.modules)))
"""


def started(tmp_path: Path, *runs: list[str]) -> tuple[str, set[str]]:
    """The output of `kiosk ARGS` for each run, one after another in one fresh
    interpreter, and every module it had imported at the end."""
    env = {**os.environ, "KIOSK_INSTANCE": str(tmp_path / "instance"), "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(runs)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    output, _, imported = done.stdout.rpartition("\nIMPORTED ")
    return output, set(json.loads(imported))


def loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p if p.endswith(".") else p + ".")
                                            for p in prefixes))


def test_kiosk_help_imports_no_command_no_app_and_touches_no_database(tmp_path):
    output, modules = started(tmp_path, ["--help"])

    assert "issue" in output and "Perform database migrations." in output
    assert loaded(modules, NOT_FOR_THE_LISTING) == []
    assert not (tmp_path / "instance").exists()


def test_a_commands_help_imports_neither_the_pages_nor_the_printouts(tmp_path):
    runs = [[name, "--help"] for name in COMMANDS if name != "db"]  # `db` is Flask-Migrate's: alembic, rightly
    output, modules = started(tmp_path, *runs)

    assert output.count("Usage: kiosk ") == len(runs)
    assert loaded(modules, NOT_FOR_HELP) == []
    assert not (tmp_path / "instance").exists()


def test_issuing_and_enrolling_a_kiosk_load_no_page_and_no_printout(tmp_path):
    started(tmp_path, ["db", "upgrade"], ["demo"])  # a process of their own: the demo writes a spreadsheet

    output, modules = started(tmp_path, ["issue", "--library", "demo", "--card", "55555555", "--json"],
                              ["enroll-kiosk", "--library", "demo", "--name", "Hol", "--printer", "escpos-tcp:10.0.0.9"])

    issued, enrolled = output.strip().split("\n", 1)
    assert json.loads(issued)["status"] == "issued" and "/kiosk/enrol/" in enrolled
    assert loaded(modules, NEVER) == []


def test_the_listing_from_the_table_is_the_listing_of_the_commands():
    """COMMANDS holds each command's help for `kiosk --help`: it must be the command's own."""
    group = KioskGroup(name="kiosk", help=main.help, create_app=app_for_command, add_version_option=False)
    from_the_table = CliRunner().invoke(group, ["--help"], prog_name="kiosk", terminal_width=100)
    ctx = click.Context(group)
    for name, entry in COMMANDS.items():
        command = group.get_command(ctx, name)
        assert command is entry.load() and command.name == name and not command.hidden
        stand_in = click.Command(name, help=entry.help)
        for limit in (20, 45, 60, 200):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), name
    from_the_commands = CliRunner().invoke(group, ["--help"], prog_name="kiosk", terminal_width=100)

    assert from_the_table.exit_code == 0 and from_the_table.output == from_the_commands.output
    assert "Pokazuje pule kodów" in from_the_table.output


def test_the_app_adds_no_command_the_table_does_not_name(app):
    assert set(app.cli.list_commands(click.Context(app.cli))) <= set(COMMANDS)


def test_a_mistyped_command_is_still_refused_with_a_suggestion(runner):
    mistyped = runner.invoke(main, ["isue"])

    assert mistyped.exit_code == 2
    assert "No such command 'isue'" in mistyped.output and "Did you mean 'issue'?" in mistyped.output
