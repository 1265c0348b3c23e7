"""Staff accounts, the desk and the admin panel over HTTP: roles, library scope,
CSRF, the login limit, imports through the upload, replace a faulty code."""
import io
import re
from datetime import date

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from helpers import (new_kiosk, codes, enrol_browser, issue, login, make_library, make_pool, panel_file, post, signed_in,
                     this_month, token_of, warsaw, xlsx_file)
from kiosk.domain.clock import local_day, utcnow
from kiosk.app.extensions import db
from kiosk.storage.models import Code, CodeStatus, Event, Issuance, Kiosk, Library, Pool, StaffUser


def count(model, *where) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def two_libraries(app):
    a, b = make_library("aaa"), make_library("bbb")
    make_pool(a, codes("AAA", 5), this_month(), filename="a.xlsx")
    make_pool(b, codes("BBB", 5), this_month(), filename="b.xlsx")
    return a, b


# -- signing in ------------------------------------------------------------

def test_login_wrong_password_then_right(app, two_libraries):
    a, _ = two_libraries
    client, user, password = signed_in(app, "desk", a)
    fresh = app.test_client()

    wrong = login(fresh, user.username, "nope")
    right = login(fresh, user.username, password)

    assert wrong.status_code == 401 and "Nieprawidłowa nazwa użytkownika lub hasło" in wrong.get_data(as_text=True)
    assert right.status_code == 302 and right.headers["Location"].endswith("/desk/aaa/")
    assert fresh.get("/desk/aaa/").status_code == 200


def test_login_is_limited_after_five_failures(app, two_libraries):
    a, _ = two_libraries
    _client, user, password = signed_in(app, "desk", a)
    client = app.test_client()
    for _attempt in range(5):
        assert login(client, user.username, "wrong").status_code == 401

    locked = login(client, user.username, password)

    assert locked.status_code == 401 and "Za dużo nieudanych prób" in locked.get_data(as_text=True)
    assert count(Event, Event.kind == "login_locked") == 1


def test_no_page_without_login_and_logout_ends_it(app, two_libraries, signed_in_desk):
    client = signed_in_desk(two_libraries[0])
    anonymous = app.test_client()

    assert anonymous.get("/desk/aaa/").status_code == 302
    htmx = anonymous.get("/desk/aaa/lookup?code=X", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login?next=")
    assert anonymous.get("/admin/aaa/").status_code == 302
    post(client, "/logout", token_from="/desk/aaa/")
    assert client.get("/desk/aaa/").status_code == 302


def test_password_change_ends_other_sessions(app, two_libraries):
    client, user, password = signed_in(app, "desk", two_libraries[0])
    other = app.test_client()
    login(other, user.username, password)

    short = post(client, "/account/password", {"current": password, "new": "short"}, token_from="/account/password")
    changed = post(client, "/account/password", {"current": password, "new": "a-much-longer-one"},
                   token_from="/account/password")

    assert short.status_code == 400
    assert changed.status_code == 302
    assert client.get("/desk/aaa/").status_code == 200
    assert other.get("/desk/aaa/").status_code == 302
    assert login(app.test_client(), user.username, "a-much-longer-one").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/", "/%09/evil.example", "/\t/evil.example", "https://evil.example/",
                                    "/\\evil.example", "javascript:alert(1)"])
def test_no_redirect_to_another_site_after_login_or_language(app, two_libraries, target):
    _client, user, password = signed_in(app, "desk", two_libraries[0])
    client = app.test_client()

    signed = client.post(f"/login?next={target}", data={"username": user.username, "password": password,
                                                         "csrf_token": token_of(client)})
    language = client.get(f"/language/en?next={target}")

    for response in (signed, language):
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//") and "evil" not in location


def test_session_cookie_flags(app, two_libraries):
    _client, user, password = signed_in(app, "desk", two_libraries[0])
    secure_client = app.test_client()
    response = secure_client.post("/login", base_url="https://localhost", data={
        "username": user.username, "password": password,
        "csrf_token": token_of(secure_client, "https://localhost/login")},
        headers={"Referer": "https://localhost/login"})  # browsers send it: Referrer-Policy same-origin

    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_forms_without_csrf_token_are_refused(app, two_libraries, signed_in_desk):
    client = signed_in_desk(two_libraries[0])

    forged = client.post("/desk/aaa/issue", data={"card": "12345678"})
    forged_login = app.test_client().post("/login", data={"username": "x", "password": "y"})

    assert forged.status_code == 400 and forged_login.status_code == 400
    assert count(Issuance) == 0


