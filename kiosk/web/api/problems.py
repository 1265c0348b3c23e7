"""Every error of the API as `application/problem+json` (RFC 9457): a stable `type`
per kind of problem, a URI reference resolved against the API's own address, whose
page says what it means; the title and the detail in the caller's language."""
from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Response, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from kiosk.domain.cards import CardRefusal
from kiosk.domain.eligibility import Ineligibility
from kiosk.domain.issuing import IssueResult, Outcome

PROBLEM_JSON = "application/problem+json"
TYPES_PATH = "/api/v1/problems/"
RETRY_BUSY_SECONDS = 5
RETRY_LIBRARY_SYSTEM_SECONDS = 30


@dataclass(frozen=True)
class ProblemType:
    name: str  # the last part of its URI: /api/v1/problems/<name>
    status: int
    title: object  # a lazy string: said in the caller's language
    about: object  # what it means and what the caller does next

    @property
    def uri(self) -> str:
        return TYPES_PATH + self.name


def _kind(name: str, status: int, title, about) -> ProblemType:
    return ProblemType(name, status, title, about)


_REFUSED = _l("Czytelnik nie dostał kodu; powiedz mu, dlaczego (pole detail) i co może zrobić.")
CARD_TYPES = {
    CardRefusal.EMPTY: _kind("card-empty", 409, _l("Nie podano numeru karty"), _REFUSED),
    CardRefusal.FORMAT: _kind("card-format", 409, _l("Numer karty nie tej biblioteki"), _REFUSED),
    CardRefusal.CHECK_DIGIT: _kind("card-check-digit", 409, _l("Zła cyfra kontrolna karty"), _REFUSED),
    CardRefusal.UNKNOWN: _kind("card-unknown", 409, _l("Karty nie ma w rejestrze czytelników"), _REFUSED),
    CardRefusal.EXPIRED: _kind("card-expired", 409, _l("Karta straciła ważność"), _REFUSED),
    CardRefusal.BLOCKED: _kind("card-blocked", 409, _l("Karta jest zablokowana"), _REFUSED),
    CardRefusal.WRONG_PIN: _kind("card-wrong-pin", 409, _l("Numer karty albo PIN się nie zgadza"), _REFUSED),
    # Nobody's fault and soon over: a 503 a client retries, never kept as an idempotent answer.
    CardRefusal.ILS_UNAVAILABLE: _kind(
        "library-system-unavailable", 503, _l("System biblioteki nie odpowiada"),
        _l("Karty nie dało się teraz sprawdzić w systemie bibliotecznym (SIP2). Spróbuj ponownie po czasie "
           "z nagłówka Retry-After; nic nie wydano.")),
}
ELIGIBILITY_TYPES = {
    Ineligibility.NOT_YET: _kind("not-yet", 409, _l("Kody na ten miesiąc jeszcze nie są wydawane"),
                                 _l("Pole next_release podaje chwilę, od której kody będą wydawane.")),
    Ineligibility.TOO_YOUNG: _kind("too-young", 409, _l("Czytelnik jest za młody według zasad biblioteki"), _REFUSED),
    Ineligibility.INACTIVE: _kind("inactive", 409, _l("Czytelnik nie wypożyczał ostatnio książek"), _REFUSED),
    Ineligibility.DEBT: _kind("debt", 409, _l("Czytelnik ma zadłużenie"), _REFUSED),
    Ineligibility.NOT_ACTIVATED: _kind("not-activated", 409, _l("Poprzedni kod nie został aktywowany"),
                                       _l("Pole eligible_from podaje dzień, od którego czytelnik znów dostanie kod.")),
    Ineligibility.RESERVED: _kind("reserved", 409, _l("Pozostałe kody są dla nowych czytelników"), _REFUSED),
    Ineligibility.ONLINE_RESERVED: _kind("online-reserved", 409,
                                         _l("Pozostałe kody są dla zamówień przez formularz online"), _REFUSED),
    Ineligibility.OTHER_PLATFORM: _kind("other-platform", 409, _l("Czytelnik ma już kod innej platformy"),
                                        _l("Pole other_platform podaje platformę, której kod czytelnik ma.")),
    Ineligibility.NO_DATA: _kind("no-data", 409, _l("Brak danych o czytelniku, których wymagają zasady"),
                                 _l("Pole missing podaje, czego brakuje; uzupełni to biblioteka.")),
}
NO_CODES_LEFT = _kind("no-codes-left", 409, _l("Kody na ten miesiąc się skończyły"),
                      _l("Pole next_pool_from podaje dzień następnej puli, jeśli jest już zaimportowana."))
NO_POOL = _kind("no-pool", 409, _l("Brak puli kodów ważnej dziś"),
                _l("Biblioteka nie ma dziś kodów tej platformy. Pole next_pool_from podaje dzień następnej puli."))
SERVICE_ENDED = _kind("service-ended", 409, _l("Usługa się zakończyła"),
                      _l("Po końcu usługi (pole service_end) kodów się nie wydaje ani nie pokazuje ponownie."))
