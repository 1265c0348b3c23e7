"""The `kiosk` command: every core operation for staff, scripts and checks.

Exit codes: 0 done (a reprint too), 1 refused with a message, 2 bad usage.
Every refusal is said with the same sentence the panel uses (kiosk.wording),
except where the command line has its own options to name.

A command loads only what it uses: this module names every command in COMMANDS
(where it lives, and its help's first paragraph for the listing) and imports a
command's module on first use, so `kiosk --help` loads neither the app nor any
command. A command that needs the app gets it without the web's blueprints (the
panel, the kiosk pages and their PDF, QR and spreadsheet libraries); the helpers
the commands share are in kiosk.cli.common."""
from __future__ import annotations

import importlib
import sys
from typing import NamedTuple

import click
from flask.cli import FlaskGroup

BUSY = "Baza danych jest zajęta; nic nie wydano ani nie zmieniono. Spróbuj za chwilę."


class Entry(NamedTuple):
    target: str  # "module:attribute"
    help: str  # the first paragraph of the command's help: `kiosk --help` shows it shortened

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


# A test checks that each help is the command's own, and that the app adds no command not named here.
COMMANDS = {
    "add-library": Entry("kiosk.cli.setup:add_library", "Dodaje bibliotekę."),
    "api-key": Entry("kiosk.cli.api_keys:api_key",
                     "Zakłada klucz API dla systemu biblioteki i wypisuje go raz; --revoke unieważnia, --list "
                     "wypisuje."),
    "backup": Entry("kiosk.cli.backup:backup",
                    "Zapisuje do jednego pliku spójną kopię bazy danych i sekretów instancji; serwer może działać."),
    "check-card": Entry("kiosk.cli.sip2:check_card",
                        "Sprawdza kartę tak jak kiosk, niczego nie wydając: test połączenia z systemem biblioteki."),
    "closed-days": Entry("kiosk.cli.closed_days:closed_days_command",
                         "Dni zamknięcia biblioteki poza weekendami i świętami: dodaje, usuwa albo wypisuje "
                         "(zmiana trafia do dziennika)."),
    "consortium": Entry("kiosk.cli.setup:consortium_settings",
                        "Pokazuje lub zmienia ustawienia konsorcjum (zmiana trafia do dziennika)."),
    "create-user": Entry("kiosk.cli.setup:create_user", "Zakłada konto pracownika i wypisuje wygenerowane hasło."),
    "db": Entry("flask_migrate.cli:db", "Perform database migrations."),  # Flask-Migrate's, added by the app too
    "demo": Entry("kiosk.cli.setup:demo",
                  "Gdy baza jest pusta: dodaje demonstracyjną bibliotekę z pulą na bieżący miesiąc."),
    "enroll-kiosk": Entry("kiosk.cli.setup:enroll_kiosk",
                          "Dopisuje kiosk i wypisuje jednorazowy link, który trzeba otworzyć na kiosku."),
    "import-activations": Entry("kiosk.cli.activations:import_activations_command",
                                "Oznacza jako aktywowane kody z listy aktywacji z panelu platformy "
                                "(XLSX, XLS lub CSV)."),
    "import-cards": Entry("kiosk.cli.codes:import_cards_command",
                          "Zastępuje rejestr ważnych kart biblioteki eksportem z systemu bibliotecznego."),
    "import-codes": Entry("kiosk.cli.codes:import_codes",
                          "Importuje pulę kodów z pliku XLSX, XLS lub CSV z panelu platformy."),
    "issue": Entry("kiosk.cli.codes:issue",
                   "Wydaje czytelnikowi kod na ten miesiąc (albo ten sam, jeśli już go dostał)."),
    "pools": Entry("kiosk.cli.codes:pools", "Pokazuje pule kodów: ile jest, ile wydano, ile zostało, ile przepadło."),
    "reader-data": Entry("kiosk.cli.reader_data:reader_data",
                         "Wypisuje wszystko, co zapisano o karcie czytelnika w bibliotece (prawo dostępu, RODO "
                         "art. 15); wgląd trafia do dziennika."),
    "purge": Entry("kiosk.cli.retention:purge_command",
                   "Usuwa dane czytelników (klucze, końcówki kart, notatki, adresy) starsze niż podana liczba "
                   "miesięcy; liczby w raportach miesięcznych zostają."),
    "restore": Entry("kiosk.cli.backup:restore",
                     "Przywraca kopię z `kiosk backup` do pustej instancji (przy zatrzymanym serwerze)."),
    "rules": Entry("kiosk.cli.rules:rules", "Pokazuje zasady wydawania kodów biblioteki; --set zmienia zasadę."),
    "send-mail": Entry("kiosk.cli.mail:send_mail",
                       "Wysyła e-maile z kodami, które czekają w kolejce (dla crona, gdy nie działa `kiosk serve`). "
                       "Kod wyjścia 0: wysłano wszystko, co czekało."),
    "serve": Entry("kiosk.cli.setup:serve", "Uruchamia serwer (waitress)."),
    "sip2": Entry("kiosk.cli.sip2:sip2", "Ustawia sprawdzanie kart biblioteki na żywo przez SIP2."),
    "slip": Entry("kiosk.cli.codes:slip",
                  "Drukuje ponownie wydruk wydanego kodu (PDF albo ESC/POS do pliku): liczony i zapisany w "
                  "dzienniku jak każdy ponowny wydruk; tylko kod ważny w tym miesiącu."),
}


def refuse(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def app_for_command():
    """The app a command gets (FlaskGroup calls this when a command first needs it).
    The commands named in COMMANDS serve no page: their app is without the web's
    blueprints, and without Flask-Migrate but for `kiosk db`. Flask's own `run`,
    `shell` and `routes`, and a command the app itself would add, get the whole
    app; `kiosk serve` makes its whole app itself."""
    from kiosk import create_app
    from kiosk.app.logs import configure_logging

    configure_logging()
    ctx = click.get_current_context(silent=True)
    command = ctx.find_root().invoked_subcommand if ctx is not None else None
    ours = command in COMMANDS
    return create_app(web=not ours, migrations=not ours or command == "db")


class KioskGroup(FlaskGroup):
    """FlaskGroup, lazily: a command's module is imported when the command is looked
    up to run (or to show its help). `--help` lists COMMANDS and Flask's own `run`,
    `shell` and `routes` without loading the app or scanning Flask's plugin entry
    points (the app adds only `db`, which COMMANDS names; a test keeps it so). Any
    other name goes to FlaskGroup, which looks at plugins and loads the app, as before."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return super().get_command(ctx, name)
        if name not in self.commands:
            self.add_command(entry.load(), name)
        return self.commands[name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Click's own listing, with a stand-in from the table for each command not imported yet.
        shown = {name: self.commands.get(name) or click.Command(name, help=COMMANDS[name].help)
                 for name in self.list_commands(ctx)}
        click.Group(commands=shown).format_commands(ctx, formatter)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            unknown = getattr(error, "command_name", None)  # click ≥ 8.4: NoSuchCommand, with suggestions
            if unknown is None:
                raise
            raise type(error)(unknown, possibilities=self.list_commands(ctx), ctx=ctx) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            from sqlalchemy.exc import OperationalError

            from kiosk.storage.database import DatabaseBusy, is_busy

            if isinstance(exc, DatabaseBusy) or (isinstance(exc, OperationalError) and is_busy(exc)):
                refuse(BUSY)
            raise


@click.group(cls=KioskGroup, create_app=app_for_command, add_version_option=False)
def main() -> None:
    """Kodomat: kody e-booków dla czytelników bibliotek."""