# -- the desk -----------------------------------------------------------------

def test_desk_issues_and_the_same_card_gets_the_same_code(two_libraries, signed_in_desk):
    client = signed_in_desk(two_libraries[0])

    first = post(client, "/desk/aaa/issue", {"card": "12345678"}, token_from="/desk/aaa/",
                 headers={"HX-Request": "true"}).get_data(as_text=True)
    again = post(client, "/desk/aaa/issue", {"card": "1234 5678"}, token_from="/desk/aaa/",
                 headers={"HX-Request": "true"}).get_data(as_text=True)

    code = re.search(r'id="slip-code">([^<]+)<', first).group(1).replace(" ", "")
    assert "Wydano kod" in first and code.startswith("AAA")
    assert "ma już kod" in again and code in again.replace(" ", "")
    issuance = db.session.scalar(select(Issuance))
    assert issuance.channel == "desk" and issuance.actor.startswith("staff:") and issuance.card_hint == "5678"


def test_proxy_collection_keeps_the_note(two_libraries, signed_in_desk):
    client = signed_in_desk(two_libraries[0])

    post(client, "/desk/aaa/issue", {"card": "12345678", "proxy": "1", "note": "córka, upoważnienie nr 5"},
         token_from="/desk/aaa/")

    assert db.session.scalar(select(Issuance.note)) == "[pełnomocnik] córka, upoważnienie nr 5"


def test_lookup_by_card_and_by_code_shows_the_card_masked(app, two_libraries, signed_in_desk):
    client = signed_in_desk(two_libraries[0])
    result = issue(app, "55501234", utcnow(), library="aaa")

    by_card = post(client, "/desk/aaa/lookup", {"card": "55501234"}, token_from="/desk/aaa/")
    by_code = client.get(f"/desk/aaa/lookup?code={result.code}")  # a whole page, with its links
    in_url = client.get("/desk/aaa/lookup?card=55501234").get_data(as_text=True)

    for response in (by_card, by_code):
        page = response.get_data(as_text=True)
        assert result.code in page and "••••1234" in page and "55501234" not in page
        assert response.headers["Cache-Control"] == "no-store"
    assert "••••1234" not in in_url  # a card number in a URL is not looked up


def test_replace_withdraws_the_faulty_code_and_hands_a_new_one(app, two_libraries, signed_in_desk):
    client = signed_in_desk(two_libraries[0])
    first = issue(app, "12345678", utcnow(), library="aaa")

    refused = post(client, f"/desk/aaa/replace/{first.issuance_id}", {"reason": ""}, token_from="/desk/aaa/")
    replaced = post(client, f"/desk/aaa/replace/{first.issuance_id}", {"reason": "Legimi: kod nieprawidłowy"},
                    token_from="/desk/aaa/", headers={"HX-Request": "true"}).get_data(as_text=True)

    assert refused.status_code == 400
    new_code = re.search(r'id="slip-code">([^<]+)<', replaced).group(1).replace(" ", "")
    assert new_code != first.code and "Kod wymieniony" in replaced
    old = db.session.scalar(select(Code).where(Code.value == first.code))
    assert old.status == CodeStatus.VOID.value and old.void_reason == "Legimi: kod nieprawidłowy"
    assert count(Issuance, Issuance.voided_at.is_(None)) == 1
    assert count(Event, Event.kind.in_(["void", "replace"])) == 2
    # The reader coming back gets the replacement.
    assert issue(app, "12345678", utcnow(), library="aaa").code == new_code


def test_replace_without_a_free_code_changes_nothing(app, signed_in_desk):
    library = make_library("one")
    make_pool(library, codes("ONE", 1), this_month())
    client = signed_in_desk(library)
    first = issue(app, "12345678", utcnow(), library="one")

    refused = post(client, f"/desk/one/replace/{first.issuance_id}", {"reason": "zły"}, token_from="/desk/one/")

    assert refused.status_code == 409 and "Nie ma wolnego kodu" in refused.get_data(as_text=True)
    assert db.session.scalar(select(Code.status)) == CodeStatus.ISSUED.value
    assert count(Issuance, Issuance.voided_at.is_(None)) == 1


