"""The library's rules, said to a reader: why there is no code now, and what to
do next, in one plain sentence each (kiosk, desk, CLI, and the panel's check)."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kiosk.domain.clock import format_date
from kiosk.domain.eligibility import Fact, Ineligibility, Ineligible
from kiosk.domain.rules import EarlyRelease, PlatformsRule, ReleaseDay
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
