"""The slip of each platform: its name, its activation URL (printed and in the QR
code) and its own steps, from the platforms table, in Polish, English and
Ukrainian; a platform without steps (or with broken ones) gets the general steps,
and Legimi's slip reads as it always did."""
import importlib.util
import io
import json
import subprocess
from datetime import date

import pytest
from flask_babel import force_locale
from pypdf import PdfReader
from sqlalchemy import select

from helpers import (PROJECT, TEST, import_file, make_library, make_pool, panel_file, require_command, warsaw,
                     write)
from kiosk.app.extensions import db
from kiosk.domain.issuing import issue_code
from kiosk.storage.models import Channel, Platform
from kiosk.wording.slips import general_steps, slip_for_issuance
from printing.escpos import render_escpos
from printing.pdf import render_pdf

DECEMBER = (date(2026, 12, 1), date(2026, 12, 31))
EMPIK_CODE, LEGIMI_CODE = "EMPK4R7T2W9X", "LGM7Q2XK9PZA"
EMPIK_URL = "https://www.empik.com/go/kod"
LEGIMI_URL = "https://www.legimi.pl/mazowieckie"
EMPIK_STEPS = {
    "pl": ["Wejdź na https://www.empik.com/go/kod i wpisz kod.",
           "Zaloguj się na konto Empik albo załóż nowe (e-mail i hasło).",
           "Pobierz darmową aplikację Empik Go na telefon lub tablet (iOS, Android) i zaloguj się tym samym kontem."],
    "en": ["Go to https://www.empik.com/go/kod and enter the code.",
           "Sign in to your Empik account or create one (e-mail and password).",
           "Get the free Empik Go app for a phone or tablet (iOS, Android) and sign in with the same account."],
    "uk": ["Перейдіть на https://www.empik.com/go/kod і введіть код.",
           "Увійдіть в обліковий запис Empik або створіть новий (e-mail і пароль).",
           "Завантажте безкоштовний застосунок Empik Go на телефон або планшет (iOS, Android) і увійдіть тим "
           "самим обліковим записом."],
}
TITLES = {
    "pl": ("Twój kod Empik Go na grudzień 2026", "Twój kod Legimi na grudzień 2026"),
    "en": ("Your Empik Go code for December 2026", "Your Legimi code for December 2026"),
    "uk": ("Ваш код Empik Go на грудень 2026", "Ваш код Legimi на грудень 2026"),
}


def platform(slug: str) -> Platform:
    return db.session.scalar(select(Platform).where(Platform.slug == slug))


def issue_on(app, slug: str, card: str = "12345678"):
    pepper = app.config["READER_PEPPER"]
    return write(lambda s: issue_code(s, library_slug="lib", card_number=card, channel=Channel.KIOSK, actor=TEST,
                                      now=warsaw(2026, 12, 14, 10, 5), pepper=pepper, platform_slug=slug))


