"""The kiosk app as bench/floor.py serves it behind gunicorn, plus the floor it is
measured against: a no-op route on the same server, the same middleware.

    gunicorn -k gthread -w 2 --threads 8 --pythonpath bench floor_wsgi:app
with KIOSK_INSTANCE (a folder with config.py) and DATABASE_URL set, as a
deployment sets them. Nothing here is part of the app."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsgi import app  # noqa: E402  (the deployment's own app)


@app.get("/bench/noop")
def bench_noop() -> str:
    return ""
