"""One answer per question, whatever the channel: reprints, settings, refusals,
limits (issue "One home for every rule")."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import delete, func, select

from helpers import (codes, issue, make_library, make_pool, panel_file, post, signed_in, this_month, warsaw,
                     write)
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.clock import utcnow
from kiosk.storage.models import Event, Issuance, LimitHit, Platform


def kiosk(runner, *args):
    result = runner.invoke(main, list(args))
    db.session.remove()
    return result


def reprint_events() -> list[dict]:
    return [json.loads(details) for details in
            db.session.scalars(select(Event.details).where(Event.kind == "reprint").order_by(Event.id))]


def test_a_past_or_withdrawn_code_is_refused_alike_by_the_cli_and_the_desk(app, runner, tmp_path):
    library = make_library("aaa")
    client, _user, _ = signed_in(app, "desk", library)
    first_day = this_month()[0]
    last_month = first_day - timedelta(days=5)
    make_pool(library, codes("OLD", 1), (last_month.replace(day=1), last_month), filename="old.xlsx")
    make_pool(library, codes("NEW", 2), this_month(), filename="new.xlsx")
    old = issue(app, "55556666", warsaw(last_month.year, last_month.month, last_month.day, 12), library="aaa")
    current = issue(app, "12345678", utcnow(), library="aaa")
    post(client, f"/desk/aaa/replace/{current.issuance_id}", {"reason": "nie działa"}, token_from="/desk/aaa/")
    before = db.session.scalar(select(func.count()).select_from(Event))

    cli_old = kiosk(runner, "slip", old.code, "-o", str(tmp_path / "old.pdf"))
    cli_withdrawn = kiosk(runner, "slip", current.code, "-o", str(tmp_path / "withdrawn.pdf"))
    desk_old = post(client, f"/desk/aaa/reprint/{old.issuance_id}", token_from="/desk/aaa/")
    desk_withdrawn = post(client, f"/desk/aaa/reprint/{current.issuance_id}", token_from="/desk/aaa/")

    assert cli_old.exit_code == 1 and desk_old.status_code == 409
    assert cli_withdrawn.exit_code == 1 and desk_withdrawn.status_code == 409
    past = "Miesiąc tego kodu już minął i kod wygasł: nie można go wydrukować ponownie ani wymienić."
    withdrawn = "Ten kod został już wycofany: nie można go wydrukować ani wymienić."
    assert past in cli_old.output and past in desk_old.get_data(as_text=True)
    assert withdrawn in cli_withdrawn.output and withdrawn in desk_withdrawn.get_data(as_text=True)
    assert not (tmp_path / "old.pdf").exists() and not (tmp_path / "withdrawn.pdf").exists()
    # Nothing counted, nothing logged.
    assert db.session.scalar(select(Issuance.print_count).where(Issuance.id == old.issuance_id)) == 1
    assert db.session.scalar(select(func.count()).select_from(Event)) == before


def test_a_reprint_is_counted_and_logged_the_same_way_through_every_channel(app, runner, tmp_path, enrolled_kiosk):
    library = make_library("aaa")
    make_pool(library, codes("SAME", 2), this_month())
    kiosk_client, _enrolment = enrolled_kiosk(library)
    desk_client, user, _ = signed_in(app, "desk", library)
    first = issue(app, "12345678", utcnow(), library="aaa")

    post(kiosk_client, "/kiosk/scan", {"card": "12345678", "entry": "scan"}, token_from="/kiosk/")
    post(desk_client, "/desk/aaa/issue", {"card": "12345678"}, token_from="/desk/aaa/")
    post(desk_client, f"/desk/aaa/reprint/{first.issuance_id}", token_from="/desk/aaa/")
    cli = kiosk(runner, "slip", first.code, "-o", str(tmp_path / "again.pdf"))

    assert cli.exit_code == 0, cli.output
    assert db.session.scalar(select(Issuance.print_count).where(Issuance.id == first.issuance_id)) == 5
    events = reprint_events()
    assert [e["channel"] for e in events] == ["kiosk", "desk", "desk", "desk"]
    assert {e["issuance_id"] for e in events} == {first.issuance_id}
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "slip_reprint")) == 0


def test_consortium_settings_are_checked_and_logged_from_the_cli_as_from_the_panel(app, runner):
    url_before = db.session.scalar(select(Platform.activation_url).where(Platform.slug == "legimi"))

    bad = kiosk(runner, "consortium", "--activation-url", "not a url")
    bad_date = kiosk(runner, "consortium", "--service-end", "31.02.2021")
    good = kiosk(runner, "consortium", "--activation-url", "https://www.legimi.pl/wola", "--name", "Wola")
    client, _user, _ = signed_in(app, "consortium_admin")
    panel_bad = post(client, "/admin/consortium", {"name": "Wola", "service_end": "",
                                                   "activation_url-legimi": "not a url"}, token_from="/admin/",
                     follow_redirects=True)

    assert bad.exit_code == 1 and "Adres aktywacji musi być pełnym adresem" in bad.output
    assert bad_date.exit_code == 1 and "nie jest datą" in bad_date.output
    assert good.exit_code == 0, good.output
    assert "Adres aktywacji musi być pełnym adresem" in panel_bad.get_data(as_text=True)
    assert db.session.scalar(select(Platform.activation_url).where(Platform.slug == "legimi")) \
        == "https://www.legimi.pl/wola" != url_before
    logged = [json.loads(d) for d in db.session.scalars(select(Event.details).where(Event.kind == "settings"))]
    assert logged == [{"activation_url": "https://www.legimi.pl/wola", "name": "Wola", "platform": "legimi",
                       "scope": "consortium"}]


def test_a_card_pattern_is_refused_alike_by_add_library_and_the_settings_page(app, runner):
    library = make_library("aaa")
    client, _user, _ = signed_in(app, "library_admin", library)

    cli = kiosk(runner, "add-library", "bbb", "--name", "B", "--card-pattern", "([0-9]")
    panel = post(client, "/admin/aaa/settings", {"name": "A", "card_check": "format", "card_pattern": "([0-9]",
                                                 "low_pool_percent": "10", "kiosk_idle_seconds": "30",
                                                 "desk_printer": "browser"}, token_from="/admin/aaa/settings")
    empty_name = post(client, "/admin/aaa/settings", {"name": " ", "card_check": "format",
                                                      "low_pool_percent": "101", "kiosk_idle_seconds": "30",
                                                      "desk_printer": "browser"},
                      token_from="/admin/aaa/settings")

    assert cli.exit_code == 1 and "Wzorzec numeru karty jest błędny." in cli.output
    assert panel.status_code == 400 and "Wzorzec numeru karty jest błędny." in panel.get_data(as_text=True)
    page = empty_name.get_data(as_text=True)
    assert empty_name.status_code == 400 and "Nazwa nie może być pusta" in page and "od 0 do 100" in page
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "settings")) == 0


def test_a_web_import_refusal_is_in_the_staff_language_and_names_no_cli_option(app):
    library = make_library("aaa")
    client, _user, _ = signed_in(app, "library_admin", library)
    sentences = {}
    for language in ("en", "uk", "pl"):
        client.get(f"/language/{language}")
        page = post(client, "/admin/aaa/import", {"file": (__import__("io").BytesIO(panel_file(codes("X", 3))),
                                                          "kody.xlsx")},
                    token_from="/admin/aaa/import", content_type="multipart/form-data")
        sentences[language] = page.get_data(as_text=True)
        assert page.status_code == 400
        assert "--month" not in sentences[language] and "--valid" not in sentences[language]
    assert "The file does not give a validity period" in sentences["en"]
    assert "Файл не вказує період дійсності" in sentences["uk"]
    assert "Plik nie podaje okresu ważności" in sentences["pl"]


def test_a_password_refusal_is_in_the_staff_language(app):
    library = make_library("aaa")
    client, _user, password = signed_in(app, "desk", library)
    client.get("/language/en")
    wrong = post(client, "/account/password", {"current": "nope", "new": "long enough pass"},
                 token_from="/account/password")
    short = post(client, "/account/password", {"current": password, "new": "short"},
                 token_from="/account/password")
    client.get("/language/uk")
    short_uk = post(client, "/account/password", {"current": password, "new": "short"},
                    token_from="/account/password")

    assert wrong.status_code == 400 and "The current password is different." in wrong.get_data(as_text=True)
    assert "at least 10 characters" in short.get_data(as_text=True)
    assert "щонайменше 10 символів" in short_uk.get_data(as_text=True)


def test_the_panel_says_polish_plurals(app):
    library = make_library("aaa")
    client, _user, _ = signed_in(app, "library_admin", library)
    month = f"{this_month()[0]:%Y-%m}"
    preview = post(client, "/admin/aaa/import", {"month": month, "file": (__import__("io").BytesIO(
        panel_file(codes("PL", 3))), "kody.xlsx")}, token_from="/admin/aaa/import",
        content_type="multipart/form-data")
    token = __import__("re").search(r'name="token" value="([^"]+)"', preview.get_data(as_text=True)).group(1)
    done = post(client, "/admin/aaa/import/confirm", {"token": token}, token_from="/admin/aaa/import",
                follow_redirects=True)

    assert "Zaimportowano 3 kody ważne" in done.get_data(as_text=True)


def test_the_kiosk_pause_is_kept_apart_from_the_event_log(app, enrolled_kiosk):
    library = make_library("aaa")
    make_pool(library, codes("P", 3), this_month())
    client, _enrolment = enrolled_kiosk(library)
    for _ in range(5):
        post(client, "/kiosk/scan", {"card": "!"}, token_from="/kiosk/")
    # Someone empties (or rewrites) the log: the pause must not go with it.
    write(lambda s: s.execute(delete(Event)))

    paused = post(client, "/kiosk/scan", {"card": "12345678"}, token_from="/kiosk/")

    assert "Kiosk przyjmie kartę znowu za" in paused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Issuance)) == 0
    assert db.session.scalar(select(func.count()).select_from(LimitHit)) == 5


def test_the_import_button_says_polish_plurals(app, signed_in_admin):
    library = make_library("aaa")
    client = signed_in_admin(library)
    month = f"{this_month()[0]:%Y-%m}"
    said = {}
    for count in (1, 3, 5, 22):
        preview = post(client, "/admin/aaa/import", {"month": month, "file": (__import__("io").BytesIO(
            panel_file(codes(f"N{count}X", count))), "kody.xlsx")}, token_from="/admin/aaa/import",
            content_type="multipart/form-data")
        said[count] = preview.get_data(as_text=True)

    assert "Importuj 1 kod<" in said[1] and "Importuj 3 kody<" in said[3]
    assert "Importuj 5 kodów<" in said[5] and "Importuj 22 kody<" in said[22]


def test_after_the_service_end_no_channel_prints_a_code_again(app, runner, tmp_path, signed_in_desk):
    from kiosk.domain.consortium import consortium

    library = make_library("aaa")
    make_pool(library, codes("END", 2), this_month())
    first = issue(app, "12345678", utcnow(), library="aaa")
    yesterday = (utcnow() - timedelta(days=1)).date()
    write(lambda s: setattr(consortium(s), "service_end", yesterday))
    client = signed_in_desk(library)

    again = issue(app, "12345678", utcnow(), library="aaa")
    desk_issue = post(client, "/desk/aaa/issue", {"card": "12345678"}, token_from="/desk/aaa/")
    desk_reprint = post(client, f"/desk/aaa/reprint/{first.issuance_id}", token_from="/desk/aaa/")
    cli = kiosk(runner, "slip", first.code, "-o", str(tmp_path / "late.pdf"))

    ended = "Usługa się zakończyła: kodów nie drukuje się już ponownie ani nie wymienia."
    assert again.outcome.value == "service_ended" and again.code is None
    assert first.code not in desk_issue.get_data(as_text=True)
    assert desk_reprint.status_code == 409 and ended in desk_reprint.get_data(as_text=True)
    assert cli.exit_code == 1 and ended in cli.output and not (tmp_path / "late.pdf").exists()
    assert db.session.scalar(select(Issuance.print_count)) == 1


def test_a_database_locked_by_another_program_is_retried_then_said_busy(tmp_path):
    import sqlite3

    import pytest
    from flask_migrate import upgrade

    from kiosk import create_app
    from kiosk.storage.database import DatabaseBusy, run_in_transaction

    path = tmp_path / "busy.db"
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
                      "SQLITE_BUSY_TIMEOUT_MS": 100})
    ran = []
    with app.app_context():
        upgrade()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(DatabaseBusy):
                run_in_transaction(db.session, lambda s: ran.append(1))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert run_in_transaction(db.session, lambda s: ran.append(2) or "done") == "done"
        db.engine.dispose()
    assert ran == [2]
