"""The `kiosk` command as staff and scripts use it: names, JSON fields, exit codes."""
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from sqlalchemy import select

from helpers import codes, csv_file, make_library, panel_file, this_month, xlsx_file
from kiosk.cli import main
from kiosk.app.extensions import db
from kiosk.storage.models import CardRecord, StaffUser


def kiosk(runner, *args):
    result = runner.invoke(main, list(args))
    db.session.remove()  # as the command's process would end
    return result


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_add_library_then_import_then_issue_then_reprint(runner, tmp_path):
    assert kiosk(runner, "add-library", "wola", "--name", "Biblioteka na Woli").exit_code == 0
    first, last = this_month()
    path = write(tmp_path, "kody.xlsx", panel_file(codes("CLI", 3)))

    imported = kiosk(runner, "import-codes", path, "--library", "wola", "--month", f"{first:%Y-%m}")
    issued = kiosk(runner, "issue", "--library", "wola", "--card", "12345678", "--json")
    again = kiosk(runner, "issue", "--library", "wola", "--card", "1234-5678", "--json")

    assert imported.exit_code == 0, imported.output
    assert "Zaimportowano 3 kody" in imported.output
    first_answer, second_answer = json.loads(issued.output), json.loads(again.output)
    assert issued.exit_code == 0 and again.exit_code == 0
    assert first_answer["status"] == "issued" and first_answer["code"].startswith("CLI")
    assert (first_answer["valid_from"], first_answer["valid_until"]) == (first.isoformat(), last.isoformat())
    assert first_answer["reason"] is None
    assert second_answer["status"] == "reprint" and second_answer["code"] == first_answer["code"]


def test_refusals_exit_1_with_a_reason(runner, tmp_path):
    make_library("lib")

    card = kiosk(runner, "issue", "--library", "lib", "--card", "?!", "--json")
    no_pool = kiosk(runner, "issue", "--library", "lib", "--card", "12345678", "--json")
    bad_file = kiosk(runner, "import-codes", write(tmp_path, "x.pdf", b"%PDF-1.4\x00\x01"),
                     "--library", "lib", "--month", "2020-01")

    assert card.exit_code == 1 and json.loads(card.output)["status"] == "card_refused"
    assert json.loads(card.output)["reason"] == "format"
    assert no_pool.exit_code == 1 and json.loads(no_pool.output)["status"] == "no_pool"
    assert bad_file.exit_code == 1 and "To nie jest arkusz" in bad_file.output


def test_no_codes_left_exits_1(runner, tmp_path):
    make_library("lib")
    kiosk(runner, "import-codes", write(tmp_path, "k.xlsx", panel_file(codes("ONE", 1))),
          "--library", "lib", "--month", f"{this_month()[0]:%Y-%m}")
    kiosk(runner, "issue", "--library", "lib", "--card", "11111111")

    late = kiosk(runner, "issue", "--library", "lib", "--card", "22222222", "--json")

    assert late.exit_code == 1 and json.loads(late.output)["status"] == "no_codes_left"


def test_bad_usage_exits_2(runner, tmp_path):
    make_library("lib")
    path = write(tmp_path, "k.xlsx", panel_file(codes("USE", 1)))

    assert kiosk(runner, "issue", "--library", "nowhere", "--card", "1234").exit_code == 2
    assert kiosk(runner, "issue", "--library", "lib").exit_code == 2
    assert kiosk(runner, "import-codes", path, "--library", "lib", "--month", "2020-13").exit_code == 2
    assert kiosk(runner, "import-codes", path, "--library", "lib", "--month", "2020-01",
                 "--valid-from", "2020-01-01", "--valid-until", "2020-01-31").exit_code == 2
    assert kiosk(runner, "import-codes", path, "--library", "lib",
                 "--valid-from", "2020-01-01").exit_code == 2


def test_dry_run_then_window_from_dates(runner, tmp_path):
    make_library("lib")
    path = write(tmp_path, "k.csv", csv_file([["Kod"]] + [[c] for c in codes("DRY", 4)]))

    dry = kiosk(runner, "import-codes", path, "--library", "lib", "--valid-from", "02.01.2020",
                "--valid-until", "2020-01-31", "--dry-run")
    pools_after_dry = json.loads(kiosk(runner, "pools", "--json").output)
    real = kiosk(runner, "import-codes", path, "--library", "lib", "--valid-from", "02.01.2020",
                 "--valid-until", "2020-01-31")

    assert dry.exit_code == 0 and "nic nie zapisano" in dry.output and "DRY000001" in dry.output
    assert pools_after_dry == []
    assert real.exit_code == 0 and "02.01.2020–31.01.2020" in real.output


