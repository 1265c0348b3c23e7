"""Secrets kept in the instance folder, outside the database: the reader-key pepper
and the session signing key. Created on first use with mode 0600."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

PEPPER_FILE = "reader-pepper.key"
SECRET_KEY_FILE = "secret-key.key"


def read_or_create(path: Path, nbytes: int = 32) -> str:
    """The secret in `path`; a new random one if the file does not exist yet.

    Written whole to a private temporary file, then linked into place: link fails
    if the file appeared meanwhile, so two processes starting at once agree on one
    secret and neither can read a half-written file."""
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(nbytes) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"secret file {path} is empty; restore it from the backup")
    return value


# -- a secret the app must send on (the SIP2 login password) -------------------------

def _fernet(secret: str, purpose: str = "sip2 password"):
    """A Fernet key of its own for each purpose, derived from one of the instance's secrets."""
    import base64

    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"kodomat {purpose}".encode()).derive(
        secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(pepper: str, text: str) -> str:
    """Encrypted with a key derived from the pepper, which lives in the instance
    folder and never changes (reader keys depend on it)."""
    return _fernet(pepper).encrypt(text.encode()).decode()


def unseal(pepper: str, sealed: str) -> str | None:
    """The text; None when the pepper is not the one that sealed it."""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(pepper).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


# -- a short-lived sealed note the browser carries (a kiosk screen's card) -----------

def seal_note(secret: str, purpose: str, note: dict) -> str:
    """The note encrypted and authenticated, with its moment: the browser carries it
    and cannot read it (a card number in a kiosk page's form is nobody's to read)."""
    import json

    return _fernet(secret, purpose).encrypt(json.dumps(note).encode()).decode()


def open_note(secret: str, purpose: str, sealed: str, max_age: int) -> dict | None:
    """The note, if it was sealed for this purpose at most max_age seconds ago."""
    import json

    from cryptography.fernet import InvalidToken

    try:
        return json.loads(_fernet(secret, purpose).decrypt(sealed.encode(), ttl=max_age))
    except (InvalidToken, ValueError, TypeError):
        return None
