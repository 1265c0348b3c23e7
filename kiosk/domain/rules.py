"""A library's rule set: the rules it publishes for handing out codes, in one
place. Every rule is off by default, so a library without rules keeps the plain
"a valid card gets one code per window".

Values come in as text (the panel's form, `kiosk rules --set NAME=VALUE`) and are
checked here; a bad value is refused naming the rule. The verdict for a reader is
kiosk.domain.eligibility's; the moment a pool is handed out from is here."""
from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.clock import month_window
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.refusals import Refused
from kiosk.domain.working_days import first_working_day_from, last_working_day_before
from kiosk.storage.models import RuleSet


class ReleaseDay(enum.StrEnum):
    WINDOW_START = "window_start"
    FIRST_WORKING_DAY = "first_working_day"


class EarlyRelease(enum.StrEnum):
    OFF = "off"
    LAST_WORKING_DAY_BEFORE = "last_working_day_before"


class PlatformsRule(enum.StrEnum):
    INDEPENDENT = "independent"
    ONE_PER_MONTH = "one_per_month"
    PRIORITY_WITHOUT_OTHER = "priority_without_other"


OFF = "off"


@dataclass(frozen=True)
class Rules:
    release_day: ReleaseDay = ReleaseDay.WINDOW_START
    release_time: time = time(0, 0)
    early_release: EarlyRelease = EarlyRelease.OFF
    min_age: int | None = None
    active_within_months: int | None = None
    max_debt_grosze: int | None = None  # 0: no debt at all
    non_activation_wait: int | None = None  # months
    first_timer_reserve: int | None = None  # percent of each pool
    first_timer_until_day: int | None = None  # day of the window's month; None: the whole window
    platforms_rule: PlatformsRule = PlatformsRule.INDEPENDENT
    priority_until_day: int | None = None  # None: the whole window
    online_share: int | None = None  # percent of each pool kept for the online form and the API

    @property
    def needs_reader_lock(self) -> bool:
        return self.platforms_rule is not PlatformsRule.INDEPENDENT

    @property
    def needs_reader_facts(self) -> bool:
        return any(value is not None for value in (self.min_age, self.active_within_months, self.max_debt_grosze))

    @property
    def counts_working_days(self) -> bool:
        return (self.release_day is ReleaseDay.FIRST_WORKING_DAY
                or self.early_release is EarlyRelease.LAST_WORKING_DAY_BEFORE)


class RuleProblem(enum.StrEnum):
    UNKNOWN_RULE = "unknown_rule"
    BAD_CHOICE = "bad_choice"
    BAD_TIME = "bad_time"
    BAD_NUMBER = "bad_number"
    BAD_AMOUNT = "bad_amount"


# name -> (kind, choices or (low, high)); the order is the order people read them in.
RULES: dict[str, tuple[str, object]] = {
    "release_day": ("choice", ReleaseDay),
    "release_time": ("time", None),
    "early_release": ("choice", EarlyRelease),
    "min_age": ("number", (1, 120)),
    "active_within_months": ("number", (1, 120)),
    "max_debt": ("amount", (0, 100_000)),
    "non_activation_wait": ("number", (1, 24)),
    "first_timer_reserve": ("number", (1, 100)),
    "first_timer_until_day": ("number", (1, 31)),
    "platforms_rule": ("choice", PlatformsRule),
    "priority_until_day": ("number", (1, 31)),
    "online_share": ("number", (1, 100)),
}
RULE_NAMES = tuple(RULES)
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_AMOUNT = re.compile(r"(\d{1,9})(?:[.,](\d{1,2}))?")
_FIELD = {"max_debt": "max_debt_grosze"}


def _is_off(text: str) -> bool:
    return text in ("", OFF, "-", "wyłączone", "wyłączona", "brak")


def parse_rule(name: str, raw: str):
    """The value of one rule from its text; raises Refused(RuleProblem) naming it."""
    if name not in RULES:
        raise Refused(RuleProblem.UNKNOWN_RULE, rule=str(name)[:40], known=", ".join(RULE_NAMES))
    kind, spec = RULES[name]
    text = " ".join(str(raw or "").split()).lower()[:40]
    details = {"rule": name, "value": text}
    if kind == "choice":
        text = text.replace("-", "_")
        if not text and spec is not PlatformsRule:
            text = next(iter(spec)).value
        if text == OFF and spec is not EarlyRelease:
            text = next(iter(spec)).value
        try:
            return spec(text or next(iter(spec)).value)
        except ValueError:
            raise Refused(RuleProblem.BAD_CHOICE, **details,
                          choices=", ".join(member.value for member in spec)) from None
    if kind == "time":
        if _is_off(text):
            return time(0, 0)
        match = _TIME.fullmatch(text.replace(".", ":"))
        if not match:
            raise Refused(RuleProblem.BAD_TIME, **details)
        return time(int(match[1]), int(match[2]))
    if _is_off(text):
        return None
    low, high = spec
    if kind == "amount":
        match = _AMOUNT.fullmatch(text.replace(" ", "").removesuffix("zł").strip())
        grosze = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0")) if match else None
        if grosze is None or grosze > high * 100:
            raise Refused(RuleProblem.BAD_AMOUNT, **details, high=high)
        return grosze
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise Refused(RuleProblem.BAD_NUMBER, **details, low=low, high=high)
    return int(text)


