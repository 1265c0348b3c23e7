"""Pools of every platform in the admin panel: the import page chooses the platform
(Legimi unless told) and the confirmation imports for the platform previewed; the
consortium page sets each platform's activation URL; the dashboard groups the pools
by platform and labels them "Legimi · listopad 2026"; `kiosk pools` names each
pool's platform. On SQLite and PostgreSQL."""
from __future__ import annotations

import io
import json
import re
from datetime import date

from sqlalchemy import func, select

from helpers import (codes, csv_file, import_file, make_library, make_pool, panel_file, post, signed_in, this_month,
                     token_of)
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.storage.models import Code, Event, Platform, Pool

PLATFORMS = {"legimi": ("Legimi", "https://www.legimi.pl/mazowieckie"),
             "empik-go": ("Empik Go", "https://www.empik.com/go/kod"),
             "ibuk-libra": ("IBUK Libra", "https://libra.ibuk.pl/kod")}
MONTHS = "styczeń luty marzec kwiecień maj czerwiec lipiec sierpień wrzesień październik listopad grudzień".split()


def platform(slug: str) -> Platform:
    return db.session.scalar(select(Platform).where(Platform.slug == slug))


def text_of(response) -> str:
    return response.get_data(as_text=True)


def upload(client, data: bytes, filename: str, month: str, **fields):
    return client.post("/admin/lib/import", data={
        "file": (io.BytesIO(data), filename), "month": month, **fields,
        "csrf_token": token_of(client, "/admin/lib/import")}, content_type="multipart/form-data")


def confirm(client, page: str, **fields):
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return post(client, "/admin/lib/import/confirm", {"token": token, **fields}, token_from="/admin/lib/import")


def pools_by_platform() -> list[tuple[str, int]]:
    return list(db.session.execute(select(Platform.slug, Pool.code_count).join(Pool, Pool.platform_id == Platform.id)
                                   .order_by(Pool.id)))


# -- the import page ---------------------------------------------------------------

def test_the_import_page_offers_every_platform_legimi_first_chosen(signed_in_admin):
    client = signed_in_admin(make_library())

    page = text_of(client.get("/admin/lib/import"))

    options = re.findall(r'<option value="([^"]+)"( selected)?>([^<]+)</option>', page)
    assert sorted(options) == [("empik-go", "", "Empik Go"), ("ibuk-libra", "", "IBUK Libra"),
                               ("legimi", " selected", "Legimi")]


def test_an_empik_go_pool_is_previewed_and_imported_as_empik_go(signed_in_admin):
    client = signed_in_admin(make_library())
    month = f"{this_month()[0]:%Y-%m}"

    preview = upload(client, panel_file(codes("EG", 3)), "empik.xlsx", month, platform="empik-go")
    page = text_of(preview)
    # The platform goes with the signed token: a field sent with the confirmation changes nothing.
    confirmed = confirm(client, page, platform="ibuk-libra")

    assert preview.status_code == 200 and 'id="preview-platform">Empik Go<' in page
    assert confirmed.status_code == 302
    assert pools_by_platform() == [("empik-go", 3)]
    assert db.session.scalar(select(func.count()).select_from(Code).where(
        Code.platform_id == platform("empik-go").id)) == 3
    logged = json.loads(db.session.scalar(select(Event.details).where(Event.kind == "import")))
    assert logged["platform"] == "empik-go"


def test_without_a_choice_the_pool_is_legimi_and_codes_are_unique_per_platform(signed_in_admin):
    client = signed_in_admin(make_library())
    month = f"{this_month()[0]:%Y-%m}"
    same_codes = codes("SAME", 2)

    legimi = confirm(client, text_of(upload(client, panel_file(same_codes), "legimi.xlsx", month)))
    ibuk = confirm(client, text_of(upload(client, csv_file([["Kod"], *([c] for c in same_codes)]), "ibuk.csv",
                                          month, platform="ibuk-libra")))

    assert legimi.status_code == ibuk.status_code == 302
    assert pools_by_platform() == [("legimi", 2), ("ibuk-libra", 2)]


def test_an_unknown_platform_is_refused_and_nothing_is_kept(signed_in_admin):
    client = signed_in_admin(make_library())

    refused = upload(client, panel_file(codes("XX", 2)), "x.xlsx", f"{this_month()[0]:%Y-%m}", platform="kindle")

    assert refused.status_code == 400 and "Wybierz platformę z listy." in text_of(refused)
    assert pools_by_platform() == []


def test_a_refused_upload_keeps_the_platform_chosen(signed_in_admin):
    client = signed_in_admin(make_library())

    refused = upload(client, panel_file(codes("NOW", 1)), "nowindow.xlsx", "", platform="ibuk-libra")

    assert refused.status_code == 400 and "nie podaje okresu" in text_of(refused)
    assert '<option value="ibuk-libra" selected>' in text_of(refused)


