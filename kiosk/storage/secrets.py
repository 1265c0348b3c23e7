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