def rules_for(session: Session, library_id: int) -> Rules:
    return rules_of(session.get(RuleSet, library_id))


def rules_of(row: RuleSet | None) -> Rules:
    """The rules a stored rule set says (none stored: every rule off)."""
    if row is None:
        return Rules()
    return Rules(
        release_day=ReleaseDay(row.release_day),
        release_time=time.fromisoformat(row.release_time),
        early_release=EarlyRelease(row.early_release),
        min_age=row.min_age,
        active_within_months=row.active_within_months,
        max_debt_grosze=row.max_debt_grosze,
        non_activation_wait=row.non_activation_wait,
        first_timer_reserve=row.first_timer_reserve,
        first_timer_until_day=row.first_timer_until_day,
        platforms_rule=PlatformsRule(row.platforms_rule),
        priority_until_day=row.priority_until_day,
        online_share=row.online_share,
    )


def rule_text(rules: Rules, name: str) -> str:
    """A rule's value as `--set` takes it: "off" for a rule that is off."""
    value = getattr(rules, _FIELD.get(name, name))
    if value is None:
        return OFF
    if name == "max_debt":
        return f"{value // 100}.{value % 100:02d}"
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return str(value.value if isinstance(value, enum.Enum) else value)


def rules_as_dict(rules: Rules) -> dict[str, str]:
    return {name: rule_text(rules, name) for name in RULE_NAMES}


def parse_changes(changes: dict[str, str]) -> dict[str, object]:
    """Every change checked; raises Refused with every problem found."""
    parsed, problems = {}, []
    for name, raw in changes.items():
        try:
            parsed[name] = parse_rule(name, raw)
        except Refused as refused:
            problems.extend(refused.problems)
    if problems:
        raise Refused.of(problems)
    return parsed


def save_rules(session: Session, library_id: int, changes: dict[str, object], actor: Actor,
               now: datetime) -> Rules:
    """Apply parsed changes (parse_changes) and log what changed (inside a unit of work)."""
    row = session.get(RuleSet, library_id)
    if row is None:
        row = RuleSet(library_id=library_id, **{
            field.name: _stored(getattr(Rules(), field.name)) for field in dataclasses.fields(Rules)})
        session.add(row)
        session.flush()
    before = rules_as_dict(rules_for(session, library_id))
    for name, value in changes.items():
        setattr(row, _FIELD.get(name, name), _stored(value))
    session.flush()
    after = rules_as_dict(rules_for(session, library_id))
    changed = {name: [before[name], after[name]] for name in RULE_NAMES if before[name] != after[name]}
    if changed:
        record_event(session, kind=EventKind.RULES, actor=actor, library_id=library_id, now=now, changed=changed)
    return rules_for(session, library_id)


def _stored(value):
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, enum.Enum):
        return value.value
    return value


# -- when a window's codes are handed out --------------------------------------------

def release_day(rules: Rules, window_start: date, closed: frozenset[date]) -> date:
    if rules.early_release is EarlyRelease.LAST_WORKING_DAY_BEFORE:
        return last_working_day_before(window_start, closed)
    if rules.release_day is ReleaseDay.FIRST_WORKING_DAY:
        return first_working_day_from(window_start, closed)
    return window_start


def release_moment(rules: Rules, window_start: date, closed: frozenset[date], tz_name: str) -> datetime:
    """The moment (aware, in the library's zone) a window's codes are handed out from."""
    return datetime.combine(release_day(rules, window_start, closed), rules.release_time, ZoneInfo(tz_name))


def day_of_window(window_start: date, day: int | None) -> date | None:
    """Day `day` of the window's month (the month's last day when it is shorter)."""
    if day is None:
        return None
    last = month_window(window_start.year, window_start.month)[1]
    return window_start.replace(day=min(day, last.day))


def in_effect(rules: Rules, name: str) -> bool:
    """False for a rule that only qualifies another one that is off (the reserve's
    day without a reserve, the priority day without the priority rule)."""
    if name == "first_timer_until_day":
        return rules.first_timer_reserve is not None
    if name == "priority_until_day":
        return rules.platforms_rule is PlatformsRule.PRIORITY_WITHOUT_OTHER
    return True
