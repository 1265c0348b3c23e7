"""`kiosk serve`'s sender: a thread that sends what is due every few seconds, and
at once when woken (kiosk.domain.outbox.notify_sender, alias wake, called after the
commit that wrote a message)."""
from __future__ import annotations

import logging
import threading

from kiosk.domain.outbox import MESSAGES_WAITING as _woken, notify_sender

log = logging.getLogger("kiosk.mail")
INTERVAL = 5.0  # seconds between looks when nobody wakes it
wake = notify_sender  # ask the thread of this process, if any, to look at the outbox now


class MailThread(threading.Thread):
    """Sends in the app's context; an error in one round is logged and the next
    round comes as usual. stop() ends it after the round under way."""

    def __init__(self, app, settings, interval: float = INTERVAL):
        super().__init__(name="kodomat-mail", daemon=True)
        self.app, self.settings, self.interval = app, settings, interval
        self._stopping = threading.Event()

    def run(self) -> None:
        from kiosk.app.extensions import db
        from kiosk.mail.sender import send_due

        while not self._stopping.is_set():
            _woken.clear()
            with self.app.app_context():
                try:
                    done = send_due(db.session, self.settings)
                    if done.sent:
                        log.info("sent %s e-mail(s)", done.sent)
                except Exception:  # noqa: BLE001 - the thread must outlive a bad round
                    log.exception("sending e-mail failed; trying again in %s s", self.interval)
                finally:
                    db.session.remove()
            _woken.wait(self.interval)

    def stop(self, timeout: float = 30) -> None:
        self._stopping.set()
        _woken.set()
        self.join(timeout)


def start_mail_thread(app, interval: float = INTERVAL) -> MailThread | None:
    """The thread, started; None (and one warning) when mail is not configured:
    the messages wait in the outbox until it is."""
    from kiosk.mail.settings import MailNotConfigured, mail_settings

    try:
        settings = mail_settings(app.config)
    except MailNotConfigured as off:
        log.warning("%s", off)
        return None
    thread = MailThread(app, settings, interval)
    thread.start()
    return thread