def test_reprint_and_slip_pdf(app, two_libraries, signed_in_desk):
    client = signed_in_desk(two_libraries[0])
    first = issue(app, "12345678", utcnow(), library="aaa")

    reprinted = post(client, f"/desk/aaa/reprint/{first.issuance_id}", token_from="/desk/aaa/")
    pdf = client.get(f"/desk/aaa/slip/{first.issuance_id}.pdf?paper=pdf80")

    assert reprinted.status_code == 200 and first.code in reprinted.get_data(as_text=True).replace(" ", "")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert db.session.scalar(select(Issuance.print_count)) == 2


def test_desk_warns_of_a_low_pool(app, signed_in_desk):
    library = make_library("low")
    make_pool(library, codes("LOW", 10), this_month())
    for card in ("10000001",):
        issue(app, card, utcnow(), library="low")
    library = db.session.scalar(select(Library).where(Library.slug == "low"))
    library.low_pool_percent = 95
    db.session.commit()
    client = signed_in_desk(library)

    page = client.get("/desk/low/").get_data(as_text=True)

    assert "Kody się kończą: zostało 9 z 10" in page


# -- scope: nobody sees or changes another library ---------------------------

def test_every_url_of_another_library_is_404_and_changes_nothing(app, two_libraries, signed_in_admin):
    a, b = two_libraries
    client = signed_in_admin(a)
    theirs = issue(app, "99990000", utcnow(), library="bbb")
    before = (count(Issuance), count(Code, Code.status == CodeStatus.VOID.value), count(Pool), count(Kiosk),
              count(StaffUser))
    token = token_of(client, "/desk/aaa/")

    gets = ["/desk/bbb/", "/desk/bbb/lookup?code=BBB000001", f"/desk/bbb/slip/{theirs.issuance_id}.pdf",
            f"/desk/aaa/slip/{theirs.issuance_id}.pdf", "/admin/bbb/", "/admin/bbb/import", "/admin/bbb/events",
            "/admin/bbb/kiosks", "/admin/bbb/users", "/admin/bbb/settings", "/admin/bbb/report.xlsx"]
    posts = [("/desk/bbb/issue", {"card": "12345678"}),
             (f"/desk/bbb/reprint/{theirs.issuance_id}", {}), (f"/desk/aaa/reprint/{theirs.issuance_id}", {}),
             (f"/desk/bbb/replace/{theirs.issuance_id}", {"reason": "x"}),
             (f"/desk/aaa/replace/{theirs.issuance_id}", {"reason": "x"}),
             ("/admin/bbb/import", {}), ("/admin/bbb/kiosks", {"name": "x"}), ("/admin/bbb/users", {"username": "x", "role": "desk"}),
             ("/admin/bbb/settings", {"name": "Przejęta"}), ("/admin/libraries", {"slug": "zzz", "name": "z"}),
             ("/admin/consortium", {"service_end": "2020-01-01"})]

    for url in gets:
        assert client.get(url).status_code in (403, 404), url
    for url, data in posts:
        assert client.post(url, data={**data, "csrf_token": token}).status_code in (403, 404), url
    assert (count(Issuance), count(Code, Code.status == CodeStatus.VOID.value), count(Pool), count(Kiosk),
            count(StaffUser)) == before
    assert db.session.scalar(select(Library.name).where(Library.slug == "bbb")) == "Biblioteka bbb"


def test_another_library_s_items_through_this_library_s_urls(app, two_libraries, signed_in_desk, signed_in_admin):

    a, b = two_libraries
    admin = signed_in_admin(a)
    desk = signed_in_desk(a)
    _other_client, their_user, _ = signed_in(app, "desk", b)
    their_kiosk = new_kiosk(b, name="B").kiosk
    token = token_of(admin, "/admin/aaa/users")

    attempts = [
        admin.post(f"/admin/aaa/users/{their_user.id}", data={"action": "disable", "csrf_token": token}),
        admin.post(f"/admin/aaa/users/{their_user.id}", data={"action": "role", "role": "library_admin",
                                                            "csrf_token": token}),
        admin.post(f"/admin/aaa/kiosks/{their_kiosk.id}", data={"action": "revoke", "csrf_token": token}),
        admin.post("/admin/bbb/cards", data={"csrf_token": token}),
        admin.post("/admin/bbb/import/confirm", data={"token": "x", "csrf_token": token}),
        desk.get("/admin/aaa/users"), desk.get("/admin/aaa/report.xlsx"),
        desk.post("/admin/aaa/users", data={"username": "evil", "role": "library_admin",
                                            "csrf_token": token_of(desk, "/desk/aaa/")}),
    ]

    assert [r.status_code for r in attempts] == [404, 404, 404, 404, 404, 403, 403, 403]
    db.session.commit()
    user = db.session.get(StaffUser, their_user.id)
    assert user.active and user.role == "desk"
    assert db.session.get(Kiosk, their_kiosk.id).revoked_at is None
    assert db.session.scalar(select(StaffUser).where(StaffUser.username == "evil")) is None


