"""Sentences for the domain's reason codes. The domain returns codes
(CardRefusal, ImportProblem, Outcome), never sentences; this module says them:
card refusals in the reader's language (catalogues in kiosk/translations), import
refusals and the CLI's lines in Polish, for staff."""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l

from kiosk.cards import CardRefusal
from kiosk.clock import format_date, format_moment
from kiosk.issuing import IssueResult, Outcome
from kiosk.pools import ImportProblem, ImportRefused

CARD_REFUSALS = {
    CardRefusal.EMPTY: _l("Nie podano numeru karty."),
    CardRefusal.FORMAT: _l("To nie wygląda na numer karty tej biblioteki. Sprawdź numer."),
    CardRefusal.CHECK_DIGIT: _l("Numer karty ma błąd: nie zgadza się cyfra kontrolna. Sprawdź numer."),
    CardRefusal.UNKNOWN: _l("Tej karty nie ma w rejestrze czytelników biblioteki."),
    CardRefusal.EXPIRED: _l("Karta straciła ważność. Przedłużysz ją w wypożyczalni."),
    CardRefusal.BLOCKED: _l("Karta jest zablokowana."),
}


def _day(value) -> str:
    if isinstance(value, datetime):
        return format_moment(value)
    if isinstance(value, date):
        return format_date(value)
    return str(value)


def _earlier(d: dict) -> str:
    if d.get("other_library"):
        return "jest w puli innej biblioteki"
    return (f"plik „{d['filename']}” zaimportowany {_day(d['imported_at'])} przez {d['imported_by']} "
            f"dla biblioteki {d['library']} (ważny {_day(d['valid_from'])}–{_day(d['valid_until'])})")


def describe_import_refusal(exc: ImportRefused) -> str:
    d = exc.details
    p = ImportProblem
    texts = {
        p.NOT_SPREADSHEET: lambda: "To nie jest arkusz XLSX, XLS ani plik CSV. Wybierz plik pobrany z panelu Legimi.",
        p.UNREADABLE: lambda: f"Nie da się odczytać pliku (uszkodzony?): {d.get('detail', '')}".rstrip(": "),
        p.EMPTY: lambda: "Plik nie zawiera żadnego kodu.",
        p.NO_CODE_COLUMN: lambda: "Nie znaleziono kolumny z kodami. Nadaj jej nagłówek „Kod”.",
        p.AMBIGUOUS_CODE_COLUMN: lambda: (
            f"Kody mogą być w kolumnie {d['columns'][0]} albo {d['columns'][1]}. "
            "Nadaj właściwej kolumnie nagłówek „Kod”."),
        p.BAD_CODE: lambda: f"Wiersz {d['row']}: „{d['value']}” nie wygląda na kod.",
        p.BAD_DATE: lambda: f"Wiersz {d['row']}: „{d['value']}” nie jest datą (oczekiwano DD.MM.RRRR).",
        p.DUPLICATE_IN_FILE: lambda: (
            f"Wiersz {d['row']}: kod {d['code']} powtarza się (pierwszy raz w wierszu {d['first_row']})."),
        p.CODE_EXISTS: lambda: (
            f"Wiersz {d['row']}: kod {d['code']} jest już w puli — {_earlier(d)}. Nic nie zaimportowano."
            if not d.get("other_library") else
            f"Wiersz {d['row']}: kod {d['code']} jest już w puli innej biblioteki. Nic nie zaimportowano."),
        p.SAME_FILE: lambda: f"Ten plik był już zaimportowany: {_earlier(d)}.",
        p.NO_WINDOW: lambda: (
            "Plik nie podaje okresu ważności. Podaj --month RRRR-MM albo --valid-from i --valid-until."),
        p.WINDOW_REVERSED: lambda: (
            f"Okres ważności kończy się ({_day(d['valid_until'])}) przed początkiem ({_day(d['valid_from'])})."),
        p.WINDOW_CONFLICT: lambda: (
            f"Okres z pliku ({_day(d['file_window'][0]) if d['file_window'][0] else '…'}–"
            f"{_day(d['file_window'][1])}) różni się od podanego "
            f"({_day(d['given'][0])}–{_day(d['given'][1])})."),
        p.WINDOW_MIXED: lambda: f"Wiersz {d['row']}: inny okres ważności niż w poprzednich wierszach.",
        p.WINDOW_OVERLAP: lambda: f"Okres nachodzi na inną pulę tej biblioteki: {_earlier(d)}.",
        p.AFTER_SERVICE_END: lambda: (
            f"Okres zaczyna się po końcu usługi ({_day(d['service_end'])})."),
        p.NO_CARD_COLUMN: lambda: "Nie znaleziono kolumny z numerami kart. Nadaj jej nagłówek „Karta”.",
        p.BAD_CARD: lambda: f"Wiersz {d['row']}: „{d['value']}” nie jest numerem karty tej biblioteki.",
        p.DUPLICATE_CARD: lambda: (
            f"Wiersz {d['row']}: ta sama karta co w wierszu {d['first_row']}."),
    }
    return texts[exc.problem]()


def describe_issue(result: IssueResult) -> str:
    o = Outcome
    if result.outcome is o.CARD_REFUSED:
        return f"Karta odrzucona: {CARD_REFUSALS[result.reason]}"
    if result.outcome is o.ISSUED:
        return f"Wydano kod {result.code}. Aktywuj do {format_date(result.valid_until)}."
    if result.outcome is o.REPRINT:
        return (f"Ten czytelnik ma już kod w tym miesiącu: {result.code} "
                f"(aktywuj do {format_date(result.valid_until)}). Wydruk nr {result.print_count}.")
    nxt = f" Następna pula od {format_date(result.next_pool_from)}." if result.next_pool_from else ""
    if result.outcome is o.SERVICE_ENDED:
        return f"Usługa zakończyła się {format_date(result.service_end)}; kodów już się nie wydaje."
    if result.outcome is o.NO_CODES_LEFT:
        return "Kody na ten miesiąc się skończyły." + nxt
    return "Brak puli kodów ważnej dziś." + nxt
