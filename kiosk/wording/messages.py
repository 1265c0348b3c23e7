"""Sentences for the domain's reason codes, in the language of whoever reads them
(Polish by default; catalogues in kiosk/translations hold English and Ukrainian).

The domain returns codes (CardRefusal, ImportProblem, IssuanceRefusal, …), never
sentences; this module is the one place that says them. A sentence may differ by
audience: the panel never names a command-line flag, the CLI does."""
from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Callable, Literal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from kiosk.domain.accounts import AccountProblem, LoginRefusal
from kiosk.domain.activations import ActivationReport
from kiosk.domain.api_keys import ApiKeyProblem
from kiosk.domain.cards import CardRefusal
from kiosk.domain.clock import format_date, format_moment
from kiosk.domain.issuing import IssueResult, Outcome
from kiosk.domain.pool_files import ImportProblem
from kiosk.domain.refusals import Problem, Refused
from kiosk.domain.reprints import IssuanceRefusal
from kiosk.domain.rules import RuleProblem
from kiosk.domain.settings import SettingProblem
from kiosk.domain.sip2_settings import Sip2Problem
from kiosk.domain.working_days import ClosedDayProblem
from kiosk.wording.eligibility import ineligible_line, rule_label
from kiosk.wording.library_system import SIP2_SENTENCES
from kiosk.wording.names import facts_in_words

Audience = Literal["web", "cli"]

CARD_REFUSALS = {
    CardRefusal.EMPTY: _l("Nie podano numeru karty."),
    CardRefusal.FORMAT: _l("To nie wygląda na numer karty tej biblioteki. Sprawdź numer."),
    CardRefusal.CHECK_DIGIT: _l("Numer karty ma błąd: nie zgadza się cyfra kontrolna. Sprawdź numer."),
    CardRefusal.UNKNOWN: _l("Tej karty nie ma w rejestrze czytelników biblioteki."),
    CardRefusal.EXPIRED: _l("Karta straciła ważność. Przedłużysz ją w wypożyczalni."),
    CardRefusal.BLOCKED: _l("Karta jest zablokowana."),
    CardRefusal.WRONG_PIN: _l("Numer karty albo PIN się nie zgadza. Spróbuj jeszcze raz."),
    CardRefusal.ILS_UNAVAILABLE: _l("Nie możemy teraz sprawdzić Twojej karty w systemie biblioteki."),
}


def _day(value) -> str:
    if isinstance(value, datetime):
        return format_moment(value)
    if isinstance(value, date):
        return format_date(value)
    return "…" if value is None else str(value)


def _thousands(number: int) -> str:
    """200 000: thousands apart by a space, as Polish writes them (the other
    languages read it too)."""
    return f"{number:,}".replace(",", "\u00a0")


def _earlier(d: dict) -> str:
    if d.get("other_library") or "filename" not in d:
        return _("jest w puli innej biblioteki")
    return _("plik „%(file)s” zaimportowany %(when)s przez %(who)s dla biblioteki %(library)s "
             "(ważny %(start)s–%(end)s)", file=d["filename"], when=_day(d.get("imported_at")),
             who=d.get("imported_by", "…"), library=d.get("library", "…"), start=_day(d.get("valid_from")),
             end=_day(d.get("valid_until")))


def _code_exists(d: dict) -> str:
    if d.get("other_library") or "filename" not in d:
        return _("Wiersz %(row)s: kod %(code)s jest już w puli innej biblioteki. Nic nie zaimportowano.",
                 row=d.get("row", "…"), code=d.get("code", "…"))
    return _("Wiersz %(row)s: kod %(code)s jest już w puli — %(earlier)s. Nic nie zaimportowano.",
             row=d.get("row", "…"), code=d.get("code", "…"), earlier=_earlier(d))


def _window_conflict(d: dict) -> str:
    file_window, given = d.get("file_window") or (None, None), d.get("given") or (None, None)
    return _("Okres z pliku (%(file_start)s–%(file_end)s) różni się od podanego (%(start)s–%(end)s).",
             file_start=_day(file_window[0]), file_end=_day(file_window[1]), start=_day(given[0]),
             end=_day(given[1]))