def test_roles(app, two_libraries, signed_in_desk, signed_in_admin):
    a, _b = two_libraries
    desk = signed_in_desk(a)
    admin = signed_in_admin(a)
    chief, _u, _ = signed_in(app, "consortium_admin")

    assert desk.get("/admin/aaa/").status_code == 403
    assert desk.get("/desk/aaa/").status_code == 200
    assert admin.get("/admin/aaa/").status_code == 200
    assert admin.get("/admin/").status_code == 302
    assert admin.get("/admin/report.xlsx").status_code == 403
    assert chief.get("/admin/bbb/").status_code == 200 and chief.get("/desk/bbb/").status_code == 200
    assert chief.get("/admin/").status_code == 200


# -- the admin panel ------------------------------------------------------------

def upload(client, slug, data: bytes, filename: str, month: str = ""):
    return client.post(f"/admin/{slug}/import", data={
        "file": (io.BytesIO(data), filename), "month": month,
        "csrf_token": token_of(client, f"/admin/{slug}/import")}, content_type="multipart/form-data")


def test_import_preview_then_confirm(two_libraries, signed_in_admin):
    client = signed_in_admin(two_libraries[0])
    first, last = this_month()
    nxt = f"{(last.replace(day=28)).year}-{last.month % 12 + 1:02d}" if last.month < 12 else f"{last.year + 1}-01"

    preview = upload(client, "aaa", panel_file(codes("NEW", 4)), "grudzien.xlsx", month=nxt)
    page = preview.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    pools_before = count(Pool)
    confirmed = post(client, "/admin/aaa/import/confirm", {"token": token}, token_from="/admin/aaa/import")
    twice = post(client, "/admin/aaa/import/confirm", {"token": token}, token_from="/admin/aaa/import")

    assert preview.status_code == 200 and 'id="preview-count">4<' in page and "NEW000001" in page
    assert pools_before == 2  # the preview stored nothing
    assert confirmed.status_code == 302 and count(Pool) == 3
    assert twice.status_code == 302 and count(Pool) == 3  # a second press imports nothing more
    assert "Ten plik jest już zaimportowany" in client.get(twice.headers["Location"]).get_data(as_text=True)
    assert db.session.scalar(select(Event).where(Event.kind == "import", Event.actor.like("staff:%"))) is not None


@pytest.mark.parametrize("data,filename,month,expected", [
    (b"%PDF-1.4\x00\x01\x02", "kody.xlsx", "2030-01", "To nie jest arkusz"),
    (b"PK\x03\x04" + b"\x00" * 64, "broken.xlsx", "2030-01", "Nie da się odczytać pliku"),
    (panel_file(["DUP000001", "DUP000001"]), "dup.xlsx", "2030-01", "powtarza się"),
    (panel_file(codes("AAA", 1)), "again.xlsx", "2030-01", "jest już w puli"),
    (panel_file(codes("NOW", 1)), "nowindow.xlsx", "", "nie podaje okresu"),
    (xlsx_file([["Kod"]]), "empty.xlsx", "2030-01", "nie zawiera żadnego kodu"),
    (xlsx_file([["Imię"], ["Jan"]]), "names.xlsx", "2030-01", "Nie znaleziono kolumny z kodami"),
    (xlsx_file([[a, b] for a, b in zip(codes("XA", 3), codes("XB", 3))]), "two.xlsx", "2030-01", "Kody mogą być w kolumnie"),
    (panel_file(["GOOD000001", "bad code!"]), "bad.xlsx", "2030-01", "Wiersz 3"),
    (xlsx_file([["Kod", "Ważny od", "Ważny do"], ["DATE000001", "jutro", "31.01.2030"]]), "date.xlsx", "", "nie jest datą"),
    (panel_file(codes("CNF", 2), (date(2030, 1, 1), date(2030, 1, 31))), "conflict.xlsx", "2030-02", "różni się od podanego"),
    (xlsx_file([["Kod", "Ważny od", "Ważny do"], ["MIX0000001", date(2030, 1, 1), date(2030, 1, 31)],
                ["MIX0000002", date(2030, 2, 1), date(2030, 2, 28)]]), "mixed.xlsx", "", "inny okres ważności"),
    (panel_file(codes("OVL", 2), (date(2000, 1, 15), date(2100, 2, 14))), "overlap.xlsx", "", "nachodzi na inną pulę"),
])
def test_each_import_refusal_through_the_upload(two_libraries, signed_in_admin, data, filename, month, expected):
    client = signed_in_admin(two_libraries[0])
    before = (count(Pool), count(Code))

    refused = upload(client, "aaa", data, filename, month)

    assert refused.status_code == 400 and expected in refused.get_data(as_text=True)
    assert (count(Pool), count(Code)) == before


