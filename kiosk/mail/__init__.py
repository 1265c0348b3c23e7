"""E-mail: the reader's code and slip, from the outbox (kiosk.domain.outbox) to an
SMTP server. settings reads the MAIL_* settings of <instance>/config.py (Flask-Mail's
names), compose makes the message, smtp talks to the server, sender sends what is
due, background is `kiosk serve`'s thread. wake() asks that thread to look now: a
view calls it after the commit that wrote a message (a no-op where no thread runs,
e.g. under gunicorn, where cron runs `kiosk send-mail`)."""
from __future__ import annotations

from kiosk.mail.background import wake  # noqa: F401 (the one name callers need)