def _unreadable(d: dict) -> str:
    # The parser's own words are English and technical: staff get a plain sentence.
    return _("Nie da się odczytać pliku: jest uszkodzony albo to nie jest arkusz z panelu.")


def _ambiguous(d: dict) -> str:
    columns = d.get("columns") or ("…", "…")
    return _("Kody mogą być w kolumnie %(first)s albo %(second)s. Nadaj właściwej kolumnie nagłówek „Kod”.",
             first=columns[0], second=columns[1])


def _rule(d: dict) -> str:
    return rule_label(d["rule"]) if d.get("rule") else "…"


# reason -> details -> sentence. Every reason code of the domain has an entry here
# (a test checks it, and that each is translated).
Sentence = Callable[[dict], str]


def _by_kind(groups: dict[type, dict]) -> dict[tuple[type, enum.Enum], Sentence]:
    return {(kind, reason): sentence for kind, sentences in groups.items() for reason, sentence in sentences.items()}


# Keyed by (enum class, member): StrEnum members of different classes with the same
# value ("empty", "check_digit") are equal, so the member alone would collide.
SENTENCES: dict[tuple[type, enum.Enum], Sentence] = _by_kind({
    CardRefusal: {reason: (lambda d, text=text: str(text)) for reason, text in CARD_REFUSALS.items()},
    ImportProblem: {
        ImportProblem.NOT_SPREADSHEET: lambda d: _(
            "To nie jest arkusz XLSX, XLS ani plik CSV. Wybierz plik pobrany z panelu platformy."),
        ImportProblem.UNREADABLE: _unreadable,
        ImportProblem.EMPTY: lambda d: _("Plik nie zawiera żadnego kodu."),
        ImportProblem.TOO_LARGE: lambda d: _(
            "Plik jest za duży (najwyżej %(limit)s MB). Pula na miesiąc to zwykle kilkaset kilobajtów.",
            limit=d.get("limit_mb", 16)),
        ImportProblem.TOO_MANY_ROWS: lambda d: _(
            "Plik ma więcej niż %(limit)s wierszy z danymi. Podziel go albo sprawdź, czy to właściwy plik.",
            limit=_thousands(d.get("limit", 200000))),
        ImportProblem.TOO_MANY_COLUMNS: lambda d: _(
            "Wiersz %(row)s ma więcej niż %(limit)s kolumn z danymi. To nie wygląda na plik z panelu.",
            row=d.get("row", "…"), limit=d.get("limit", 64)),
        ImportProblem.TOO_MANY_CELLS: lambda d: _(
            "Plik ma więcej niż %(limit)s komórek z danymi. To nie wygląda na plik z panelu.",
            limit=_thousands(d.get("limit", 600000))),
        ImportProblem.CELL_TOO_LONG: lambda d: _(
            "Wiersz %(row)s: komórka ma więcej niż %(limit)s znaków. To nie wygląda na plik z panelu.",
            row=d.get("row", "…"), limit=d.get("limit", 1000)),
        ImportProblem.FORMULA: lambda d: _(
            "Wiersz %(row)s: w komórce jest formuła, a nie wartość. Zapisz plik z samymi wartościami "
            "(Wklej specjalnie → Wartości) albo pobierz go z panelu jeszcze raz.", row=d.get("row", "…")),
        ImportProblem.NO_CODE_COLUMN: lambda d: _("Nie znaleziono kolumny z kodami. Nadaj jej nagłówek „Kod”."),
        ImportProblem.AMBIGUOUS_CODE_COLUMN: _ambiguous,
        ImportProblem.BAD_CODE: lambda d: _("Wiersz %(row)s: „%(value)s” nie wygląda na kod.",
                                            row=d.get("row", "…"), value=d.get("value", "")),
        ImportProblem.BAD_DATE: lambda d: _("Wiersz %(row)s: „%(value)s” nie jest datą (oczekiwano DD.MM.RRRR).",
                                            row=d.get("row", "…"), value=d.get("value", "")),
        ImportProblem.DUPLICATE_IN_FILE: lambda d: _(
            "Wiersz %(row)s: kod %(code)s powtarza się (pierwszy raz w wierszu %(first)s).",
            row=d.get("row", "…"), code=d.get("code", "…"), first=d.get("first_row", "…")),
        ImportProblem.CODE_EXISTS: _code_exists,
        ImportProblem.SAME_FILE: lambda d: _("Ten plik był już zaimportowany: %(earlier)s.", earlier=_earlier(d)),
        ImportProblem.NO_WINDOW: lambda d: _(
            "Plik nie podaje okresu ważności. Wybierz w formularzu miesiąc, na który są te kody."),
        ImportProblem.WINDOW_REVERSED: lambda d: _(
            "Okres ważności kończy się (%(end)s) przed początkiem (%(start)s).",
            end=_day(d.get("valid_until")), start=_day(d.get("valid_from"))),
        ImportProblem.WINDOW_CONFLICT: _window_conflict,
        ImportProblem.WINDOW_MIXED: lambda d: _("Wiersz %(row)s: inny okres ważności niż w poprzednich wierszach.",
                                                row=d.get("row", "…")),
        ImportProblem.WINDOW_OVERLAP: lambda d: _("Okres nachodzi na inną pulę tej biblioteki: %(earlier)s.",
                                                  earlier=_earlier(d)),
        ImportProblem.AFTER_SERVICE_END: lambda d: _("Okres zaczyna się po końcu usługi (%(date)s).",
                                                     date=_day(d.get("service_end"))),
        ImportProblem.NO_CARD_COLUMN: lambda d: _(
            "Nie znaleziono kolumny z numerami kart. Nadaj jej nagłówek „Karta”."),
        ImportProblem.BAD_CARD: lambda d: _("Wiersz %(row)s: „%(value)s” nie jest numerem karty tej biblioteki.",
                                            row=d.get("row", "…"), value=d.get("value", "")),
        ImportProblem.DUPLICATE_CARD: lambda d: _("Wiersz %(row)s: ta sama karta co w wierszu %(first)s.",
                                                  row=d.get("row", "…"), first=d.get("first_row", "…")),
        ImportProblem.BAD_DEBT: lambda d: _(
            "Wiersz %(row)s: „%(value)s” nie jest kwotą zadłużenia w złotych (np. 12,50).",
            row=d.get("row", "…"), value=d.get("value", "")),
        ImportProblem.NEGATIVE_DEBT: lambda d: _(
            "Wiersz %(row)s: zadłużenie nie może być ujemne („%(value)s”).",
            row=d.get("row", "…"), value=d.get("value", "")),
        ImportProblem.NONE_OF_LIBRARY: lambda d: _(
            "Żadnego kodu z pliku nie ma w pulach %(platform)s tej biblioteki. Sprawdź, czy to właściwy plik "
            "i właściwa platforma. Nic nie zapisano.", platform=d.get("platform", "…")),
    },
    IssuanceRefusal: {
        IssuanceRefusal.NOT_FOUND: lambda d: _("Nie ma takiego wydanego kodu w tej bibliotece."),
        IssuanceRefusal.WITHDRAWN: lambda d: _("Ten kod został już wycofany: nie można go wydrukować ani wymienić."),
        IssuanceRefusal.WINDOW_OVER: lambda d: _(
            "Miesiąc tego kodu już minął i kod wygasł: nie można go wydrukować ponownie ani wymienić."),
        IssuanceRefusal.SERVICE_ENDED: lambda d: _(
            "Usługa się zakończyła: kodów nie drukuje się już ponownie ani nie wymienia."),
        IssuanceRefusal.REASON_MISSING: lambda d: _("Podaj powód wymiany kodu."),
        IssuanceRefusal.NO_CODES_LEFT: lambda d: _("Nie ma wolnego kodu z tej puli: kodu nie wymieniono."),
    },
    SettingProblem: {
        SettingProblem.SLUG: lambda d: _(
            "Skrót biblioteki to małe litery, cyfry i myślniki (do 60 znaków), np. „wola”."),
        SettingProblem.SLUG_TAKEN: lambda d: _("Biblioteka o skrócie „%(slug)s” już istnieje.", slug=d.get("value", "")),
        SettingProblem.NAME: lambda d: _("Nazwa nie może być pusta ani dłuższa niż %(limit)s znaków.",
                                         limit=d.get("limit", 200)),
        SettingProblem.SLIP_HEADER: lambda d: _("Nagłówek wydruku może mieć najwyżej %(limit)s znaków.",
                                                limit=d.get("limit", 300)),
        SettingProblem.CARD_CHECK: lambda d: _("Nieznany sposób sprawdzania kart."),
        SettingProblem.CARD_PATTERN: lambda d: _("Wzorzec numeru karty jest błędny."),
        SettingProblem.CHECK_DIGIT: lambda d: _("Nieznany rodzaj cyfry kontrolnej."),
        SettingProblem.PRINTER: lambda d: _("Nieznane ustawienie drukarki."),
        SettingProblem.LOW_POOL_PERCENT: lambda d: _("Próg niskiej puli musi być liczbą od %(low)s do %(high)s %%.",
                                                     low=d.get("low", 0), high=d.get("high", 100)),
        SettingProblem.KIOSK_IDLE_SECONDS: lambda d: _(
            "Czas bezczynności kiosku musi być liczbą sekund od %(low)s do %(high)s.",
            low=d.get("low", 10), high=d.get("high", 600)),
        SettingProblem.ACTIVATION_URL: lambda d: _(
            "Adres aktywacji musi być pełnym adresem strony, zaczynającym się od https://."),
        SettingProblem.SERVICE_END: lambda d: _("„%(value)s” nie jest datą (DD.MM.RRRR).", value=d.get("value", "")),
        SettingProblem.PLATFORM: lambda d: _("Nie ma platformy „%(value)s”.", value=d.get("value", "")),
        SettingProblem.RETENTION_MONTHS: lambda d: _(
            "Dane czytelników przechowuje się od %(low)s do %(high)s miesięcy: krócej nie można, bo zasada "
            "oczekiwania po nieaktywowanym kodzie sięga do %(low)s miesięcy wstecz.",
            low=d.get("low", 24), high=d.get("high", 120)),
    },
    # The rule by its name in the panel (rule_label), never its --set name.
    RuleProblem: {
        RuleProblem.UNKNOWN_RULE: lambda d: _("Nie ma zasady „%(rule)s”.", rule=d.get("rule", "…")),
        RuleProblem.BAD_CHOICE: lambda d: _("%(rule)s: „%(value)s” nie jest żadną z możliwości do wyboru.",
                                            rule=_rule(d), value=d.get("value", "")),
        RuleProblem.BAD_TIME: lambda d: _("%(rule)s: „%(value)s” to nie jest godzina (GG:MM).",
                                          rule=_rule(d), value=d.get("value", "")),
        RuleProblem.BAD_NUMBER: lambda d: _(
            "%(rule)s: „%(value)s” — podaj liczbę całkowitą od %(low)s do %(high)s albo zostaw pole puste.",
            rule=_rule(d), value=d.get("value", ""), low=d.get("low", "…"), high=d.get("high", "…")),
        RuleProblem.BAD_AMOUNT: lambda d: _("%(rule)s: „%(value)s” to nie jest kwota od 0 do %(high)s zł (np. 5,50).",
                                            rule=_rule(d), value=d.get("value", ""), high=d.get("high", "…")),
    },
    AccountProblem: {
        AccountProblem.USERNAME: lambda d: _(
            "Nazwa użytkownika: 2–80 znaków, małe litery, cyfry, kropki i myślniki."),
        AccountProblem.USERNAME_TAKEN: lambda d: _("Taki użytkownik już istnieje."),
        AccountProblem.ROLE: lambda d: _("Nieznana rola."),
        AccountProblem.ROLE_NEEDS_LIBRARY: lambda d: _("Ta rola wymaga biblioteki."),
        AccountProblem.PASSWORD_WRONG: lambda d: _("Obecne hasło jest inne."),
        AccountProblem.PASSWORD_SHORT: lambda d: ngettext(
            "Nowe hasło musi mieć co najmniej %(num)s znak.", "Nowe hasło musi mieć co najmniej %(num)s znaków.",
            d.get("minimum", 10)),
    },
    LoginRefusal: {
        LoginRefusal.BAD_CREDENTIALS: lambda d: _("Nieprawidłowa nazwa użytkownika lub hasło."),
        LoginRefusal.LOCKED: lambda d: _("Za dużo nieudanych prób logowania. Spróbuj ponownie za 15 minut."),
        LoginRefusal.SLOW_DOWN: lambda d: _(
            "Na to konto ktoś próbuje się zalogować z wielu miejsc. Spróbuj ponownie za kilka sekund."),
    },
    Sip2Problem: SIP2_SENTENCES,
    ApiKeyProblem: {
        ApiKeyProblem.NAME: lambda d: _("Nazwa klucza: od 1 do %(limit)s znaków.", limit=d.get("limit", 80)),
        ApiKeyProblem.NAME_TAKEN: lambda d: _("Klucz o nazwie „%(name)s” już jest.", name=d.get("name", "")),
        ApiKeyProblem.PER_MINUTE: lambda d: _("Limit zapytań na minutę musi być liczbą od 1 do %(high)s.",
                                              high=_thousands(d.get("high", 100000))),
        ApiKeyProblem.NOT_FOUND: lambda d: _("Nie ma takiego klucza API (albo został już unieważniony)."),
    },
    ClosedDayProblem: {
        ClosedDayProblem.ALREADY_CLOSED: lambda d: _("Dzień %(day)s jest już dniem zamknięcia.",
                                                     day=_day(d.get("day"))),
        ClosedDayProblem.NOT_CLOSED: lambda d: _("Dzień %(day)s nie jest dniem zamknięcia.",
                                                 day=_day(d.get("day"))),
        ClosedDayProblem.BAD_DATE: lambda d: (
            _("„%(value)s” nie jest datą (DD.MM.RRRR).", value=d["value"]) if d.get("value")
            else _("Podaj dzień (DD.MM.RRRR).")),
    },
})

