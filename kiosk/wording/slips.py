"""From an issuance to the slip model, in the reader's language."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask_babel import force_locale, gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.domain.clock import format_date, local_day, utcnow
from kiosk.storage.models import Code, Consortium, Issuance, Library, Platform
from printing.slip import Slip


def slip_id(issuance_id: int) -> str:
    """Short, typed easily at the desk: S000042."""
    return f"S{issuance_id:06d}"


def month_name(month: int) -> str:
    """The month's name as it follows "kod na …" (Polish and Ukrainian: the accusative,
    which for every month is the same as the nominative)."""
    return (gettext("styczeń"), gettext("luty"), gettext("marzec"), gettext("kwiecień"),
            gettext("maj"), gettext("czerwiec"), gettext("lipiec"), gettext("sierpień"),
            gettext("wrzesień"), gettext("październik"), gettext("listopad"),
            gettext("grudzień"))[month - 1]


def platform_steps(platform: Platform, language: str) -> tuple[str, ...] | None:
    """The platform's own steps in the language (else in Polish), "{url}" replaced by
    its activation URL; None when it has none or they are not a list of texts."""
    try:
        steps = json.loads(platform.slip_steps) if platform.slip_steps else None
    except ValueError:
        return None
    if not isinstance(steps, dict):
        return None
    for candidate in (steps.get(language), steps.get("pl")):
        if isinstance(candidate, list) and candidate and all(isinstance(s, str) and s.strip() for s in candidate):
            # replace, not format: a brace in the text cannot break the slip
            return tuple(step.replace("{url}", platform.activation_url) for step in candidate)
    return None


def platform_promise(platform: Platform, name: str) -> int | None:
    """What a platform's data says its code gives ("access_days", "devices"); None
    when it does not say (the slip then promises nothing)."""
    try:
        data = json.loads(platform.slip_steps) if platform.slip_steps else None
    except ValueError:
        return None
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def general_steps(platform: Platform) -> tuple[str, ...]:
    """The seed leaflet's three steps, for a platform without steps of its own."""
    return (
        gettext("Wejdź na %(url)s i wpisz kod.", url=platform.activation_url),
        gettext("Załóż konto: nazwa użytkownika, e-mail (kliknij link aktywacyjny, "
                "który przyjdzie e-mailem) i hasło — albo zaloguj się na swoje konto "
                "i wpisz nowy kod."),
        gettext("Pobierz darmową aplikację %(platform)s: iOS, Android, Windows — telefony, "
                "tablety, czytniki.", platform=platform.name),
    )


def slip_for_issuance(session: Session, issuance_id: int, language: str, now: datetime | None = None) -> Slip:
    """The slip as printed now: on the last day it may be activated, it says "today"."""
    issuance, code, library, platform = session.execute(
        select(Issuance, Code, Library, Platform)
        .join(Code, Issuance.code_id == Code.id)
        .join(Library, Issuance.library_id == Library.id)
        .join(Platform, Issuance.platform_id == Platform.id)
        .where(Issuance.id == issuance_id)
    ).one()
    service_end = session.scalar(select(Consortium.service_end).limit(1))
    return slip_of(IssuedCode(issuance.id, code.value, issuance.window_start, issuance.window_end,
                              issuance.issued_at), library, platform, service_end, language, now)


@dataclass(frozen=True)
class IssuedCode:
    issuance_id: int
    code: str
    window_start: date
    window_end: date
    issued_at: datetime


def slip_of(issuance: IssuedCode, library, platform, service_end: date | None, language: str,
            now: datetime | None = None) -> Slip:
    """The slip of a code just handed out, from what the issue returned and the
    settings the caller holds: the kiosk's way, with no read after the issue."""
    # The code must be activated by its window's end, and never after the service.
    activate_by = min(issuance.window_end, service_end) if service_end else issuance.window_end
    issued = issuance.issued_at.astimezone(ZoneInfo(library.timezone))
    month = issuance.window_start
    days, devices = platform_promise(platform, "access_days"), platform_promise(platform, "devices")
    with force_locale(language):
        if days and service_end:
            access = gettext("Dostęp: %(days)s dni od aktywacji, najpóźniej do %(date)s.", days=days,
                             date=format_date(service_end))
        elif days:
            access = gettext("Dostęp: %(days)s dni od aktywacji.", days=days)
        elif service_end:
            access = gettext("Czas dostępu podaje platforma; najpóźniej do %(date)s.", date=format_date(service_end))
        else:
            access = gettext("Czas dostępu podaje platforma po aktywacji.")
        return Slip(
            language=language,
            header=library.slip_header or library.name,
            platform=platform.name,
            title=gettext("Twój kod %(platform)s na %(month)s", platform=platform.name,
                          month=f"{month_name(month.month)}\u00a0{month.year}"),  # one line
            code=issuance.code,
            activation_url=platform.activation_url,
            warning=(gettext("Aktywuj kod dziś, %(date)s — jutro kod wygasa i nowy trzeba odebrać "
                             "osobiście w bibliotece.", date=format_date(activate_by))
                     if local_day(now or utcnow(), library.timezone) == activate_by else
                     gettext("Aktywuj kod do %(date)s — po tym dniu kod wygasa i nowy trzeba "
                             "odebrać osobiście w bibliotece.", date=format_date(activate_by))),
            steps_title=gettext("Jak zacząć:"),
            steps=platform_steps(platform, language) or general_steps(platform),
            access_note=access,
            devices_note=gettext("Kod działa na dwóch urządzeniach.") if devices == 2 else "",
            help_note=gettext("Kod nie działa? Sprawdź, czy wpisujesz go do %(date)s; jeśli tak — "
                              "zapytaj w bibliotece.", date=format_date(activate_by)),
            issued_line=gettext("Wydano %(when)s · wydruk %(slip)s",
                                when=issued.strftime("%d.%m.%Y %H:%M"), slip=slip_id(issuance.issuance_id)),
            slip_id=slip_id(issuance.issuance_id),
        )

