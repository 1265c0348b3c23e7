"""Names of the code's values as people read them: roles, channels, event kinds,
refusal reasons, reader facts, card checks, printers, a pool, and a card number a pattern
accepts."""
from __future__ import annotations

import re
from datetime import date
from re import _constants as sre_constants, _parser as sre_parse  # the standard library's own regex parser

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kiosk.domain.cards import CHECK_DIGITS, DEFAULT_CARD_PATTERN, check_format
from kiosk.domain.clock import format_date, month_window
from kiosk.domain.events import EventKind
from kiosk.storage.models import CardCheckKind, Channel, Role
from kiosk.wording.eligibility import FACT_NAMES
from kiosk.wording.slips import month_name

ROLE_NAMES = {
    Role.DESK: _l("obsługa stanowiska"),
    Role.LIBRARY_ADMIN: _l("administrator biblioteki"),
    Role.CONSORTIUM_ADMIN: _l("administrator konsorcjum"),
}
CHANNEL_NAMES = {
    Channel.KIOSK: _l("kiosk"),
    Channel.DESK: _l("stanowisko"),
    Channel.API: _l("API"),
    Channel.ONLINE: _l("formularz online"),
}
CARD_CHECK_NAMES = {
    CardCheckKind.FORMAT: _l("tylko format numeru"),
    CardCheckKind.REGISTRY: _l("rejestr kart z systemu bibliotecznego"),
    CardCheckKind.SIP2: _l("na żywo w systemie bibliotecznym (SIP2)"),
}
CHECK_DIGIT_NAMES = {
    "luhn": _l("Luhn (mod 10)"),
    "ean": _l("EAN (mod 10, wagi 1 i 3)"),
}
EVENT_NAMES = {
    EventKind.ISSUE: _l("wydanie kodu"),
    EventKind.REPRINT: _l("ponowny wydruk"),
    EventKind.REPRINT_WITHHELD: _l("kod nie pokazany ponownie"),
    EventKind.CARD_REFUSED: _l("karta odrzucona"),
    EventKind.NO_POOL: _l("brak puli"),
    EventKind.NO_CODES_LEFT: _l("brak wolnych kodów"),
    EventKind.SERVICE_ENDED: _l("usługa zakończona"),
    EventKind.NOT_ELIGIBLE: _l("odmowa według zasad"),
    EventKind.VOID: _l("kod wycofany"),
    EventKind.REPLACE: _l("kod zastępczy"),
    EventKind.PRINT_FAILED: _l("błąd drukarki"),
    EventKind.NO_ADDRESS: _l("brak adresu e-mail (formularz online)"),
    EventKind.IMPORT: _l("import kodów"),
    EventKind.IMPORT_CARDS: _l("import rejestru kart"),
    EventKind.IMPORT_ACTIVATIONS: _l("import aktywacji"),
    EventKind.LIBRARY_ADDED: _l("dodanie biblioteki"),
    EventKind.SETTINGS: _l("zmiana ustawień"),
    EventKind.RULES: _l("zmiana zasad wydawania"),
    EventKind.CLOSED_DAY_ADDED: _l("dzień zamknięcia dodany"),
    EventKind.CLOSED_DAY_REMOVED: _l("dzień zamknięcia usunięty"),
    EventKind.USER_CREATED: _l("nowe konto"),
    EventKind.USER_ROLE: _l("zmiana roli"),
    EventKind.USER_ENABLED: _l("konto włączone"),
    EventKind.USER_DISABLED: _l("konto wyłączone"),
    EventKind.PASSWORD_CHANGED: _l("zmiana hasła"),
    EventKind.LOGIN: _l("logowanie"),
    EventKind.LOGIN_FAILED: _l("nieudane logowanie"),
    EventKind.LOGIN_LOCKED: _l("blokada logowania"),
    EventKind.LOGOUT: _l("wylogowanie"),
    EventKind.KIOSK_ENROL_LINK: _l("link konfiguracyjny kiosku"),
    EventKind.KIOSK_ENROLLED: _l("kiosk uruchomiony"),
    EventKind.KIOSK_CHANGED: _l("zmiana kiosku"),
    EventKind.KIOSK_REVOKED: _l("kiosk wyłączony"),
    EventKind.KIOSK_PAUSED: _l("przerwa kiosku"),
    EventKind.MAIL_SENT_AGAIN: _l("e-mail z kodem wysłany ponownie"),
    EventKind.API_KEY_CREATED: _l("nowy klucz API"),
    EventKind.API_KEY_REVOKED: _l("klucz API unieważniony"),
    EventKind.READER_DATA: _l("wgląd w dane czytelnika"),
    EventKind.PURGE: _l("usunięcie starych danych czytelników"),
}

