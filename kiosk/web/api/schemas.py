"""The API's bodies as marshmallow schemas: the requests are read with them, the
answers are described by them (the views write the answers themselves, so the
schemathesis tests check the document against what is really sent)."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from kiosk.domain.cards import CardRefusal
from kiosk.domain.eligibility import Fact, Ineligibility
from kiosk.domain.library_system import MAX_PIN

MAX_CARD = 64
MAX_PLATFORM = 40


# No control character (the document says so as a pattern), and nothing that is not
# text (a lone surrogate from a JSON escape, which no pattern can name): such a value
# is no card, PIN or platform, and never reaches the database, a hash or SIP2.
NO_CONTROLS = r"^[^\u0000-\u001f\u007f-\u009f]*$"


def _text(value: str) -> None:
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ma.ValidationError("Not text.")


def _checked(low: int, high: int) -> list:
    return [validate.Length(low, high), validate.Regexp(NO_CONTROLS, error="No control characters."), _text]


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE  # a misspelt field is an error, never silently ignored


class IssueRequest(Strict):
    card = fields.String(required=True, validate=_checked(1, MAX_CARD),
                         metadata={"description": "The reader's library card number, as scanned or typed.",
                                   "example": "1234567890"})
    platform = fields.String(load_default="legimi", validate=_checked(1, MAX_PLATFORM),
                             metadata={"description": "The platform whose code the reader wants.", "example": "legimi"})
    pin = fields.String(load_default=None, allow_none=True, validate=_checked(1, MAX_PIN),
                        metadata={"description": "The reader's PIN, checked by the library system over SIP2 "
                                                 "(only where the library checks cards so)."})


class LookupRequest(Strict):
    card = fields.String(required=True, validate=_checked(1, MAX_CARD),
                         metadata={"description": "The reader's library card number.", "example": "1234567890"})



def _nullable_date(description: str) -> fields.Date:
    return fields.Date(allow_none=True, metadata={"description": description})


class Open(ma.Schema):
    """An answer: a client must take fields added later in its stride."""

    class Meta:
        unknown = ma.INCLUDE


class IssueFields(Open):
    """What `kiosk issue --json` says of an issue, for a code and for a refusal."""

    outcome = fields.String(required=True, validate=validate.OneOf(
        ["issued", "reprint", "card_refused", "not_eligible", "no_codes_left", "no_pool"]),
        metadata={"description": "What happened; the same as `status` of `kiosk issue --json` (after the service "
                                 "end: no_pool with the reason service_ended)."})
    code = fields.String(allow_none=True, metadata={"description": "The code; null when none was given."})
    valid_from = _nullable_date("The first day of the code's window.")
    valid_until = _nullable_date("The activation deadline: the code expires after this day.")
    reason = fields.String(allow_none=True, validate=validate.OneOf(
        [*CardRefusal, *Ineligibility, "service_ended"]),
        metadata={"description": "Why not: a card refusal, a rule of the library, or service_ended."})
    issued_at = fields.DateTime(allow_none=True, metadata={"description": "When the code was first given."})
    print_count = fields.Integer(required=True, metadata={"description": "How many times the code was given "
                                                                         "out (1 for a new code)."})
    next_pool_from = _nullable_date("The day the next pool is handed out from, when one is imported.")
    service_end = _nullable_date("The consortium's service end, if set.")
    platform = fields.String(allow_none=True, metadata={"description": "The platform's slug."})
    next_release = fields.DateTime(allow_none=True, metadata={"description": "not_yet: when codes are released."})
    eligible_from = _nullable_date("not_activated, reserved, other_platform: from when the reader may have one.")
    other_platform = fields.String(allow_none=True, metadata={"description": "other_platform: the platform the "
                                                                             "reader holds a code of."})
    missing = fields.String(allow_none=True, validate=validate.OneOf([*Fact]),
                            metadata={"description": "no_data: the fact about the reader the rules need."})


class IssueAnswer(IssueFields):
    status = fields.String(required=True, validate=validate.OneOf(["issued", "reprint"]),
                           metadata={"description": "issued (201) or reprint (200), as `kiosk issue --json`."})
    message = fields.String(required=True, metadata={"description": "One line for staff, in the language of "
                                                                    "Accept-Language (pl, en, uk)."})


class Problem(Open):
    """RFC 9457 problem details."""

    type = fields.String(required=True, metadata={"format": "uri-reference", "description": (
        "The problem's kind: /api/v1/problems/<name> (a page that explains it), or about:blank.")})
    title = fields.String(required=True)
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    detail = fields.String(metadata={"description": "This occurrence, in words for a person."})
    errors = fields.Dict(metadata={"description": "invalid-request: the fields at fault and why."})


class IssueProblem(Problem, IssueFields):
    """A refused issue: the problem, and the fields of `kiosk issue --json`."""


class CodeRow(Open):
    code = fields.String(required=True)
    platform = fields.String(required=True, metadata={"description": "The platform's slug."})
    valid_from = fields.Date(required=True)
    valid_until = fields.Date(required=True, metadata={"description": "The activation deadline."})
    issued_at = fields.DateTime(required=True)
    print_count = fields.Integer(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(["kiosk", "desk", "api", "online"]))
    state = fields.String(required=True, validate=validate.OneOf(["valid", "withdrawn", "expired"]), metadata={
        "description": "valid: may be activated (by valid_until); withdrawn by staff; expired: its month or the "
                       "service is over."})


class LookupAnswer(Open):
    codes = fields.List(fields.Nested(CodeRow), required=True, metadata={
        "description": "Every code the reader got in this library, the newest window first."})


class OpenWindow(Open):
    valid_from = fields.Date(required=True)
    valid_until = fields.Date(required=True)
    released_at = fields.DateTime(required=True, metadata={"description": "When its codes began to be handed out."})
    codes_left = fields.Integer(required=True)


class NextRelease(Open):
    at = fields.DateTime(required=True, metadata={"description": "When the next window's codes are released, by "
                                                                 "the library's rules (a working day, an hour)."})
    valid_from = fields.Date(required=True, metadata={"description": "The first day of that window."})


class PlatformState(Open):
    platform = fields.String(required=True)
    name = fields.String(required=True)
    open = fields.Nested(OpenWindow, allow_none=True, required=True,
                         metadata={"description": "The window codes are handed out from now, if any."})
    next_release = fields.Nested(NextRelease, allow_none=True, required=True)


class PoolRow(Open):
    pool_id = fields.Integer(required=True)
    platform = fields.String(required=True)
    valid_from = fields.Date(required=True)
    valid_until = fields.Date(required=True)
    total = fields.Integer(required=True)
    issued = fields.Integer(required=True)
    void = fields.Integer(required=True)
    left = fields.Integer(required=True, metadata={"description": "Free codes (0 once the window is over)."})
    expired = fields.Integer(required=True, metadata={"description": "Codes never handed out of a past window."})
    imported_at = fields.DateTime(required=True)


class PoolsAnswer(Open):
    library = fields.String(required=True)
    service_end = fields.Date(allow_none=True, required=True)
    platforms = fields.List(fields.Nested(PlatformState), required=True)
    pools = fields.List(fields.Nested(PoolRow), required=True)


class LibraryRow(Open):
    slug = fields.String(required=True)
    name = fields.String(required=True)


class LibrariesAnswer(Open):
    libraries = fields.List(fields.Nested(LibraryRow), required=True)
