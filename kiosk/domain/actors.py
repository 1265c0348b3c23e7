"""Who does something: a kiosk, a staff member, someone at the command line, the
system itself, or an unauthenticated sign-in attempt. One constructor per kind,
so the labels in the log and on issuances are always written the same way."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    label: str  # what the log and the issuance record: "kiosk:3", "staff:anna"
    kiosk_id: int | None = None
    staff_user_id: int | None = None

    @classmethod
    def kiosk(cls, kiosk_id: int) -> Actor:
        return cls(f"kiosk:{kiosk_id}", kiosk_id=kiosk_id)

    @classmethod
    def staff(cls, user_id: int, username: str) -> Actor:
        return cls(f"staff:{username}", staff_user_id=user_id)

    @classmethod
    def cli(cls, os_user: str | None) -> Actor:
        return cls(f"cli:{os_user}" if os_user else "cli")

    @classmethod
    def api_key(cls, key_id: int, name: str) -> Actor:
        """A library system calling the API with one of its keys."""
        return cls(f"api:{name}#{key_id}"[:120])

    @classmethod
    def online(cls) -> Actor:
        """A reader on the library's online request form."""
        return cls("online")

    @classmethod
    def sign_in(cls, username: str) -> Actor:
        """Someone typing this user name at the login form, not yet signed in."""
        return cls(f"login:{username}")

    @classmethod
    def system(cls, name: str) -> Actor:
        """Kodomat itself or a script: "demo", "test", "bench"."""
        return cls(name)
