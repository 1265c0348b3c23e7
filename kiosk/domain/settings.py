"""Library and consortium settings: every value checked in one place, whether it
comes from the admin panel or the command line, and every change logged.

Parsing (parse_*) happens before a transaction opens and raises SettingsRefused
with every problem found; saving (save_*) runs inside the unit of work."""
from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Mapping
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.cards import CHECK_DIGITS, BadPattern, check_card_pattern
from kiosk.domain.clock import parse_date
from kiosk.domain.consortium import consortium, consortium_row
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.refusals import Problem, Refused
from kiosk.domain.rules import RULES
from kiosk.domain.sip2_settings import Sip2Problem
from kiosk.storage.models import CardCheckKind, Library, Platform, Sip2Setting

SLUG = re.compile(r"[a-z0-9][a-z0-9\-]{0,59}")
MAX_NAME, MAX_SLIP_HEADER, MAX_PATTERN, MAX_URL = 200, 300, 200, 300
LOW_POOL_RANGE, IDLE_RANGE = (0, 100), (10, 600)
# How long readers' traces are kept (kiosk.domain.retention). Never shorter than the
# longest look-back of a rule: the wait after a code never activated, up to 24
# months, is decided from the reader's earlier issuances (kiosk.domain.eligibility).
RETENTION_RANGE = (RULES["non_activation_wait"][1][1], 120)
DEFAULT_RETENTION = 24


class SettingProblem(enum.StrEnum):
    SLUG = "slug"
    SLUG_TAKEN = "slug_taken"
    NAME = "name"
    SLIP_HEADER = "slip_header"
    CARD_CHECK = "card_check"
    CARD_PATTERN = "card_pattern"
    CHECK_DIGIT = "check_digit"
    PRINTER = "printer"
    LOW_POOL_PERCENT = "low_pool_percent"
    KIOSK_IDLE_SECONDS = "kiosk_idle_seconds"
    ACTIVATION_URL = "activation_url"
    SERVICE_END = "service_end"
    PLATFORM = "platform"
    RETENTION_MONTHS = "retention_months"


class SettingsRefused(Refused):
    pass


# -- one check per field -------------------------------------------------------

def _text(value: str, limit: int, problem: SettingProblem, problems: list, *, required: bool) -> str | None:
    # No control characters (a report or a slip must show any name), no runs of spaces.
    text = " ".join("".join(ch for ch in (value or "") if ch.isprintable() or ch.isspace()).split())
    if (required and not text) or len(text) > limit:
        problems.append(Problem(problem, {"limit": limit}))
    return text or None


def _card_pattern(value: str | None, problems: list) -> str | None:
    pattern = (value or "").strip() or None
    if pattern is None:
        return None
    if len(pattern) > MAX_PATTERN:
        problems.append(Problem(SettingProblem.CARD_PATTERN, {"limit": MAX_PATTERN}))
        return None
    try:
        check_card_pattern(pattern)
    except BadPattern:
        problems.append(Problem(SettingProblem.CARD_PATTERN, {"limit": MAX_PATTERN}))
    return pattern


def _choice(value: str | None, choices, problem: SettingProblem, problems: list) -> str | None:
    if value not in choices:
        problems.append(Problem(problem, {"value": str(value)[:40]}))
    return value


def _whole_number(value: str | int | None, bounds: tuple[int, int], problem: SettingProblem,
                  problems: list) -> int:
    try:
        number = int(str(value).strip())
        if bounds[0] <= number <= bounds[1]:
            return number
    except ValueError:
        pass
    problems.append(Problem(problem, {"low": bounds[0], "high": bounds[1]}))
    return bounds[0]


def check_retention_months(value: str | int | None) -> int:
    """Months of readers' traces kept: a whole number within RETENTION_RANGE, else
    SettingsRefused (whose details name the range and the rule behind its floor)."""
    problems: list[Problem] = []
    months = _whole_number(value, RETENTION_RANGE, SettingProblem.RETENTION_MONTHS, problems)
    _refuse_if(problems)
    return months


