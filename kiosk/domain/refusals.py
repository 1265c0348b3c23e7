"""A refusal: the domain says no with a reason code (an enum member) and the
details its sentence needs; kiosk.wording turns it into words for the audience.

Raised inside a unit of work, it rolls everything back."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    reason: enum.Enum
    details: dict = field(default_factory=dict)


class Refused(Exception):
    """One or more problems; `reason` and `details` are the first one's."""

    def __init__(self, reason: enum.Enum, **details):
        self.problems: tuple[Problem, ...] = (Problem(reason, details),)
        super().__init__(f"{reason.value} {details}")

    @classmethod
    def of(cls, problems: list[Problem]) -> Refused:
        refused = cls(problems[0].reason, **problems[0].details)
        refused.problems = tuple(problems)
        return refused

    @property
    def reason(self) -> enum.Enum:
        return self.problems[0].reason

    @property
    def details(self) -> dict:
        return self.problems[0].details