# Why a reader was not served (kiosk.domain.report_figures.REFUSALS): a card refused,
# a library rule, or no code to give.
REFUSAL_NAMES = {
    "empty": _l("karta: brak numeru"),
    "format": _l("karta: numer nie tej biblioteki"),
    "check_digit": _l("karta: zła cyfra kontrolna"),
    "unknown": _l("karta: spoza rejestru"),
    "expired": _l("karta: wygasła"),
    "blocked": _l("karta: zablokowana"),
    "wrong_pin": _l("karta: zły PIN"),
    "ils_unavailable": _l("system biblioteki nie odpowiedział"),
    "not_yet": _l("zasady: jeszcze nie wydajemy"),
    "too_young": _l("zasady: za młody czytelnik"),
    "inactive": _l("zasady: brak wypożyczeń"),
    "debt": _l("zasady: zadłużenie"),
    "not_activated": _l("zasady: poprzedni kod nieaktywowany"),
    "reserved": _l("zasady: rezerwa dla nowych czytelników"),
    "other_platform": _l("zasady: ma już kod innej platformy"),
    "no_data": _l("zasady: brak danych o czytelniku"),
    EventKind.NO_CODES_LEFT: _l("brak wolnych kodów"),
    EventKind.NO_POOL: _l("brak puli"),
    EventKind.SERVICE_ENDED: _l("usługa zakończona"),
    EventKind.REPRINT_WITHHELD: _l("kod nie pokazany ponownie"),
    EventKind.CARD_REFUSED: _l("karta odrzucona"),
    EventKind.NOT_ELIGIBLE: _l("odmowa według zasad"),
}


def pool_label(platform: str, valid_from: date, valid_until: date) -> str:
    """"Legimi · listopad 2026" for a calendar month's pool, else the platform and its dates."""
    if (valid_from, valid_until) == month_window(valid_from.year, valid_from.month):
        return f"{platform} · {month_name(valid_from.month)} {valid_from.year}"
    return f"{platform} · {format_date(valid_from)}–{format_date(valid_until)}"


def channel_name(channel: str) -> str:
    return str(CHANNEL_NAMES.get(channel, channel))


def role_name(role: str) -> str:
    return str(ROLE_NAMES.get(role, role))


def event_name(kind: str) -> str:
    return str(EVENT_NAMES.get(kind, kind))


def refusal_name(reason: str) -> str:
    return str(REFUSAL_NAMES.get(reason, reason))
def facts_in_words(facts: str | tuple[str, ...] | None) -> str:
    """Reader facts, as a tuple or as Library.register_facts keeps them ("birth_date,debt")."""
    names = facts.split(",") if isinstance(facts, str) else facts or ()
    # FACT_NAMES is keyed by kiosk.domain.eligibility.Fact, a StrEnum: its text finds it.
    return ", ".join(str(FACT_NAMES.get(fact, fact)) for fact in names if fact)


def card_check_name(kind: str) -> str:
    return str(CARD_CHECK_NAMES.get(kind, kind))


def check_digit_name(name: str | None) -> str:
    return str(CHECK_DIGIT_NAMES.get(name, name)) if name else _("brak")


def printer_name(printer: str | None) -> str:
    """A printer setting ("browser", "escpos-tcp:HOST[:PORT]", "cups:QUEUE", …) in words."""
    kind, _colon, where = (printer or "").partition(":")
    if kind == "browser" or not printer:
        return _("drukarka przeglądarki")
    if kind == "none":
        return _("bez drukarki")
    if kind == "escpos-tcp":
        return _("drukarka paragonów w sieci %(address)s", address=where)
    if kind == "escpos-usb":
        return _("drukarka paragonów USB %(device)s", device=where)
    if kind == "escpos-file":
        return _("drukarka paragonów (urządzenie %(path)s)", path=where)
    if kind == "cups":
        return _("CUPS: kolejka %(queue)s", queue=where)
    return printer


