"""Time for the domain: the moment comes in as a parameter, the library's calendar
day is derived from it in the library's time zone (Europe/Warsaw by default)."""
from __future__ import annotations

import calendar
from datetime import date, datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Europe/Warsaw"
# Dates outside these years are typing mistakes (0001-01, 9999-12), and near the
# ends of the calendar a time zone shift overflows: refuse them where they come in.
FIRST_YEAR, LAST_YEAR = 2000, 2100


def sane(day: date) -> date:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"year {day.year} is outside {FIRST_YEAR}–{LAST_YEAR}")
    return day


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def local_day(moment: datetime, tz_name: str = DEFAULT_TIMEZONE) -> date:
    """The calendar day at `moment` in the library's zone; a naive moment is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(tz_name)).date()


def month_window(year: int, month: int) -> tuple[date, date]:
    last = calendar.monthrange(year, month)[1]
    return date(year, month, 1), date(year, month, last)


def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), the month's last day when it is shorter."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def parse_iso_day(text: str) -> date:
    """A day as a date field sends it (YYYY-MM-DD), within the sane years."""
    return sane(date.fromisoformat(text.strip()))


def parse_month(text: str) -> tuple[date, date]:
    """'2020-02' -> (2020-02-01, 2020-02-29)."""
    try:
        year, month = (int(part) for part in text.strip().split("-"))
        return month_window(sane(date(year, month, 1)).year, month)
    except (ValueError, calendar.IllegalMonthError) as exc:
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}") from exc


DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%Y", "%Y.%m.%d", "%Y/%m/%d")


def parse_date(value: object, any_year: bool = False) -> date:
    """A date from a spreadsheet cell or a command line: a date, a datetime or
    text in ISO (YYYY-MM-DD) or Polish (DD.MM.YYYY) order. Within the sane years,
    unless any_year (a card register's "never expires" is often 9999-12-31)."""
    check = (lambda day: day) if any_year else sane
    if isinstance(value, datetime):
        return check(value.date())
    if isinstance(value, date):
        return check(value)
    text = str(value).strip()
    # A date with a time part, as exported by some panels: "2020-01-02 00:00:00".
    parsed = _date_in_text(text.split(" ")[0].split("T")[0])
    if parsed is None:
        raise ValueError(f"not a date: {text!r}")
    return check(parsed)


@lru_cache(maxsize=1024)
def _date_in_text(head: str) -> date | None:
    # Cached: a pool file repeats one window on each of 100,000 rows, and each
    # format strptime refuses costs an exception.
    quick = _usual_date(head)
    if quick is not None:
        return quick
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(head, fmt).date()
        except ValueError:
            continue
    return None


def _usual_date(head: str) -> date | None:
    """DD.MM.YYYY or YYYY-MM-DD, as nearly every file writes its dates, read without
    strptime: a register's birth dates all differ, so the cache rarely has them."""
    if len(head) != 10 or not head.isascii():
        return None
    if head[2] == head[5] == ".":
        day, month, year = head[:2], head[3:5], head[6:]
    elif head[4] == head[7] == "-":
        year, month, day = head[:4], head[5:7], head[8:]
    else:
        return None
    if not (day + month + year).isdigit():
        return None
    try:
        return date(int(year), int(month), int(day))
    except ValueError:  # 31.02.2020: no format reads it either
        return None


def format_date(day: date) -> str:
    """Dates as readers and staff in Poland write them: DD.MM.YYYY."""
    return day.strftime("%d.%m.%Y")


def format_moment(moment: datetime, tz_name: str = DEFAULT_TIMEZONE) -> str:
    """A moment as staff read it: DD.MM.YYYY HH:MM in the library's zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(tz_name)).strftime("%d.%m.%Y %H:%M")


def parse_moment(text: str, tz_name: str = DEFAULT_TIMEZONE) -> datetime:
    """A moment as people type it: 2027-05-04T09:59, 2027-05-04 09:59, 04.05.2027 09:59
    (in the library's zone), with an offset (…+02:00), or a day alone (its midnight)."""
    cleaned = " ".join(text.strip().split())
    for pattern in ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y"):
        try:
            moment = datetime.strptime(cleaned, pattern)
            break
        except ValueError:
            continue
    else:
        try:
            moment = datetime.fromisoformat(cleaned)
        except ValueError:
            raise ValueError(f"expected a moment such as 2027-05-04T09:59, got {text!r}") from None
    sane(moment.date())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz_name))
    return moment