def migrated_platforms() -> list[dict]:
    """The platforms as migration 0006 leaves them, read from the migration itself."""
    path = PROJECT / "kiosk" / "migrations" / "versions" / "0006_library_rules.py"
    spec = importlib.util.spec_from_file_location("migration_0006", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return [{"slug": "legimi", "name": "Legimi", "activation_url": LEGIMI_URL, "steps": migration.LEGIMI_STEPS},
            {"slug": "empik-go", "name": "Empik Go", "activation_url": EMPIK_URL,
             "steps": migration.EMPIK_GO_STEPS}]


@pytest.fixture
def platforms(app):
    """The platforms exactly as the migration file writes them (not as a test before
    may have left them), so the slips below are the migration's."""
    for row in migrated_platforms():
        found = platform(row["slug"]) or Platform(slug=row["slug"], name=row["name"])
        found.activation_url = row["activation_url"]
        found.slip_steps = json.dumps(row["steps"], ensure_ascii=False)
        db.session.add(found)
    db.session.commit()


@pytest.fixture
def slips(app, platforms):
    """One reader's December 2026 codes of Empik Go and of Legimi, as slips."""
    library = make_library(slip_header="Biblioteka Publiczna w Łomiankach")
    import_file(library, panel_file([EMPIK_CODE]), window=DECEMBER, filename="empik-go.xlsx",
                now=warsaw(2026, 12, 1, 8), platform=platform("empik-go"))
    make_pool(library, [LEGIMI_CODE], DECEMBER)
    issued = {slug: issue_on(app, slug) for slug in ("empik-go", "legimi")}
    assert {slug: result.code for slug, result in issued.items()} == {"empik-go": EMPIK_CODE,
                                                                      "legimi": LEGIMI_CODE}
    return lambda slug, language="pl": slip_for_issuance(db.session, issued[slug].issuance_id, language)


def flat_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


@pytest.mark.parametrize("language", ["pl", "en", "uk"])
def test_an_empik_go_slip_has_its_name_url_and_steps(slips, language):
    slip = slips("empik-go", language)
    text = flat_text(render_pdf(slip, "pdf80"))

    assert (slip.platform, slip.activation_url, slip.steps) == ("Empik Go", EMPIK_URL, tuple(EMPIK_STEPS[language]))
    assert slip.title.replace("\xa0", " ") == TITLES[language][0]
    assert TITLES[language][0] in text.replace("\xa0", " ")
    assert "EMPK 4R7T 2W9X" in text
    assert EMPIK_URL in text
    for number, step in enumerate(EMPIK_STEPS[language], 1):
        assert f"{number}. {step}" in text
    assert "Legimi" not in text and "legimi" not in text


@pytest.mark.parametrize("paper", ["pdf80", "a6"])
def test_an_empik_go_slip_qr_code_carries_its_url(slips, paper, tmp_path):
    import zxingcpp
    from PIL import Image

    pdftoppm = require_command("pdftoppm", "poppler-utils")
    pdf = tmp_path / "slip.pdf"
    pdf.write_bytes(render_pdf(slips("empik-go"), paper))
    subprocess.run([pdftoppm, "-r", "300", "-png", "-singlefile", str(pdf), str(tmp_path / "slip")], check=True)

    found = {(b.format, b.text) for b in zxingcpp.read_barcodes(Image.open(tmp_path / "slip.png"))}

    assert (zxingcpp.BarcodeFormat.QRCode, EMPIK_URL) in found
    assert (zxingcpp.BarcodeFormat.Code128, EMPIK_CODE) in found


def test_an_empik_go_receipt_names_the_platform_and_its_url(slips):
    printed = render_escpos(slips("empik-go"))

    assert b"Empik Go" in printed and EMPIK_URL.encode() in printed
    assert b"Legimi" not in printed


@pytest.mark.parametrize("language", ["pl", "en", "uk"])
def test_a_legimi_slip_reads_as_before(slips, language):
    """Legimi's steps in the table are the general steps' reviewed translations."""
    slip = slips("legimi", language)
    with force_locale(language):
        general = general_steps(platform("legimi"))

    assert slip.steps == general
    assert (slip.platform, slip.activation_url) == ("Legimi", LEGIMI_URL)
    assert slip.title.replace("\xa0", " ") == TITLES[language][1]
    assert LEGIMI_URL in slip.steps[0]
    text = flat_text(render_pdf(slip, "pdf80"))
    assert f"1. {general[0]}" in text and "Empik" not in text


def test_the_polish_legimi_slip_keeps_its_words(slips):
    assert slips("legimi").steps == (
        "Wejdź na https://www.legimi.pl/mazowieckie i wpisz kod.",
        "Załóż konto: nazwa użytkownika, e-mail (kliknij link aktywacyjny, który przyjdzie e-mailem) i hasło — "
        "albo zaloguj się na swoje konto i wpisz nowy kod.",
        "Pobierz darmową aplikację Legimi: iOS, Android, Windows — telefony, tablety, czytniki.",
    )


def set_steps(slug: str, steps: str | None) -> None:
    platform(slug).slip_steps = steps
    db.session.commit()


def test_a_language_without_steps_falls_back_to_polish(slips):
    set_steps("empik-go", json.dumps({"pl": EMPIK_STEPS["pl"], "en": []}))

    assert slips("empik-go", "en").steps == tuple(EMPIK_STEPS["pl"])
    assert slips("empik-go", "uk").steps == tuple(EMPIK_STEPS["pl"])


def test_steps_without_polish_serve_their_language_and_general_steps_otherwise(slips):
    set_steps("empik-go", json.dumps({"en": ["Go to {url}."]}))

    assert slips("empik-go", "en").steps == ("Go to https://www.empik.com/go/kod.",)
    with force_locale("pl"):
        assert slips("empik-go", "pl").steps == general_steps(platform("empik-go"))


@pytest.mark.parametrize("stored", [None, "", "{not json", "[]", '{"pl": "Wejdź na {url}"}', '{"pl": [1, 2]}',
                                    '{"pl": ["  "]}', '{"pl": []}'])
def test_no_steps_or_broken_steps_give_the_general_steps(slips, stored):
    set_steps("empik-go", stored)

    for language in ("pl", "en", "uk"):
        slip = slips("empik-go", language)
        with force_locale(language):
            assert slip.steps == general_steps(platform("empik-go"))
    assert slips("empik-go").steps[2] == ("Pobierz darmową aplikację Empik Go: iOS, Android, Windows — telefony, "
                                          "tablety, czytniki.")


def test_braces_in_steps_are_text_and_the_url_is_the_current_one(slips):
    set_steps("empik-go", json.dumps({"pl": ["Wejdź na {url} {0} {platform} %(url)s %s {url}"]}))
    platform("empik-go").activation_url = "https://example.org/{x}"
    db.session.commit()

    slip = slips("empik-go")

    assert slip.steps == ("Wejdź na https://example.org/{x} {0} {platform} %(url)s %s https://example.org/{x}",)
    assert slip.activation_url == "https://example.org/{x}"


def test_a_slip_promises_only_what_its_platform_gives(app, slips):
    """Legimi: 30 days and two devices; Empik Go: 30 days; IBUK Libra, whose access the
    platform sets per title: neither."""
    import_file(make_library("ibuk"), panel_file(["IBUK0000PIN1"]), window=DECEMBER, filename="ibuk.xlsx",
                now=warsaw(2026, 12, 1, 8), platform=platform("ibuk-libra"))
    ibuk = write(lambda s: issue_code(s, library_slug="ibuk", card_number="12345678", channel=Channel.DESK,
                                      actor=TEST, now=warsaw(2026, 12, 14, 10), pepper=app.config["READER_PEPPER"],
                                      platform_slug="ibuk-libra"))
    legimi, empik = slips("legimi"), slips("empik-go")
    ibuk_slip = slip_for_issuance(db.session, ibuk.issuance_id, "pl")

    assert (legimi.access_note, legimi.devices_note) == ("Dostęp: 30 dni od aktywacji.",
                                                         "Kod działa na dwóch urządzeniach.")
    assert (empik.access_note, empik.devices_note) == ("Dostęp: 30 dni od aktywacji.", "")
    assert (ibuk_slip.access_note, ibuk_slip.devices_note) == ("Czas dostępu podaje platforma po aktywacji.", "")
    assert "30 dni" not in flat_text(render_pdf(ibuk_slip, "pdf80"))