def test_upload_refused_after_the_service_end_and_the_same_file_twice(two_libraries, signed_in_admin):
    from kiosk.domain.consortium import consortium

    consortium(db.session).service_end = date(2029, 12, 31)
    db.session.commit()
    client = signed_in_admin(two_libraries[0])

    late = upload(client, "aaa", panel_file(codes("LATE", 2)), "late.xlsx", "2030-01")
    data = panel_file(codes("TWICE", 2))
    preview = upload(client, "aaa", data, "first.xlsx", "2029-12").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', preview).group(1)
    post(client, "/admin/aaa/import/confirm", {"token": token}, token_from="/admin/aaa/import")
    twice = upload(client, "aaa", data, "copy.xlsx", "2029-12")

    assert late.status_code == 400 and "po końcu usługi" in late.get_data(as_text=True)
    assert twice.status_code == 400 and "był już zaimportowany" in twice.get_data(as_text=True)


def test_dashboard_and_report(app, two_libraries, signed_in_admin):
    client = signed_in_admin(two_libraries[0])
    issue(app, "12345678", utcnow(), library="aaa")

    page = client.get("/admin/aaa/").get_data(as_text=True)
    report = client.get("/admin/aaa/report.xlsx")

    assert "a.xlsx" in page and "<svg" in page and "Wydania w tym miesiącu" in page
    book = load_workbook(io.BytesIO(report.data))
    assert book.sheetnames == ["aaa", "Wydane kody"]


def test_users_add_role_disable(app, two_libraries):
    client, me, _ = signed_in(app, "library_admin", two_libraries[0])

    added = post(client, "/admin/aaa/users", {"username": "ola", "role": "desk"}, token_from="/admin/aaa/users")
    password = re.search(r'<span class="mono">([^<]+)</span>', added.get_data(as_text=True)).group(1)
    ola = app.test_client()
    assert login(ola, "ola", password).status_code == 302
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == "ola"))
    post(client, f"/admin/aaa/users/{user.id}", {"action": "role", "role": "library_admin"}, token_from="/admin/aaa/users")
    post(client, f"/admin/aaa/users/{user.id}", {"action": "disable"}, token_from="/admin/aaa/users")
    self_disable = post(client, f"/admin/aaa/users/{me.id}", {"action": "disable"}, token_from="/admin/aaa/users")
    escalate = post(client, "/admin/aaa/users", {"username": "boss", "role": "consortium_admin"},
                    token_from="/admin/aaa/users")

    db.session.commit()
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == "ola"))
    assert user.role == "library_admin" and not user.active
    assert ola.get("/desk/aaa/").status_code == 302  # the disabled user's session ended
    assert self_disable.status_code == 400 and escalate.status_code == 400


