"""The rules at the kiosk and the desk, as readers and staff see them: one touch
picks a platform where two are out, a rule's refusal is one plain sentence with
what to do next, and the idle screen says when codes come."""
import calendar
import re
from datetime import date

from sqlalchemy import func, select

from helpers import (TEST, codes, import_file, kiosk_carried, kiosk_scan, make_library, panel_file, post, this_month,
                     token_of, warsaw, write)
from kiosk.app.extensions import db
from kiosk.domain.rules import parse_changes, save_rules
from kiosk.storage.models import Issuance, Platform


def platform(slug: str) -> Platform:
    return db.session.scalar(select(Platform).where(Platform.slug == slug))


def pool(library, prefix: str, window, slug: str = "legimi", count: int = 3):
    import_file(library, panel_file(codes(prefix, count)), window=window, filename=f"{prefix}.xlsx",
                now=warsaw(2026, 1, 1, 8), platform=platform(slug))


def rules(library, **values):
    parsed = parse_changes({name: str(value) for name, value in values.items()})
    write(lambda s: save_rules(s, library.id, parsed, TEST, warsaw(2026, 1, 1, 8)))


def scan(client, card, **extra):
    return kiosk_scan(client, card, **extra)


def pick(client, asked, slug: str):
    """A touch on a platform of the choice screen `asked` (a response)."""
    return kiosk_carried(client, asked, "choice", platform=slug)


def issued() -> list[tuple[str, str]]:
    db.session.commit()
    return db.session.execute(select(Platform.slug, Issuance.card_hint).join(
        Platform, Issuance.platform_id == Platform.id)).all()


def test_two_platforms_one_touch_picks_one(app, enrolled_kiosk):
    library = make_library()
    pool(library, "LEG", this_month())
    pool(library, "EMP", this_month(), slug="empik-go")
    client, _ = enrolled_kiosk(library)

    asked = scan(client, "12345678")
    page = asked.get_data(as_text=True)
    assert "Który serwis wybierasz?" in page and "Legimi" in page and "Empik Go" in page
    assert "12345678" not in page.replace(re.search(r'name="choice" value="([^"]+)"', page)[1], "")
    assert issued() == []
    slip = pick(client, asked, "empik-go").get_data(as_text=True)
    assert "Twój kod Empik Go" in slip and "EMP0 0000 1" in slip
    assert issued() == [("empik-go", "5678")]


def test_a_choice_left_behind_expires_and_cannot_be_forged(app, enrolled_kiosk, monkeypatch):
    library = make_library()
    pool(library, "LEG", this_month())
    pool(library, "EMP", this_month(), slug="empik-go")
    client, _ = enrolled_kiosk(library)
    asked = scan(client, "12345678")

    import kiosk.web.kiosk as kiosk_views
    monkeypatch.setattr(kiosk_views, "CHOICE_SECONDS", -1)  # the reader walked away
    assert "Który serwis" not in pick(client, asked, "legimi").get_data(as_text=True)
    monkeypatch.setattr(kiosk_views, "CHOICE_SECONDS", 20)
    forged = client.post("/kiosk/scan", data={"choice": "eyJjYXJkIjoiMTIzNDU2NzgifQ.forged", "platform": "legimi",
                                              "csrf_token": token_of(client, "/kiosk/")}, headers={"HX-Request": "true"})
    assert forged.status_code == 200 and "screen idle" in forged.get_data(as_text=True)
    # A card posted beside a platform, not through the choice, is asked again.
    again = scan(client, "12345678", platform="legimi").get_data(as_text=True)
    assert "Który serwis" in again
    assert issued() == []


def test_a_refused_card_is_not_asked_for_a_platform(app, enrolled_kiosk):
    library = make_library()
    pool(library, "LEG", this_month())
    pool(library, "EMP", this_month(), slug="empik-go")
    client, _ = enrolled_kiosk(library)
    page = scan(client, "!!").get_data(as_text=True)
    assert "Który serwis" not in page and "Nie możemy wydać kodu na tę kartę" in page


