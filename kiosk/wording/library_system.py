"""The library system (SIP2) in words: its settings' refusals, the admin's card
check, and the names of what a library system may say about a card."""
from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kiosk.domain.clock import format_date
from kiosk.domain.library_system import CardCheckReport
from kiosk.domain.sip2_settings import ENCODINGS, OnFailure, Sip2Problem

FIELD_NAMES = {
    "institution": _l("Identyfikator instytucji"),
    "location": _l("Lokalizacja terminala"),
    "login_user": _l("Użytkownik SIP2"),
    "password": _l("Hasło użytkownika SIP2"),
}

SIP2_SENTENCES = {
    Sip2Problem.HOST: lambda d: _("Podaj adres serwera SIP2 (nazwę albo adres IP, bez „http://”)."),
    Sip2Problem.PORT: lambda d: _("Port musi być liczbą od %(low)s do %(high)s.", low=d.get("low", 1),
                                  high=d.get("high", 65535)),
    Sip2Problem.CA_FILE: lambda d: _("Nie ma pliku certyfikatu CA „%(value)s” na serwerze Kodomatu.",
                                     value=d.get("value", "")),
    Sip2Problem.LOGIN: lambda d: _("Użytkownik SIP2: najwyżej %(limit)s znaków, bez znaku „|”.",
                                   limit=d.get("limit", 100)),
    Sip2Problem.PASSWORD: lambda d: _("Podaj hasło użytkownika SIP2 (najwyżej %(limit)s znaków, bez znaku „|”).",
                                      limit=d.get("limit", 100)),
    Sip2Problem.PASSWORD_AGAIN: lambda d: _(
        "Serwer, użytkownik albo kodowanie SIP2 się zmieniły: podaj hasło ponownie (zapisane hasło wysyłamy "
        "tylko na serwer i do użytkownika, dla których je ustawiono)."),
    Sip2Problem.ENCODED: lambda d: _("„%(field)s” ma znaki, których kodowanie %(encoding)s nie zapisze "
                                     "(np. polskie litery w cp850). Wybierz kodowanie serwera albo zmień tekst.",
                                     field=str(FIELD_NAMES.get(d.get("field"), d.get("field", ""))),
                                     encoding=d.get("encoding", "")),
    Sip2Problem.INSTITUTION: lambda d: _("Identyfikator instytucji: najwyżej %(limit)s znaków, bez znaku „|”.",
                                         limit=d.get("limit", 100)),
    Sip2Problem.LOCATION: lambda d: _("Lokalizacja terminala: najwyżej %(limit)s znaków, bez znaku „|”.",
                                      limit=d.get("limit", 100)),
    Sip2Problem.ENCODING: lambda d: _("Nieznane kodowanie „%(value)s”. Możliwe: %(choices)s.",
                                      value=d.get("value", ""), choices=", ".join(ENCODINGS)),
    Sip2Problem.TIMEOUT: lambda d: _("Czas oczekiwania musi wynosić od %(low)s do %(high)s sekund.",
                                     low=f"{d.get('low', 0.5):g}".replace(".", ","),
                                     high=f"{d.get('high', 30):g}".replace(".", ",")),
    Sip2Problem.ON_FAILURE: lambda d: _("Nieznane zachowanie, gdy system nie odpowiada."),
    Sip2Problem.NOT_SET_UP: lambda d: _(
        "Najpierw ustaw połączenie SIP2 (formularz „System biblioteki (SIP2)” poniżej albo kiosk sip2)."),
}

# The patron status flags that block (kiosk.domain.library_system.BLOCKING_FLAGS), for the admin.
FLAG_NAMES = {
    "charge privileges denied": _l("zakaz wypożyczeń"),
    "card reported lost": _l("karta zgłoszona jako zgubiona"),
    "too many items lost": _l("za dużo zgubionych egzemplarzy"),
    "excessive outstanding fines": _l("za wysokie kary"),
    "excessive outstanding fees": _l("za wysokie opłaty"),
    "too many items billed": _l("za dużo egzemplarzy z rachunkiem do zapłaty"),
}

ON_FAILURE_NAMES = {
    OnFailure.REFUSE: _l("odmówić i odesłać do wypożyczalni"),
    OnFailure.REGISTRY: _l("sprawdzić kartę w zaimportowanym rejestrze kart"),
}

# What a library system's error kind (kiosk.sip2.Sip2Unavailable.kind) means to an admin.
FAILURE_NAMES = {
    "connect": _l("serwer nie przyjmuje połączeń (adres, port, zapora?)"),
    "tls": _l("nie udało się nawiązać połączenia TLS (certyfikat?)"),
    "timeout": _l("serwer nie odpowiedział na czas"),
    "closed": _l("serwer zamknął połączenie w trakcie odpowiedzi"),
    "checksum": _l("odpowiedź miała błędną sumę kontrolną"),
    "garbage": _l("odpowiedź nie była komunikatem SIP2"),
    "login_refused": _l("serwer odrzucił logowanie (użytkownik, hasło?)"),
    "offline": _l("serwer zgłasza, że system biblioteki jest niedostępny"),
}


def _yes_no(value) -> str:
    return "—" if value is None else (_("tak") if value else _("nie"))


def card_check_facts(report: CardCheckReport) -> list[tuple[str, str]]:
    """The facts an answer gave, as label and value, for the panel and the CLI."""
    facts = report.facts
    rows = []
    if "error" in facts or facts.get("library_system"):
        kind = facts.get("error") or facts.get("library_system")
        rows.append((_("System biblioteki"), str(FAILURE_NAMES.get(kind, kind))))
    if "valid" in facts:
        rows.append((_("Karta ważna w systemie"), _yes_no(facts["valid"])))
    if facts.get("pin") is not None:
        rows.append((_("PIN poprawny"), _yes_no(facts["pin"])))
    if "blocked" in facts:
        blocked = _yes_no(facts["blocked"])
        if facts.get("flags"):
            blocked += f" ({', '.join(str(FLAG_NAMES.get(flag, flag)) for flag in facts['flags'])})"
        rows.append((_("Zablokowana"), blocked))
    for key, label in (("expiry", _("Ważna do")), ("birth_date", _("Data urodzenia"))):
        if key in facts:
            rows.append((label, _day(facts[key])))
    if "debt" in facts:
        rows.append((_("Zadłużenie"), _("%(amount)s zł", amount=facts["debt"].replace(".", ",")) if facts["debt"]
                     else "—"))
    return rows


def _day(iso: str | None) -> str:
    return format_date(date.fromisoformat(iso)) if iso else "—"


def describe_card_check(report: CardCheckReport) -> str:
    from kiosk.wording.messages import CARD_REFUSALS

    verdict = (_("Karta przyjęta.") if report.accepted
               else _("Karta odrzucona: %(reason)s", reason=CARD_REFUSALS[report.reason]))
    lines = [verdict, _("Sprawdzenie trwało %(ms)s ms.", ms=f"{report.ms:.0f}")]
    lines += [f"{label}: {value}" for label, value in card_check_facts(report)]
    return "\n".join(lines)
