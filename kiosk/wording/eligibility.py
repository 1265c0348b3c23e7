"""The library's rules, said to a reader: why there is no code now, and what to
do next, in one plain sentence each (kiosk, desk, CLI, and the panel's check);
and the rules themselves as the panel names them (RULE_LABELS, RULE_HELP)."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kiosk.domain.clock import format_date
from kiosk.domain.eligibility import Fact, Ineligibility, Ineligible
from kiosk.domain.rules import OFF, RULES, EarlyRelease, PlatformsRule, ReleaseDay, Rules, rule_text
from kiosk.wording.slips import month_name

FACT_NAMES = {
    Fact.BIRTH_DATE: _l("data urodzenia"),
    Fact.LAST_LOAN: _l("data ostatniego wypożyczenia"),
    Fact.DEBT: _l("zadłużenie"),
    Fact.ACTIVATIONS: _l("lista aktywacji kodów z platformy"),
}
REASON_NAMES = {
    Ineligibility.NOT_YET: _l("jeszcze nie wydajemy"),
    Ineligibility.TOO_YOUNG: _l("za młody czytelnik"),
    Ineligibility.INACTIVE: _l("brak wypożyczeń"),
    Ineligibility.DEBT: _l("zadłużenie"),
    Ineligibility.NOT_ACTIVATED: _l("nieaktywowany kod"),
    Ineligibility.RESERVED: _l("rezerwa dla nowych czytelników"),
    Ineligibility.ONLINE_RESERVED: _l("część puli dla zamówień online"),
    Ineligibility.OTHER_PLATFORM: _l("kod innej platformy"),
    Ineligibility.NO_DATA: _l("brak danych"),
}
CHOICE_NAMES = {
    ReleaseDay.WINDOW_START: _l("pierwszy dzień okresu ważności puli"),
    ReleaseDay.FIRST_WORKING_DAY: _l("pierwszy dzień roboczy miesiąca"),
    EarlyRelease.OFF: _l("nie"),
    EarlyRelease.LAST_WORKING_DAY_BEFORE: _l("od ostatniego dnia roboczego poprzedniego miesiąca"),
    PlatformsRule.INDEPENDENT: _l("każda platforma osobno"),
    PlatformsRule.ONE_PER_MONTH: _l("jeden kod w miesiącu, z dowolnej platformy"),
    PlatformsRule.PRIORITY_WITHOUT_OTHER: _l("najpierw dla osób bez kodu innej platformy"),
}


# The rules as people read them; the names (release_day, …) are kiosk rules --set's.
RULE_LABELS = {
    "release_day": _l("Dzień wydawania"),
    "release_time": _l("Godzina wydawania"),
    "early_release": _l("Wcześniejsze wydawanie"),
    "min_age": _l("Najniższy wiek czytelnika (lata)"),
    "active_within_months": _l("Ostatnie wypożyczenie nie dawniej niż (miesiące)"),
    "max_debt": _l("Największe dopuszczalne zadłużenie (zł)"),
    "non_activation_wait": _l("Przerwa po nieaktywowanym kodzie (miesiące)"),
    "first_timer_reserve": _l("Rezerwa dla nowych czytelników (procent puli)"),
    "first_timer_until_day": _l("Rezerwa do dnia miesiąca"),
    "platforms_rule": _l("Kody kilku platform"),
    "priority_until_day": _l("Pierwszeństwo do dnia miesiąca"),
    "online_share": _l("Część puli dla zamówień online (procent)"),
}
RULE_HELP = {
    "release_day": _l("Od którego dnia wydajemy kody na nowy miesiąc: od początku okresu ważności puli albo od "
                      "pierwszego dnia roboczego miesiąca (weekend, święto lub dzień zamknięcia przesuwa dzień)."),
    "release_time": _l("Od tej godziny w dniu wydawania kody są wydawane; 00:00 — od początku dnia."),
    "early_release": _l("Kody na nowy miesiąc już od ostatniego dnia roboczego przed jego początkiem "
                        "(ma pierwszeństwo przed dniem wydawania)."),
    "min_age": _l("Kod dostają czytelnicy, którzy skończyli tyle lat (data urodzenia z rejestru kart)."),
    "active_within_months": _l("Kod dostają czytelnicy, którzy wypożyczyli coś w ostatnich tylu miesiącach "
                               "(z rejestru kart)."),
    "max_debt": _l("Czytelnik z większą zaległą opłatą nie dostaje kodu; 0 — żadnej zaległości "
                   "(z rejestru kart)."),
    "non_activation_wait": _l("Kto nie aktywował kodu, czeka tyle pełnych miesięcy na następny (według listy "
                              "aktywacji z platformy)."),
    "first_timer_reserve": _l("Taka część każdej puli czeka na osoby, które odbierają kod pierwszy raz."),
    "first_timer_until_day": _l("Od tego dnia miesiąca kody z rezerwy dostaje każdy; puste — rezerwa przez cały "
                                "miesiąc."),
    "platforms_rule": _l("Czy czytelnik może w jednym miesiącu dostać kody kilku platform."),
    "priority_until_day": _l("Przy pierwszeństwie dla osób bez kodu innej platformy: od tego dnia miesiąca kod "
                             "drugiej platformy może dostać każdy; puste — przez cały miesiąc."),
    "online_share": _l("Taka część każdej puli czeka przez cały miesiąc na zamówienia przez formularz online "
                       "i systemy biblioteczne (API); w bibliotece wydajemy pozostałe."),
}
# Rules whose empty value is "the whole month", not "off".
WHOLE_MONTH_WHEN_EMPTY = frozenset({"first_timer_until_day", "priority_until_day"})


def rule_label(name: str) -> str:
    return str(RULE_LABELS.get(name, name))


def rule_value(rules: Rules, name: str) -> str:
    """A rule's value in words: a choice by its name, "wyłączona" for a rule that is off."""
    kind, spec = RULES[name]
    text = rule_text(rules, name)
    if kind == "choice":
        return str(CHOICE_NAMES[spec(text)])
    if text == OFF:
        return _("cały miesiąc") if name in WHOLE_MONTH_WHEN_EMPTY else _("wyłączona")
    if name == "max_debt":
        return _("%(amount)s zł", amount=text.replace(".", ","))
    return text