def test_pools_json_fields(runner, tmp_path):
    make_library("lib")
    first, last = this_month()
    kiosk(runner, "import-codes", write(tmp_path, "k.xlsx", panel_file(codes("POL", 5), (first, last))),
          "--library", "lib")
    kiosk(runner, "issue", "--library", "lib", "--card", "12345678")

    (pool,) = json.loads(kiosk(runner, "pools", "--library", "lib", "--json").output)

    assert {k: pool[k] for k in ("library", "platform", "valid_from", "valid_until", "total",
                                 "issued", "left", "expired")} == {
        "library": "lib", "platform": "legimi", "valid_from": first.isoformat(),
        "valid_until": last.isoformat(), "total": 5, "issued": 1, "left": 4, "expired": 0}
    table = kiosk(runner, "pools").output
    assert "lib" in table and first.strftime("%d.%m.%Y") in table


def test_import_cards_makes_the_registry_decide(runner, tmp_path):
    make_library("reg", card_check="registry")
    first, _ = this_month()
    kiosk(runner, "import-codes", write(tmp_path, "k.xlsx", panel_file(codes("REG", 5))),
          "--library", "reg", "--month", f"{first:%Y-%m}")
    cards = xlsx_file([
        ["Numer karty", "Ważna do", "Zablokowana"],
        ["1000 0001", date(2099, 1, 1), "nie"],
        ["10000002", date(2001, 1, 1), ""],
        ["10000003", None, "tak"],
    ])

    imported = kiosk(runner, "import-cards", write(tmp_path, "karty.xlsx", cards), "--library", "reg")

    def status(card):
        return json.loads(kiosk(runner, "issue", "--library", "reg", "--card", card, "--json").output)

    assert imported.exit_code == 0 and "3 kart" in imported.output
    assert status("1000-0001")["status"] == "issued"
    assert status("10000002")["reason"] == "expired"
    assert status("10000003")["reason"] == "blocked"
    assert status("99999999")["reason"] == "unknown"
    # Only keys are stored, never the card numbers.
    keys = db.session.scalars(select(CardRecord.reader_key)).all()
    assert len(keys) == 3 and not any("1000" in key for key in keys)


def test_import_cards_refuses_a_bad_row_and_keeps_the_old_registry(runner, tmp_path):
    make_library("reg", card_check="registry")
    kiosk(runner, "import-cards", write(tmp_path, "a.csv", csv_file([["karta"], ["10000001"]])),
          "--library", "reg")

    bad = kiosk(runner, "import-cards",
                write(tmp_path, "b.csv", csv_file([["karta"], ["20000001"], ["20000001"]])),
                "--library", "reg")

    assert bad.exit_code == 1 and "Wiersz 3" in bad.output
    assert db.session.scalar(select(CardRecord.id).limit(1)) is not None
    assert len(db.session.scalars(select(CardRecord)).all()) == 1


def test_create_user_prints_a_generated_password_and_stores_only_its_hash(runner):
    make_library("lib")

    created = kiosk(runner, "create-user", "ania", "--role", "desk", "--library", "lib")
    again = kiosk(runner, "create-user", "ania", "--role", "desk", "--library", "lib")
    no_library = kiosk(runner, "create-user", "bob", "--role", "library_admin")

    password = created.output.strip().rsplit(" ", 1)[-1]
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == "ania"))
    assert created.exit_code == 0 and len(password) >= 12
    assert password not in user.password_hash
    assert again.exit_code == 1 and no_library.exit_code == 2


def test_demo_seeds_once(runner):
    first = kiosk(runner, "demo")
    second = kiosk(runner, "demo")
    issued = kiosk(runner, "issue", "--library", "demo", "--card", "1234567890", "--json")

    assert first.exit_code == 0 and "DEMO" in first.output
    assert "już" in second.output
    assert json.loads(issued.output)["code"].startswith("DEMO")