# Where the command line says it otherwise: it may name its own options.
CLI_SENTENCES: dict[tuple[type, enum.Enum], Sentence] = _by_kind({
    ImportProblem: {ImportProblem.NO_WINDOW: lambda d: _(
        "Plik nie podaje okresu ważności. Podaj --month RRRR-MM albo --valid-from i --valid-until.")},
    IssuanceRefusal: {IssuanceRefusal.NOT_FOUND: lambda d: _("Ten kod nie został nikomu wydany.")},
    # The command line names a rule as --set takes it.
    RuleProblem: {
        RuleProblem.UNKNOWN_RULE: lambda d: _("Nie ma zasady „%(rule)s”. Zasady: %(known)s.", rule=d.get("rule", ""),
                                              known=d.get("known", "")),
        RuleProblem.BAD_CHOICE: lambda d: _("%(rule)s: „%(value)s” — możliwe wartości: %(choices)s.",
                                            rule=d.get("rule", ""), value=d.get("value", ""),
                                            choices=d.get("choices", "")),
        RuleProblem.BAD_TIME: lambda d: _("%(rule)s: „%(value)s” to nie jest godzina (GG:MM).",
                                          rule=d.get("rule", ""), value=d.get("value", "")),
        RuleProblem.BAD_NUMBER: lambda d: _("%(rule)s: „%(value)s” — podaj liczbę od %(low)s do %(high)s albo off.",
                                            rule=d.get("rule", ""), value=d.get("value", ""), low=d.get("low"),
                                            high=d.get("high")),
        RuleProblem.BAD_AMOUNT: lambda d: _("%(rule)s: „%(value)s” — podaj kwotę w złotych od 0 do %(high)s "
                                            "(np. 0 albo 5,50) albo off.", rule=d.get("rule", ""),
                                            value=d.get("value", ""), high=d.get("high")),
    },
})