def check_activation_url(value: str | None, problems: list) -> str:
    url = (value or "").strip()
    parts = urlsplit(url) if len(url) <= MAX_URL and not any(ch.isspace() for ch in url) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
        problems.append(Problem(SettingProblem.ACTIVATION_URL, {"limit": MAX_URL}))
    return url


def _refuse_if(problems: list[Problem]) -> None:
    if problems:
        raise SettingsRefused.of(problems)


# -- a new library -------------------------------------------------------------

@dataclass(frozen=True)
class NewLibrary:
    slug: str
    name: str
    slip_header: str | None = None
    card_check: str = CardCheckKind.FORMAT.value
    card_pattern: str | None = None
    card_check_digit: str | None = None


def parse_new_library(*, slug: str, name: str, slip_header: str | None = None,
                      card_check: str = CardCheckKind.FORMAT.value, card_pattern: str | None = None,
                      check_digit: str | None = None) -> NewLibrary:
    problems: list[Problem] = []
    slug = (slug or "").strip()
    if not SLUG.fullmatch(slug):
        problems.append(Problem(SettingProblem.SLUG, {"value": slug[:60]}))
    library = NewLibrary(
        slug=slug,
        name=_text(name, MAX_NAME, SettingProblem.NAME, problems, required=True) or "",
        slip_header=_text(slip_header or "", MAX_SLIP_HEADER, SettingProblem.SLIP_HEADER, problems,
                          required=False),
        card_check=_choice(card_check, {k.value for k in CardCheckKind}, SettingProblem.CARD_CHECK, problems),
        card_pattern=_card_pattern(card_pattern, problems),
        card_check_digit=_choice(check_digit or None, {None, *CHECK_DIGITS}, SettingProblem.CHECK_DIGIT,
                                 problems),
    )
    if library.card_check == CardCheckKind.SIP2.value:
        # A new library has no SIP2 connection yet; `kiosk sip2` sets one and turns sip2 on.
        problems.append(Problem(Sip2Problem.NOT_SET_UP, {}))
    _refuse_if(problems)
    return library


# -- a library's settings --------------------------------------------------------

@dataclass(frozen=True)
class LibrarySettings:
    name: str
    slip_header: str | None
    card_check: str
    card_pattern: str | None
    card_check_digit: str | None
    low_pool_percent: int
    kiosk_idle_seconds: int
    desk_printer: str

    @classmethod
    def of(cls, library: Library) -> LibrarySettings:
        return cls(**{f.name: getattr(library, f.name) for f in dataclasses.fields(cls)})


def parse_library_settings(values: Mapping[str, str], current: LibrarySettings,
                           allowed_printers: list[str]) -> LibrarySettings:
    """The settings as the form (or a command) gives them; a field left out keeps
    its value. A printer must be one the operator lists, unless it is unchanged."""
    problems: list[Problem] = []
    get = lambda key: values.get(key, getattr(current, key))  # noqa: E731
    printer = (get("desk_printer") or "").strip()
    if printer != current.desk_printer and printer not in allowed_printers:
        problems.append(Problem(SettingProblem.PRINTER, {"value": printer[:40]}))
    settings = LibrarySettings(
        name=_text(get("name"), MAX_NAME, SettingProblem.NAME, problems, required=True) or current.name,
        slip_header=_text(get("slip_header") or "", MAX_SLIP_HEADER, SettingProblem.SLIP_HEADER, problems,
                          required=False),
        card_check=_choice(get("card_check"), {k.value for k in CardCheckKind}, SettingProblem.CARD_CHECK,
                           problems),
        card_pattern=_card_pattern(get("card_pattern"), problems),
        card_check_digit=_choice(values.get("check_digit", current.card_check_digit) or None,
                                 {None, *CHECK_DIGITS}, SettingProblem.CHECK_DIGIT, problems),
        low_pool_percent=_whole_number(get("low_pool_percent"), LOW_POOL_RANGE,
                                       SettingProblem.LOW_POOL_PERCENT, problems),
        kiosk_idle_seconds=_whole_number(get("kiosk_idle_seconds"), IDLE_RANGE,
                                         SettingProblem.KIOSK_IDLE_SECONDS, problems),
        desk_printer=printer,
    )
    _refuse_if(problems)
    return settings