def test_the_installed_command_honours_database_url_and_instance(tmp_path):
    """The real console script in a subprocess, configured only by environment."""
    env = {**os.environ, "KIOSK_INSTANCE": str(tmp_path / "inst"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'elsewhere.db'}"}
    script = Path(sys.executable).with_name("kiosk")

    def run(*args):
        return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=120)

    upgraded = run("db", "upgrade")
    demo = run("demo")
    issued = run("issue", "--library", "demo", "--card", "55555555", "--json")

    assert upgraded.returncode == 0, upgraded.stderr
    assert demo.returncode == 0, demo.stderr
    assert json.loads(issued.stdout)["status"] == "issued"
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "inst" / "kodomat.db").exists()
    pepper = tmp_path / "inst" / "reader-pepper.key"
    assert pepper.exists() and (pepper.stat().st_mode & 0o777) == 0o600


def test_a_busy_database_is_said_plainly_and_nothing_is_issued(tmp_path):
    """Another program holds SQLite's write lock longer than the busy timeout."""
    import sqlite3

    from flask_migrate import upgrade

    from kiosk import create_app

    path = tmp_path / "busy.db"
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
                      "SQLITE_BUSY_TIMEOUT_MS": 200})
    with app.app_context():
        upgrade()
        make_library("lib")
        db.session.remove()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            busy = app.test_cli_runner().invoke(main, ["issue", "--library", "lib", "--card", "12345678"])
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        from kiosk.storage.models import Event
        kinds = db.session.scalars(select(Event.kind)).all()

    assert busy.exit_code == 1
    assert "Baza danych jest zajęta; nic nie wydano" in busy.output
    assert "card_refused" not in kinds and "issue" not in kinds and "no_pool" not in kinds


def test_serve_refuses_a_database_that_is_not_migrated(tmp_path):
    env = {**os.environ, "KIOSK_INSTANCE": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    script = Path(sys.executable).with_name("kiosk")

    served = subprocess.run([str(script), "serve", "--port", "5999"], env=env, capture_output=True,
                            text=True, timeout=60)

    assert served.returncode == 1 and "kiosk db upgrade" in served.stderr


def test_slip_renders_every_format_for_an_issued_code_and_counts_the_reprint(runner, tmp_path):
    from kiosk.storage.models import Issuance

    make_library("lib")
    kiosk(runner, "import-codes", write(tmp_path, "k.xlsx", panel_file(codes("SLP", 2))),
          "--library", "lib", "--month", f"{this_month()[0]:%Y-%m}")
    code = json.loads(kiosk(runner, "issue", "--library", "lib", "--card", "12345678", "--json").output)["code"]

    outputs = {}
    for fmt in ("pdf80", "pdf58", "a6", "escpos"):
        path = tmp_path / f"slip.{fmt}"
        result = kiosk(runner, "slip", code, "--format", fmt, "-o", str(path))
        assert result.exit_code == 0, result.output
        outputs[fmt] = path.read_bytes()
    unknown = kiosk(runner, "slip", "NOSUCHCODE1", "-o", str(tmp_path / "x.pdf"))

    assert all(outputs[f].startswith(b"%PDF") for f in ("pdf80", "pdf58", "a6"))
    assert code[:4].encode() in outputs["escpos"] and outputs["escpos"].endswith(b"\x1dV\x00")
    assert unknown.exit_code == 1 and "nie został nikomu wydany" in unknown.output
    assert db.session.scalar(select(Issuance.print_count)) == 5


def test_enroll_kiosk_prints_a_one_time_link(runner):
    make_library("lib")

    made = kiosk(runner, "enroll-kiosk", "--library", "lib", "--name", "Hol", "--printer", "escpos-tcp:127.0.0.1:9")
    bad = kiosk(runner, "enroll-kiosk", "--library", "lib", "--name", "Hol", "--printer", "laser")

    assert made.exit_code == 0 and "/kiosk/enrol/" in made.output
    assert bad.exit_code == 2


def test_after_the_service_end_issue_json_says_no_pool_because_the_service_ended(runner, tmp_path):
    make_library("lib")
    kiosk(runner, "consortium", "--service-end", "2020-01-31")

    ended = json.loads(kiosk(runner, "issue", "--library", "lib", "--card", "12345678", "--json").output)

    assert (ended["status"], ended["reason"]) == ("no_pool", "service_ended")
    assert "zakończyła się 31.01.2020" in ended["message"]