def test_one_platform_asks_nothing_even_when_it_is_not_legimi(app, enrolled_kiosk):
    library = make_library()
    pool(library, "EMP", this_month(), slug="empik-go")
    client, _ = enrolled_kiosk(library)
    assert "Twój kod Empik Go" in scan(client, "12345678").get_data(as_text=True)
    assert issued() == [("empik-go", "5678")]


def test_a_rules_refusal_is_one_sentence_with_what_to_do_next(app, enrolled_kiosk):
    library = make_library()
    pool(library, "LEG", this_month())
    rules(library, min_age=13)  # no register: the library lacks birth dates
    client, _ = enrolled_kiosk(library)
    page = scan(client, "12345678").get_data(as_text=True)
    assert "Nie możemy teraz sprawdzić, czy kod Ci przysługuje." in page
    assert "Zapytaj w wypożyczalni" in page
    english = client.post("/kiosk/scan", data={"card": "12345678", "lang": "en", "entry": "scan",
                                               "csrf_token": token_of(client, "/kiosk/")},
                          headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Nie możemy" not in english
    assert issued() == []


def test_before_the_release_the_idle_screen_says_when_codes_come(app, enrolled_kiosk):
    library = make_library()
    first, _last = this_month()
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    window = (following, following.replace(day=calendar.monthrange(following.year, following.month)[1]))
    pool(library, "NEXT", window)
    rules(library, release_time="10:00")
    client, _ = enrolled_kiosk(library)
    page = client.get("/kiosk/").get_data(as_text=True)
    assert f"{following:%d.%m.%Y} o 10:00" in page and "Kody na " in page


def test_the_desk_picks_a_platform_and_names_a_missing_fact(app, signed_in_desk):
    library = make_library()
    pool(library, "LEG", this_month())
    pool(library, "EMP", this_month(), slug="empik-go")
    client = signed_in_desk(library)
    page = client.get("/desk/lib/").get_data(as_text=True)
    assert 'name="platform" value="empik-go"' in page

    answer = post(client, "/desk/lib/issue", {"card": "12345678", "platform": "empik-go"}, token_from="/desk/lib/")
    assert "Empik Go" in answer.get_data(as_text=True)
    assert post(client, "/desk/lib/issue", {"card": "87654321", "platform": "nope"},
                token_from="/desk/lib/").status_code == 400
    rules(library, max_debt=0)
    refused = post(client, "/desk/lib/issue", {"card": "11223344", "platform": "legimi"}, token_from="/desk/lib/")
    assert "Brak danych do sprawdzenia zasad: zadłużenie." in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Issuance.id))) == 1


def test_under_one_code_a_month_a_reader_with_this_months_code_is_not_asked(app, enrolled_kiosk):
    library = make_library()
    pool(library, "LEG", this_month())
    pool(library, "EMP", this_month(), slug="empik-go")
    rules(library, platforms_rule="one_per_month")
    client, _ = enrolled_kiosk(library)
    assert "Twój kod Empik Go" in pick(client, scan(client, "12345678"), "empik-go").get_data(as_text=True)

    again = scan(client, "12345678").get_data(as_text=True)
    assert "Który serwis" not in again and "Masz już kod na ten miesiąc" in again and "Empik Go" in again
    assert "Który serwis" in scan(client, "87654321").get_data(as_text=True)  # another reader is asked


def test_when_one_platform_runs_out_the_kiosk_hands_out_the_other(app, enrolled_kiosk):
    library = make_library()
    pool(library, "LEG", this_month(), count=1)
    pool(library, "EMP", this_month(), slug="empik-go")
    client, _ = enrolled_kiosk(library)
    pick(client, scan(client, "11111111"), "legimi")  # Legimi's last code

    page = scan(client, "22222222").get_data(as_text=True)
    assert "Który serwis" not in page and "Twój kod Empik Go" in page