def sentence_key(reason: enum.Enum) -> tuple[type, enum.Enum]:
    return type(reason), reason


def describe(problem: Problem, audience: Audience = "web") -> str:
    key = sentence_key(problem.reason)
    sentences = CLI_SENTENCES if audience == "cli" and key in CLI_SENTENCES else SENTENCES
    return sentences[key](problem.details)


def describe_refusal(refused: Refused, audience: Audience = "web") -> str:
    """Every problem of a refusal, one sentence after another."""
    return " ".join(describe(problem, audience) for problem in refused.problems)


def codes_imported(count: int, start: date, end: date) -> str:
    return ngettext("Zaimportowano %(num)s kod ważny %(start)s–%(end)s.",
                    "Zaimportowano %(num)s kodów ważnych %(start)s–%(end)s.", count,
                    start=format_date(start), end=format_date(end))


def codes_would_import(count: int, start: date, end: date) -> str:
    return ngettext("Próba, nic nie zapisano: plik ma %(num)s kod ważny %(start)s–%(end)s.",
                    "Próba, nic nie zapisano: plik ma %(num)s kodów ważnych %(start)s–%(end)s.", count,
                    start=format_date(start), end=format_date(end))


def cards_imported(count: int, blocked: int, with_expiry: int, facts: tuple[str, ...] = ()) -> str:
    if facts:
        read = _("Dane czytelników z pliku: %(facts)s.", facts=facts_in_words(facts))
    else:
        read = _("Plik nie podaje daty urodzenia, ostatniego wypożyczenia ani zadłużenia czytelników.")
    return " ".join((
        ngettext("%(num)s karta", "%(num)s kart", count) + ",",
        ngettext("w tym %(num)s zablokowana", "w tym %(num)s zablokowanych", blocked) + ",",
        ngettext("%(num)s z datą ważności.", "%(num)s z datą ważności.", with_expiry),
        read,
    ))