def test_kiosks_enrol_link_and_revoke(app, two_libraries, signed_in_admin):
    client = signed_in_admin(two_libraries[0])

    page = post(client, "/admin/aaa/kiosks", {"name": "Hol", "printer": "browser"},
                token_from="/admin/aaa/kiosks").get_data(as_text=True)
    link = re.search(r'id="enrol-link">([^<]+)<', page).group(1)
    kiosk_browser = app.test_client()
    assert enrol_browser(kiosk_browser, link.rsplit("/", 1)[1]).status_code == 302
    assert kiosk_browser.get("/kiosk/").status_code == 200
    kiosk = db.session.scalar(select(Kiosk))
    app.config["PRINTERS"] = ["escpos-tcp:127.0.0.1:9100"]
    bad_printer = post(client, f"/admin/aaa/kiosks/{kiosk.id}", {"action": "save", "name": "Hol", "printer": "laser"},
                       token_from="/admin/aaa/kiosks")
    not_listed = post(client, f"/admin/aaa/kiosks/{kiosk.id}",
                      {"action": "save", "name": "Hol", "printer": f"escpos-file:{app.instance_path}/kodomat.db"},
                      token_from="/admin/aaa/kiosks")
    post(client, f"/admin/aaa/kiosks/{kiosk.id}", {"action": "save", "name": "Hol, parter",
                                                   "printer": "escpos-tcp:127.0.0.1:9100"}, token_from="/admin/aaa/kiosks")
    db.session.commit()
    assert bad_printer.status_code == 400 and not_listed.status_code == 400
    assert (db.session.get(Kiosk, kiosk.id).name, db.session.get(Kiosk, kiosk.id).printer) == \
        ("Hol, parter", "escpos-tcp:127.0.0.1:9100")
    post(client, f"/admin/aaa/kiosks/{kiosk.id}", {"action": "revoke"}, token_from="/admin/aaa/kiosks")

    assert kiosk_browser.get("/kiosk/").status_code == 403
    assert "<svg" in page  # the link as a QR code too


def test_settings(two_libraries, signed_in_admin):
    client = signed_in_admin(two_libraries[0])
    base = {"name": "Biblioteka A", "slip_header": "", "card_check": "format", "card_pattern": r"\d{8}",
            "check_digit": "", "low_pool_percent": "15", "kiosk_idle_seconds": "45", "desk_printer": "browser"}

    bad = post(client, "/admin/aaa/settings", {**base, "card_pattern": "(["}, token_from="/admin/aaa/settings")
    good = post(client, "/admin/aaa/settings", base, token_from="/admin/aaa/settings")

    assert bad.status_code == 400 and "Wzorzec numeru karty jest błędny" in bad.get_data(as_text=True)
    assert good.status_code == 302
    db.session.commit()
    library = db.session.scalar(select(Library).where(Library.slug == "aaa"))
    assert (library.name, library.card_pattern, library.low_pool_percent, library.kiosk_idle_seconds) == \
        ("Biblioteka A", r"\d{8}", 15, 45)
    assert count(Event, Event.kind == "settings") == 1


def test_events_are_filtered(app, two_libraries, signed_in_admin):
    client = signed_in_admin(two_libraries[0])
    issue(app, "12345678", utcnow(), library="aaa")
    issue(app, "12345678", utcnow(), library="aaa")  # a reprint
    issue(app, "99999999", utcnow(), library="bbb")
    today = local_day(utcnow()).isoformat()

    everything = client.get("/admin/aaa/events").get_data(as_text=True)
    issues = client.get("/admin/aaa/events?kind=issue").get_data(as_text=True)
    by_who = client.get("/admin/aaa/events?who=nobody-like-this").get_data(as_text=True)
    today_only = client.get(f"/admin/aaa/events?from={today}&to={today}").get_data(as_text=True)
    long_ago = client.get("/admin/aaa/events?from=2001-01-01&to=2001-01-31").get_data(as_text=True)

    assert "<td>ponowny wydruk</td>" in everything and "<td>wydanie kodu</td>" in everything
    assert issues.count("<td>wydanie kodu</td>") == 1 and "<td>ponowny wydruk</td>" not in issues
    assert "Brak zdarzeń" in by_who and "Brak zdarzeń" in long_ago
    assert "<td>ponowny wydruk</td>" in today_only


def test_an_admin_cannot_point_a_printer_at_a_file_or_host_the_operator_did_not_list(app, two_libraries,
                                                                                     signed_in_admin):
    client = signed_in_admin(two_libraries[0])
    base = {"name": "A", "slip_header": "", "card_check": "format", "card_pattern": "", "check_digit": "",
            "low_pool_percent": "10", "kiosk_idle_seconds": "30"}

    to_file = post(client, "/admin/aaa/settings", {**base, "desk_printer": "escpos-file:/etc/passwd"},
                   token_from="/admin/aaa/settings")
    to_host = post(client, "/admin/aaa/kiosks", {"name": "K", "printer": "escpos-tcp:10.0.0.1:22"},
                   token_from="/admin/aaa/kiosks")
    app.config["PRINTERS"] = ["escpos-tcp:127.0.0.1:9100"]
    listed = post(client, "/admin/aaa/settings", {**base, "desk_printer": "escpos-tcp:127.0.0.1:9100"},
                  token_from="/admin/aaa/settings")

    assert to_file.status_code == 400 and to_host.status_code == 400 and count(Kiosk) == 0
    assert listed.status_code == 302
    db.session.commit()
    assert db.session.scalar(select(Library.desk_printer).where(Library.slug == "aaa")) == "escpos-tcp:127.0.0.1:9100"