def save_library_settings(session: Session, library_id: int, settings: LibrarySettings, actor: Actor,
                          now: datetime) -> dict:
    """Applies the settings; logs and returns what changed."""
    library = session.get(Library, library_id)
    if (settings.card_check == CardCheckKind.SIP2.value and library.card_check != settings.card_check
            and session.get(Sip2Setting, library_id) is None):
        raise SettingsRefused(Sip2Problem.NOT_SET_UP)
    before = LibrarySettings.of(library)
    changed = {key: value for key, value in dataclasses.asdict(settings).items()
               if getattr(before, key) != value}
    for key, value in changed.items():
        setattr(library, key, value)
    if changed:
        record_event(session, kind=EventKind.SETTINGS, actor=actor, library_id=library_id, now=now,
                     scope="library", **changed)
    return changed


# -- the consortium ----------------------------------------------------------------

@dataclass(frozen=True)
class ConsortiumSettings:
    name: str
    service_end: date | None
    activation_url: str
    retention_months: int = DEFAULT_RETENTION


def parse_consortium_settings(values: Mapping[str, str | None], current: ConsortiumSettings) -> ConsortiumSettings:
    """A field left out (or None) keeps its value; an empty service end clears it."""
    problems: list[Problem] = []
    name = current.name
    if (values.get("name") or "").strip():  # a blank name keeps the old one
        name = _text(values["name"], MAX_NAME, SettingProblem.NAME, problems, required=True) or current.name
    end = current.service_end
    if values.get("service_end") is not None:
        text = values["service_end"].strip()
        try:
            end = parse_date(text) if text else None
        except ValueError:
            problems.append(Problem(SettingProblem.SERVICE_END, {"value": text[:40]}))
    url = current.activation_url
    if values.get("activation_url") is not None:
        url = check_activation_url(values["activation_url"], problems)
    months = current.retention_months
    if (str(values.get("retention_months") or "")).strip():  # a blank field keeps the value
        months = _whole_number(values["retention_months"], RETENTION_RANGE, SettingProblem.RETENTION_MONTHS,
                               problems)
    _refuse_if(problems)
    return ConsortiumSettings(name=name, service_end=end, activation_url=url, retention_months=months)


def current_consortium_settings(session: Session, platform_slug: str) -> ConsortiumSettings:
    settings = consortium_row(session)
    url = session.scalar(select(Platform.activation_url).where(Platform.slug == platform_slug))
    return ConsortiumSettings(settings.name if settings else "Kodomat", settings.service_end if settings else None,
                              url or "", settings.retention_months if settings else DEFAULT_RETENTION)


def save_consortium_settings(session: Session, settings: ConsortiumSettings, platform_slug: str, actor: Actor,
                             now: datetime) -> dict:
    row, platform = consortium(session), _platform(session, platform_slug)
    before = {"name": row.name, "service_end": row.service_end, "activation_url": platform.activation_url,
              "retention_months": row.retention_months}
    changed = {key: value for key, value in dataclasses.asdict(settings).items() if before[key] != value}
    row.name, row.service_end, platform.activation_url = settings.name, settings.service_end, settings.activation_url
    row.retention_months = settings.retention_months
    if changed:
        record_event(session, kind=EventKind.SETTINGS, actor=actor, now=now, scope="consortium",
                     platform=platform.slug, **changed)
    return changed


def _platform(session: Session, slug: str) -> Platform:
    platform = session.scalar(select(Platform).where(Platform.slug == slug))
    if platform is None:
        raise SettingsRefused(SettingProblem.PLATFORM, value=slug[:40])
    return platform