# -- a card number a pattern accepts ------------------------------------------------

# Tried in turn for each character: letters and digits mixed ("AB12CD34"), digits
# alone ("1234567890"), then letters.
_PREFERRED = ("AB12CD34EF56GH78", "1234567890", "ABCDEFGHJKLMNPRSTUVWXYZ", "abcdefghjkmnprstuvwxyz")
_EXAMPLE_LENGTH = 8  # for an open repetition such as {4,32} or +
_LONGEST_EXAMPLE = 64  # longer than any card: no example
_PRINTABLE = [chr(n) for n in range(0x21, 0x7F)]


def pattern_example(pattern: str | None, check_digit: str | None = None) -> str | None:
    """A card number the pattern (and check digit) accepts, as an example for people;
    None when none could be made."""
    pattern = pattern or DEFAULT_CARD_PATTERN
    try:
        parsed = sre_parse.parse(pattern)
        text = "".join(_Builder().build(parsed))
    except (re.error, _NoExample, RecursionError, TypeError, ValueError, KeyError):
        return None
    candidates = [text]
    if check_digit in CHECK_DIGITS and text and text[-1].isdigit():
        candidates += [text[:-1] + digit for digit in "0123456789"]
    for candidate in candidates:
        if check_format(candidate, pattern, check_digit) is None:
            return candidate
    return None


class _NoExample(Exception):
    pass


class _Builder:
    def __init__(self):
        self.position = 0

    def build(self, items) -> list[str]:
        out: list[str] = []
        for op, arg in items:
            out += self._one(op, arg)
            if len(out) > _LONGEST_EXAMPLE:
                raise _NoExample()
        return out

    def _char(self, accepts) -> str:
        # The first sequence the class takes whole, so \d gives 1234… and [A-Z0-9] AB12…
        whole = next((sequence for sequence in _PREFERRED if all(accepts(ch) for ch in sequence)), None)
        if whole is not None:
            ch = whole[self.position % len(whole)]
        else:
            ch = next((c for sequence in _PREFERRED for c in sequence if accepts(c)), None) \
                or next((c for c in _PRINTABLE if accepts(c)), None)
        if ch is None:
            raise _NoExample()
        self.position += 1
        return ch

    def _one(self, op, arg) -> list[str]:
        c = sre_constants
        if op is c.LITERAL:
            self.position += 1
            return [chr(arg)]
        if op is c.ANY:
            return [self._char(lambda ch: True)]
        if op is c.IN:
            return [self._char(lambda ch: _in_set(ch, arg))]
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, item = arg
            count = max(low, min(_EXAMPLE_LENGTH if high > 1 else high, high))
            if count > _LONGEST_EXAMPLE:
                raise _NoExample()
            if len(item) == 1 and item[0][0] in (c.LITERAL, c.IN, c.ANY) or count <= 1:
                out = []
                for _n in range(count):
                    out += self.build(item)
                return out
            return [s for _n in range(max(low, 1) if high else 0) for s in self.build(item)]
        if op is c.SUBPATTERN:
            return self.build(arg[-1])
        if op is c.BRANCH:
            return self.build(arg[1][0])
        if op is c.AT:
            return []
        raise _NoExample()


def _in_set(ch: str, items) -> bool:
    c = sre_constants
    code, negate = ord(ch), False
    found = False
    for op, arg in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            found |= code == arg
        elif op is c.RANGE:
            found |= arg[0] <= code <= arg[1]
        elif op is c.CATEGORY:
            found |= _category(ch, arg)
    return found != negate


def _category(ch: str, category) -> bool:
    c = sre_constants
    return {
        c.CATEGORY_DIGIT: ch.isdigit(), c.CATEGORY_NOT_DIGIT: not ch.isdigit(),
        c.CATEGORY_WORD: ch.isalnum() or ch == "_", c.CATEGORY_NOT_WORD: not (ch.isalnum() or ch == "_"),
        c.CATEGORY_SPACE: ch.isspace(), c.CATEGORY_NOT_SPACE: not ch.isspace(),
    }.get(category, False)