def test_proxy_mark_and_a_plain_note(two_libraries, signed_in_desk):
    client = signed_in_desk(two_libraries[0])

    post(client, "/desk/aaa/issue", {"card": "11112222", "proxy": "1", "note": ""}, token_from="/desk/aaa/")
    post(client, "/desk/aaa/issue", {"card": "33334444", "note": "dzwonić przed"}, token_from="/desk/aaa/")

    assert sorted(db.session.scalars(select(Issuance.note)).all()) == ["[pełnomocnik]", "dzwonić przed"]


def test_a_withdrawn_or_past_code_is_not_printed_again_nor_replaced(app, two_libraries, signed_in_desk):
    from datetime import timedelta

    client = signed_in_desk(two_libraries[0])
    first = issue(app, "12345678", utcnow(), library="aaa")
    post(client, f"/desk/aaa/replace/{first.issuance_id}", {"reason": "zły"}, token_from="/desk/aaa/")
    last_month = this_month()[0] - timedelta(days=5)
    make_pool(db.session.scalar(select(Library).where(Library.slug == "aaa")), codes("OLD", 1),
              (last_month.replace(day=1), last_month), filename="old.xlsx")
    old = issue(app, "55556666", datetime_at(last_month), library="aaa")

    assert client.get(f"/desk/aaa/slip/{first.issuance_id}.pdf").status_code == 409
    assert post(client, f"/desk/aaa/reprint/{first.issuance_id}", token_from="/desk/aaa/").status_code == 409
    assert client.get(f"/desk/aaa/slip/{old.issuance_id}.pdf").status_code == 409
    past = post(client, f"/desk/aaa/replace/{old.issuance_id}", {"reason": "x"}, token_from="/desk/aaa/")
    assert past.status_code == 409 and "Miesiąc tego kodu już minął" in past.get_data(as_text=True)
    lookup = post(client, "/desk/aaa/lookup", {"card": "55556666"}, token_from="/desk/aaa/").get_data(as_text=True)
    assert "OLD000001" in lookup and "Wycofaj i wydaj nowy" not in lookup


def datetime_at(day):
    return warsaw(day.year, day.month, day.day, 12)


def test_errors_are_said_in_the_staff_language_not_as_raw_pages(two_libraries, signed_in_desk):
    client = signed_in_desk(two_libraries[0])

    stale = client.post("/desk/aaa/issue", data={"card": "12345678"}, headers={"HX-Request": "true"})
    missing = client.get("/desk/aaa/slip/999999.pdf")

    assert stale.status_code == 400 and "Ten formularz wygasł" in stale.get_data(as_text=True)
    assert "<html" not in stale.get_data(as_text=True)
    assert missing.status_code == 404 and "nie należy do Twojej biblioteki" in missing.get_data(as_text=True)


def test_the_desk_warning_and_the_dashboard_count_alike(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("CNT", 10), this_month())
    for n in range(9):
        issue(app, f"{30000000 + n}", utcnow(), library="aaa")
    admin = signed_in_admin(library)
    withdrawn = db.session.scalar(select(Issuance.id).order_by(Issuance.id).limit(1))
    post(admin, f"/desk/aaa/replace/{withdrawn}", {"reason": "nie działa"}, token_from="/desk/aaa/")

    desk_page = admin.get("/desk/aaa/").get_data(as_text=True)
    dashboard = admin.get("/admin/aaa/").get_data(as_text=True)
    row = re.search(r"<td>10</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>0</td>", dashboard)

    issued, void, left = (int(n) for n in row.groups())
    assert (issued, void, left) == (9, 1, 0) and issued + void + left == 10
    assert f"zostało {left} z 10" in desk_page and f"Wycofane: {void}." in desk_page