def activations_imported(report: ActivationReport) -> str:
    said = _("Aktywacje %(platform)s — nowo oznaczone kody: %(marked)s, oznaczone już wcześniej: %(already)s, "
             "spoza pul tej biblioteki: %(not_found)s.", platform=report.platform_name, marked=report.marked,
             already=report.already, not_found=report.not_found)
    if report.skipped:
        said += " " + _("Bez daty aktywacji (jeszcze nieaktywowane): %(skipped)s.", skipped=report.skipped)
    return said


def describe_issue(result: IssueResult, dry_run: bool = False) -> str:
    """One line for staff (the CLI and the desk's log of a result). A dry run says
    what the reader would get, and never names a code (none was handed out)."""
    o = Outcome
    if dry_run and result.outcome is o.ISSUED:
        return _("Czytelnik dostałby nowy kod (aktywacja do %(date)s).", date=format_date(result.valid_until))
    if dry_run and result.outcome in (o.REPRINT, o.REPRINT_WITHHELD):
        return _("Czytelnik ma już kod na ten miesiąc; dostałby go ponownie.")
    if result.outcome is o.CARD_REFUSED:
        return _("Karta odrzucona: %(reason)s", reason=CARD_REFUSALS[result.reason])
    if result.outcome is o.ISSUED:
        return _("Wydano kod %(code)s. Aktywuj do %(date)s.", code=result.code, date=format_date(result.valid_until))
    if result.outcome is o.REPRINT:
        return _("Ten czytelnik ma już kod w tym miesiącu: %(code)s (aktywuj do %(date)s). Wydruk nr %(count)s.",
                 code=result.code, date=format_date(result.valid_until), count=result.print_count)
    if result.outcome is o.NOT_ELIGIBLE:
        return ineligible_line(result.ineligible)
    if result.outcome is o.SERVICE_ENDED:
        return _("Usługa zakończyła się %(date)s; kodów już się nie wydaje.", date=_day(result.service_end))
    following = (" " + _("Następna pula od %(date)s.", date=format_date(result.next_pool_from))
                 if result.next_pool_from else "")
    if result.outcome is o.NO_CODES_LEFT:
        return _("Kody na ten miesiąc się skończyły.") + following
    return _("Brak puli kodów ważnej dziś.") + following