# -- the consortium's activation URLs ---------------------------------------------------

def settings_form(**urls) -> dict:
    return {"name": "Konsorcjum", "service_end": "",
            **{f"activation_url-{slug}": url for slug, url in urls.items()}}


def test_the_consortium_page_sets_each_platform_s_url(app):
    client, _user, _ = signed_in(app, "consortium_admin")

    page = text_of(client.get("/admin/"))
    saved = post(client, "/admin/consortium", settings_form(**{"legimi": PLATFORMS["legimi"][1],
                                                               "empik-go": "https://www.empik.com/go/wola",
                                                               "ibuk-libra": PLATFORMS["ibuk-libra"][1]}),
                 token_from="/admin/", follow_redirects=True)

    for slug, (name, url) in PLATFORMS.items():
        assert f'name="activation_url-{slug}" type="url" value="{url}"' in page
        assert f"Adres aktywacji kodów {name}" in page
    assert "Zapisano ustawienia." in text_of(saved)
    assert {slug: platform(slug).activation_url for slug in PLATFORMS} == {
        "legimi": PLATFORMS["legimi"][1], "empik-go": "https://www.empik.com/go/wola",
        "ibuk-libra": PLATFORMS["ibuk-libra"][1]}
    logged = [json.loads(d) for d in db.session.scalars(select(Event.details).where(Event.kind == "settings"))]
    assert logged == [{"name": "Konsorcjum", "platform": "legimi", "scope": "consortium"},
                      {"activation_url": "https://www.empik.com/go/wola", "platform": "empik-go",
                       "scope": "consortium"}]


def test_one_bad_url_saves_nothing_and_names_its_platform(app):
    client, _user, _ = signed_in(app, "consortium_admin")

    refused = post(client, "/admin/consortium", settings_form(**{"legimi": "https://www.legimi.pl/wola",
                                                                 "empik-go": "not a url"}),
                   token_from="/admin/", follow_redirects=True)

    assert "Empik Go: Adres aktywacji musi być pełnym adresem" in text_of(refused)
    assert "Nic nie zapisano." in text_of(refused)
    assert {slug: platform(slug).activation_url for slug in PLATFORMS} == {
        slug: url for slug, (_name, url) in PLATFORMS.items()}
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "settings")) == 0


# -- the dashboard and `kiosk pools` ------------------------------------------------------

def test_the_dashboard_groups_pools_by_platform_with_month_labels(signed_in_admin):
    library = make_library()
    window = this_month()
    make_pool(library, codes("LG", 3), window, filename="legimi.xlsx")
    import_file(library, panel_file(codes("EG", 2)), window=window, filename="empik.xlsx", platform=platform("empik-go"))
    client = signed_in_admin(library)

    page = text_of(client.get("/admin/lib/"))

    month = f"{MONTHS[window[0].month - 1]} {window[0].year}"
    labels = re.findall(r'<th scope="row">([^<]+)</th>', page)
    assert labels == [f"Empik Go · {month}", f"Legimi · {month}"]
    ready = re.search(r'<ul class="next-month" id="next-month">(.*?)</ul>', page, re.S).group(1)
    assert "Empik Go: nie ma jeszcze puli" in ready and "Legimi: nie ma jeszcze puli" in ready
    assert "IBUK Libra" not in ready  # a platform the library does not use


def test_a_pool_that_is_not_a_calendar_month_is_labelled_by_its_dates(signed_in_admin):
    library = make_library()
    first, last = this_month()
    make_pool(library, codes("HALF", 2), (first, first.replace(day=15)))
    client = signed_in_admin(library)

    labels = re.findall(r'<th scope="row">([^<]+)</th>', text_of(client.get("/admin/lib/")))

    assert labels == [f"Legimi · {first:%d.%m.%Y}–{first.replace(day=15):%d.%m.%Y}"]
    assert last.day >= 28


def test_kiosk_pools_names_each_platform(runner):
    library = make_library()
    make_pool(library, codes("LG", 3), (date(2030, 1, 1), date(2030, 1, 31)))
    import_file(library, panel_file(codes("IB", 2)), window=(date(2030, 1, 1), date(2030, 1, 31)),
                platform=platform("ibuk-libra"))

    listed = runner.invoke(main, ["pools"])
    as_json = runner.invoke(main, ["pools", "--json"])
    db.session.remove()

    lines = listed.output.splitlines()
    assert listed.exit_code == 0, listed.output
    assert sorted(line.split()[1] for line in lines[1:]) == ["ibuk-libra", "legimi"]
    assert len({line.index("01.01.2030") for line in lines[1:]}) == 1  # the columns line up
    assert sorted(pool["platform"] for pool in json.loads(as_json.output)) == ["ibuk-libra", "legimi"]
