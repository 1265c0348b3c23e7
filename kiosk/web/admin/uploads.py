"""Where an uploaded pool file waits between its preview and the admin's
confirmation: a file in the instance folder named by its library and SHA-256,
and a signed token that names it. Abandoned previews are removed after an hour,
so code lists do not stay on disk."""
from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from kiosk.domain.clock import utcnow

UPLOAD_MAX_AGE = 3600


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="pool-upload")


def _folder() -> Path:
    folder = Path(current_app.instance_path) / "uploads"
    folder.mkdir(exist_ok=True)
    cutoff = utcnow().timestamp() - UPLOAD_MAX_AGE
    for stale in folder.glob("*.upload"):
        if stale.stat().st_mtime < cutoff:
            stale.unlink(missing_ok=True)
    return folder


def _path(library_id: int, sha256: str) -> Path:
    return _folder() / f"{library_id}-{sha256}.upload"


def keep(library_id: int, data: bytes, filename: str, window: tuple[date, date] | None, platform: str) -> str:
    """Keeps the file; the token for its confirmation form (the platform's slug
    is signed with it, so the confirmation imports for the platform previewed)."""
    sha256 = hashlib.sha256(data).hexdigest()
    _path(library_id, sha256).write_bytes(data)
    return _signer().dumps({"sha": sha256, "name": filename, "library": library_id, "platform": platform,
                            "window": [d.isoformat() for d in window] if window else None})


class Upload:
    """A kept file named by a valid token."""

    def __init__(self, token: str, library_id: int):
        try:
            data = _signer().loads(token, max_age=UPLOAD_MAX_AGE)
        except BadSignature:
            raise LookupError("expired or forged") from None
        if data["library"] != library_id:
            raise PermissionError("another library's upload")
        self.sha256: str = data["sha"]
        self.filename: str = data["name"]
        self.platform: str = data.get("platform", "legimi")  # a token made before platforms were chosen
        self.window = tuple(date.fromisoformat(d) for d in data["window"]) if data["window"] else None
        self.path = _path(library_id, self.sha256)

    def read(self) -> bytes | None:
        """The file's bytes; None once it was used (or removed as stale)."""
        if not self.path.exists():
            return None
        data = self.path.read_bytes()
        return data if hashlib.sha256(data).hexdigest() == self.sha256 else None

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