def _from_weekday(moment: datetime) -> str:
    """"od poniedziałku": the weekday as it follows "from" in each language."""
    return (_("od poniedziałku"), _("od wtorku"), _("od środy"), _("od czwartku"), _("od piątku"),
            _("od soboty"), _("od niedzieli"))[moment.weekday()]


def release_sentence(moment: datetime, window_start) -> str:
    """"Kody na grudzień od poniedziałku 01.12.2026 o 10:00." (the moment in the library's zone)."""
    if moment.hour == 0 and moment.minute == 0:
        return _("Kody na %(month)s %(from_weekday)s %(date)s.", month=month_name(window_start.month),
                 from_weekday=_from_weekday(moment), date=format_date(moment.date()))
    return _("Kody na %(month)s %(from_weekday)s %(date)s o %(time)s.", month=month_name(window_start.month),
             from_weekday=_from_weekday(moment), date=format_date(moment.date()), time=moment.strftime("%H:%M"))


def ineligible_sentences(ineligible: Ineligible) -> tuple[str, str]:
    """(why, what next) for the reader."""
    r, i = Ineligibility, ineligible
    when = format_date(i.eligible_from) if i.eligible_from else ""
    if i.reason is r.NOT_YET:
        return release_sentence(i.next_release, i.window_start), _("Przyjdź wtedy z kartą biblioteczną.")
    if i.reason is r.TOO_YOUNG:
        return (_("Kody wydajemy czytelnikom od %(age)s lat.", age=i.limit),
                _("Kod możesz dostać od %(date)s.", date=when))
    if i.reason is r.INACTIVE:
        return (_("Kody dostają czytelnicy, którzy wypożyczyli coś w ostatnich %(months)s mies.", months=i.limit),
                _("Wypożycz książkę, a kod dostaniesz przy następnej wizycie."))
    if i.reason is r.DEBT:
        return (_("Na Twoim koncie jest zaległa opłata."),
                _("Ureguluj ją w wypożyczalni, a potem odbierz kod."))
    if i.reason is r.NOT_ACTIVATED:
        return (_("Poprzedni kod nie został aktywowany."),
                _("Następny kod możesz dostać od %(date)s.", date=when))
    if i.reason is r.RESERVED:
        return (_("Pozostałe kody czekają na osoby, które odbierają kod pierwszy raz."),
                _("Wróć od %(date)s — wtedy wolne kody dostanie każdy.", date=when))
    if i.reason is r.ONLINE_RESERVED:
        return (_("Pozostałe kody w tym miesiącu czekają na zamówienia przez formularz online."),
                _("Zamów kod na stronie internetowej biblioteki."))
    if i.reason is r.OTHER_PLATFORM:
        held = _("W tym miesiącu masz już kod %(platform)s.", platform=i.platform_name or i.platform)
        if i.eligible_from:
            return held, _("Kod drugiej platformy możesz dostać od %(date)s, jeśli zostaną wolne kody.", date=when)
        return held, _("W jednym miesiącu wydajemy jeden kod na osobę.")
    return (_("Nie możemy teraz sprawdzić, czy kod Ci przysługuje."),
            _("Zapytaj w wypożyczalni — bibliotekarz to sprawdzi."))


def ineligible_line(ineligible: Ineligible) -> str:
    """One line for staff (the desk, the CLI, the panel's check): the reader's
    sentences, and for missing data which fact is missing."""
    why, then = ineligible_sentences(ineligible)
    if ineligible.reason is Ineligibility.NO_DATA and ineligible.missing:
        why = _("Brak danych do sprawdzenia zasad: %(fact)s.", fact=FACT_NAMES[ineligible.missing])
    return f"{why} {then}"
