"""The desk and the admin panel in a real Chromium, as a librarian uses them."""
import re

import pytest

from helpers import axe_violations, codes, panel_file, xlsx_file

pytestmark = pytest.mark.e2e


def desk_issue(page, card: str) -> str:
    # Clear the last result, so the wait below sees this reader's slip, not the previous one.
    page.evaluate("document.getElementById('desk-result').innerHTML = ''")
    page.fill("#card", card)
    page.press("#card", "Enter")
    page.wait_for_selector("#desk-result #slip-code")
    settled(page)
    return page.inner_text("#desk-result #slip-code").replace(" ", "")


def settled(page) -> None:
    """htmx has finished with the page: no request in flight, nothing settling (the
    next action starts from a page at rest, as a librarian's does)."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')")


def test_desk_scan_slip_next_reader(staff_page, site):
    page = staff_page

    first = desk_issue(page, "12345678")
    assert page.input_value("#card") == "" and page.evaluate("document.activeElement.id") == "card"
    assert "Wydano kod" in page.inner_text("#desk-result h2")
    assert page.locator("#desk-result a[href*='paper=a6']").count() == 1
    second = desk_issue(page, "87654321")

    assert {first, second} <= set(site.pool_codes) and first != second
    page.fill("#lookup-code", first)
    page.click("text=Szukaj po kodzie")
    page.wait_for_selector("#desk-result table")
    assert "••••5678" in page.inner_text("#desk-result table")
    assert not page.console_errors


def test_import_preview_then_confirm(staff_page, site, tmp_path):
    page = staff_page
    upload = tmp_path / "grudzien.xlsx"
    upload.write_bytes(panel_file(codes("DEC", 7)))

    page.click("text=Administracja")
    page.click("text=Import kodów")
    page.set_input_files("#file", str(upload))
    page.fill("#month", "2099-12")
    page.click("text=Pokaż podgląd")
    page.wait_for_selector("#preview-count")
    assert page.inner_text("#preview-count") == "7"
    assert "01.12.2099–31.12.2099" in page.inner_text(".facts")
    page.click("#confirm-import")

    page.wait_for_selector("text=Zaimportowano 7 kodów")
    assert "Pulpit" in page.inner_text("nav.admin-nav")


def test_dashboard_shows_pools_and_the_chart(staff_page, site):
    page = staff_page
    desk_issue(page, "12345678")

    page.goto(f"{site.url}/admin/e2e/")

    assert page.locator("figure.chart svg rect").count() >= 28
    assert "kody.xlsx" in page.inner_text("table")
    assert re.search(r"Kiosk: 0 · Stanowisko: 1", page.inner_text("main"))


def test_desk_and_admin_pages_pass_axe(staff_page, site, tmp_path):
    page = staff_page
    found = {"desk": axe_violations(page)}
    desk_issue(page, "12345678")
    found["desk with a slip"] = axe_violations(page)
    page.fill("#lookup-card", "12345678")
    page.click("text=Szukaj po karcie")
    page.wait_for_selector("#desk-result table")
    found["lookup"] = axe_violations(page)
    for name in ("", "import", "events", "kiosks", "users", "settings"):
        page.goto(f"{site.url}/admin/e2e/{name}")
        found[f"admin {name or 'dashboard'}"] = axe_violations(page)
    upload = tmp_path / "styczen.xlsx"
    upload.write_bytes(panel_file(codes("JAN", 3)))
    page.goto(f"{site.url}/admin/e2e/import")
    page.set_input_files("#file", str(upload))
    page.fill("#month", "2099-01")
    page.click("text=Pokaż podgląd")
    page.wait_for_selector("#preview-count")
    found["import preview"] = axe_violations(page)
    page.goto(f"{site.url}/login")
    found["login"] = axe_violations(page)

    assert {name: violations for name, violations in found.items() if violations} == {}


def test_an_activation_list_uploaded_through_htmx_marks_the_code(staff_page, site, tmp_path):
    page = staff_page
    upload = tmp_path / "aktywacje.xlsx"
    upload.write_bytes(xlsx_file([["Kod", "Data aktywacji"], [site.pool_codes[0], "14.01.2026"],
                                  [site.pool_codes[1], None]]))

    page.click("text=Administracja")
    page.click("nav.admin-nav >> text=Aktywacje kodów")
    page.select_option("#platform", "legimi")
    page.set_input_files("#file", str(upload))
    page.evaluate("window.samePage = true")  # gone if the form loaded a new page
    page.click("text=Oznacz aktywowane kody")
    page.wait_for_selector("#activation-report")

    assert "nowo oznaczone kody: 1" in page.inner_text("#activation-report")
    assert "jeszcze nieaktywowane): 1" in page.inner_text("#activation-report")
    assert "aktywacje.xlsx" in page.inner_text("#activation-imports")
    assert page.evaluate("window.samePage === true")  # swapped in by htmx
    assert axe_violations(page) == [] and not page.console_errors