UNAUTHORIZED = _kind("unauthorized", 401, _l("Brak ważnego klucza API"),
                     _l("Wyślij klucz w nagłówku Authorization: Bearer. Klucz zakłada administrator biblioteki; "
                        "unieważniony klucz nie działa."))
NOT_FOUND = _kind("not-found", 404, _l("Nie ma takiego zasobu"),
                  _l("Nie ma takiego adresu albo biblioteki, albo ten klucz nie może jej wskazać."))
METHOD_NOT_ALLOWED = _kind("method-not-allowed", 405, _l("Ta metoda nie działa pod tym adresem"),
                           _l("Nagłówek Allow podaje metody, które działają."))
MALFORMED = _kind("malformed-request", 400, _l("Nie da się odczytać zapytania"),
                  _l("Treść nie jest poprawnym JSON-em albo nagłówek (np. Idempotency-Key) ma złą postać."))
TOO_LARGE = _kind("too-large", 413, _l("Zapytanie jest za duże"), _l("Treść zapytania API ma najwyżej 16 KiB."))
INVALID = _kind("invalid-request", 422, _l("Zapytanie ma błędne pola"),
                _l("Pole errors podaje, które pola i dlaczego; nic nie zrobiono."))
IDEMPOTENCY_REUSED = _kind("idempotency-key-reused", 422, _l("Ten Idempotency-Key był użyty z innym zapytaniem"),
                           _l("Dla każdego nowego zapytania użyj nowego klucza; ten sam klucz tylko przy ponowieniu "
                              "tego samego zapytania (przez 24 godziny)."))
RATE_LIMITED = _kind("rate-limited", 429, _l("Za dużo zapytań w tej minucie"),
                     _l("Klucz ma limit zapytań na minutę; spróbuj ponownie po czasie z nagłówka Retry-After."))
BUSY = _kind("busy", 503, _l("System jest chwilowo zajęty"),
             _l("Nic nie zmieniono; spróbuj ponownie po czasie z nagłówka Retry-After."))
INTERNAL = _kind("internal-error", 500, _l("Błąd serwera"), _l("Nic nie zmieniono; błąd zapisano w logach serwera."))

ALL_TYPES = {kind.name: kind for kind in (
    *CARD_TYPES.values(), *ELIGIBILITY_TYPES.values(), NO_CODES_LEFT, NO_POOL, SERVICE_ENDED, UNAUTHORIZED,
    NOT_FOUND, METHOD_NOT_ALLOWED, MALFORMED, TOO_LARGE, INVALID, IDEMPOTENCY_REUSED, RATE_LIMITED, BUSY, INTERNAL)}
BY_STATUS = {401: UNAUTHORIZED, 404: NOT_FOUND, 405: METHOD_NOT_ALLOWED, 400: MALFORMED, 413: TOO_LARGE,
             422: INVALID, 429: RATE_LIMITED, 503: BUSY, 500: INTERNAL}


def problem(kind: ProblemType, detail: str | None = None, *, headers: dict | None = None, **extra) -> Response:
    body = {"type": kind.uri, "title": str(kind.title), "status": kind.status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return problem_response(kind.status, json.dumps(body, ensure_ascii=False), headers)


def problem_response(status: int, body: str, headers: dict | None = None) -> Response:
    return Response(body, status=status, mimetype=PROBLEM_JSON, headers=headers or {})


def issue_problem_type(result: IssueResult) -> ProblemType:
    """The type of a refused issue (every outcome but a code handed out)."""
    if result.outcome is Outcome.CARD_REFUSED:
        return CARD_TYPES[result.reason]
    if result.outcome is Outcome.NOT_ELIGIBLE:
        return ELIGIBILITY_TYPES[result.ineligible.reason]
    types = {Outcome.NO_CODES_LEFT: NO_CODES_LEFT, Outcome.NO_POOL: NO_POOL, Outcome.SERVICE_ENDED: SERVICE_ENDED}
    if result.outcome not in types:  # REPRINT_WITHHELD: the API always shows the reader's code
        raise RuntimeError(f"no problem type for {result.outcome}")
    return types[result.outcome]


def http_problem(error: HTTPException) -> Response:
    """A werkzeug error (raised by a view, webargs or routing) as a problem."""
    kind = BY_STATUS.get(error.code)
    data = getattr(error, "data", None) or {}
    headers = dict(error.get_headers(request.environ) if hasattr(error, "get_headers") else [])
    headers.pop("Content-Type", None)
    headers.update(data.get("headers") or {})
    extra = {}
    messages = data.get("messages")
    if messages:
        extra["errors"] = messages
    if kind is None:  # any other HTTP error: a plain one (RFC 9457's "about:blank")
        body = {"type": "about:blank", "title": error.name, "status": error.code}
        return problem_response(error.code, json.dumps(body), headers)
    detail = data.get("detail") or (str(kind.about) if kind is not INTERNAL else None)
    return problem(kind, detail, headers=headers, **extra)
