"""Days as people read them: the weekday's name, a public holiday's name in the
reader's language, and why a month's first working day is not its first day."""
from __future__ import annotations

from datetime import date

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kiosk.domain.clock import format_date
from kiosk.domain.working_days import MonthStart, public_holiday_name
from kiosk.wording.languages import language_from

WEEKDAYS = (_l("poniedziałek"), _l("wtorek"), _l("środa"), _l("czwartek"), _l("piątek"), _l("sobota"),
            _l("niedziela"))


def weekday_name(day: date) -> str:
    return str(WEEKDAYS[day.weekday()])


def _language() -> str:
    locale = get_locale()
    return language_from(locale.language if locale else None)


def holiday_name(day: date) -> str | None:
    """The public holiday's name in the reader's language, None on any other day."""
    return public_holiday_name(day, _language())


def why_moved(start: MonthStart) -> str:
    """What moved the month's first working day past its weekdays before it: the
    holidays by name, the library's closed days by date; "" when nothing did."""
    reasons = [f"{holiday_name(day)} ({format_date(day)})" for day in start.holidays]
    if start.closed:
        reasons.append(_("dzień zamknięcia biblioteki: %(days)s",
                         days=", ".join(format_date(day) for day in start.closed)))
    return "; ".join(reasons)
