"""The app itself: secrets on disk, the schema from migrations, the start page."""
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from helpers import PROJECT, codes, make_app, make_library, make_pool, require, this_month
from kiosk import create_app
from kiosk.app.extensions import db
from kiosk.storage.models import Base
from kiosk.domain.readers import normalise_card, reader_key


def test_migrations_build_exactly_the_models_schema(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, Base.metadata) == []


def test_secrets_are_created_once_private_and_kept(tmp_path: Path):
    config = {"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    first, second = create_app(config).config, create_app(config).config

    assert first["READER_PEPPER"] == second["READER_PEPPER"] and len(first["READER_PEPPER"]) == 64
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) == 64
    assert first["SECRET_KEY"] != first["READER_PEPPER"]
    for name in ("reader-pepper.key", "secret-key.key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


def test_reader_key_depends_on_the_pepper_and_hides_the_card():
    card = normalise_card(" 1234-5678 ")

    assert card == "12345678"
    assert normalise_card("a12345678b") == normalise_card("D12345678D") == "12345678"  # Codabar start/stop
    assert normalise_card("AB1234") == "AB1234"  # letters that are part of the number stay
    assert reader_key("a", card) == reader_key("a", "12345678")
    assert reader_key("a", card) != reader_key("b", card)
    assert card not in reader_key("a", card)


def test_start_page_leads_on_and_shows_no_library_numbers(app, client):
    make_pool(make_library(), codes("WEB", 7), this_month())

    page = client.get("/")

    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "/login" in text and "/kiosk/" in text
    assert "WEB" not in text and ">7<" not in text and "Biblioteka lib" not in text


def test_served_htmx_is_the_npm_package_at_the_pinned_version():
    import json

    pinned = json.loads((PROJECT / "package.json").read_text())["dependencies"]["htmx.org"]
    installed = PROJECT / "node_modules" / "htmx.org"
    require(installed.exists(), "node_modules/htmx.org", "npm ci")
    assert json.loads((installed / "package.json").read_text())["version"] == pinned
    served = PROJECT / "static" / "vendor" / f"htmx-{pinned}.min.js"
    assert served.read_bytes() == (installed / "dist" / "htmx.min.js").read_bytes(), "run `make vendor`"


def test_translation_catalogues_are_complete_and_compiled():
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    folder = PROJECT / "kiosk" / "translations"
    template_ids = {m.id for m in read_po((folder / "messages.pot").open("rb")) if m.id}
    for language in ("en", "uk"):
        po = read_po((folder / language / "LC_MESSAGES" / "messages.po").open("rb"))
        mo = read_mo((folder / language / "LC_MESSAGES" / "messages.mo").open("rb"))
        translated = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy
                      and (not isinstance(m.string, tuple) or all(m.string))}
        assert set(translated) == template_ids, f"{language}: untranslated texts; run `make translations`"
        assert {_hashable(m.id): _hashable(m.string) for m in mo if m.id} == translated, f"{language}: .mo is stale"
    # Polish needs its own catalogue only for plurals (1 kod, 3 kody, 5 kodów).
    polish = read_po((folder / "pl" / "LC_MESSAGES" / "messages.po").open("rb"))
    plurals = {m.id for m in polish if isinstance(m.id, tuple)}
    assert plurals == {m for m in template_ids if isinstance(m, tuple)}
    assert all(len(m.string) == 3 and all(m.string) for m in polish if isinstance(m.id, tuple))


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def test_translation_template_has_every_text_of_the_code_and_templates():
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.pofile import read_po

    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    method_map = [("kiosk/**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(PROJECT), method_map=method_map, keywords=keywords):
        found.add(message if isinstance(message, str) else tuple(message))
    template = read_po((PROJECT / "kiosk" / "translations" / "messages.pot").open("rb"))

    assert found == {m.id for m in template if m.id}, "run `make translations` and translate"


def test_a_different_pepper_is_refused_for_a_database_in_use(tmp_path, sqlite_template):
    import shutil

    import pytest

    from kiosk.domain.consortium import PepperMismatch

    shutil.copy(sqlite_template, tmp_path / "db.sqlite")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    make_app(url, tmp_path)  # pepper "test-pepper" is remembered

    with pytest.raises(PepperMismatch, match="restore the instance folder"):
        create_app({"INSTANCE_PATH": str(tmp_path / "new-instance"), "SQLALCHEMY_DATABASE_URI": url})
    make_app(url, tmp_path)  # the right pepper still starts


def test_migrations_go_down_and_up_again_with_data_in_place(app):
    """A real install has rows that point at libraries; SQLite rebuilds a table to change
    its constraints, so a migration must not trip over them (0007 rebuilds libraries)."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import func, select, text

    from helpers import TEST, write
    from kiosk.domain.clock import utcnow
    from kiosk.domain.sip2_settings import parse_sip2_settings, save_sip2_settings
    from kiosk.storage.models import Code, Event, Library

    library = make_library("lib")
    make_pool(library, codes("MIG", 3), this_month())
    form = parse_sip2_settings({"host": "127.0.0.1", "port": 6001}, None)
    library_id = library.id
    write(lambda s: save_sip2_settings(s, library_id, form, pepper="test-pepper", actor=TEST, now=utcnow()))
    db.session.commit()
    before = [db.session.scalar(select(func.count()).select_from(table)) for table in (Library, Code, Event)]
    db.session.remove()

    downgrade(revision="0006")
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT card_check FROM libraries")).scalar() == "registry"  # never "format"
    upgrade()
    db.session.remove()

    assert [db.session.scalar(select(func.count()).select_from(table)) for table in (Library, Code, Event)] == before
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, Base.metadata) == []
