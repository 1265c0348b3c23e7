"""What a server process runs beside its requests: the outbox's sender
(kiosk.mail.background) and the maintenance thread, which purges readers' old
traces (kiosk.domain.retention) with the consortium's setting once a day.

Every process may start them (`kiosk serve`, each gunicorn worker through its
post_worker_init hook, several servers on one database): the purge is guarded in
the database (a `purge` event of today's date, read under a lock in the purge's
own transaction), so one of them purges each day and the others find it done."""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("kiosk.maintenance")
MAINTENANCE_INTERVAL = 3600.0  # seconds between looks; the database says whether today's purge is done


class MaintenanceThread(threading.Thread):
    """Tries the day's purge every `interval` seconds in the app's context; an
    error is logged and the next round tries again. stop() ends it after the round
    under way."""

    def __init__(self, app, interval: float = MAINTENANCE_INTERVAL):
        super().__init__(name="kodomat-maintenance", daemon=True)
        self.app, self.interval = app, interval
        self._stopping = threading.Event()
        self.rounds = 0  # finished rounds, for tests and logs

    def run(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
            self.rounds += 1
            self._stopping.wait(self.interval)

    def run_once(self) -> None:
        from kiosk.app.extensions import db
        from kiosk.domain.clock import utcnow
        from kiosk.domain.retention import kept_months, run_purge

        with self.app.app_context():
            try:
                done = run_purge(db.session, months=kept_months(db.session), now=utcnow(), once_a_day=True)
                if done is not None:
                    log.info("purged readers' traces before %s: %s", done.cut_off.isoformat(), done.counts())
            except Exception:  # noqa: BLE001 - the thread must outlive a bad round
                log.exception("the daily purge failed; trying again in %s s", self.interval)
            finally:
                db.session.remove()

    def stop(self, timeout: float = 30) -> None:
        self._stopping.set()
        self.join(timeout)


def start_background(app) -> list[threading.Thread]:
    """The mail thread (when mail is configured) and the maintenance thread, started;
    each has stop(). MAINTENANCE_INTERVAL in the app's config sets the seconds
    between the maintenance thread's looks."""
    from kiosk.mail.background import start_mail_thread

    threads: list[threading.Thread] = []
    mail = start_mail_thread(app)  # without MAIL_SERVER: one warning, and the messages wait in the outbox
    if mail is not None:
        threads.append(mail)
    maintenance = MaintenanceThread(app, float(app.config.get("MAINTENANCE_INTERVAL", MAINTENANCE_INTERVAL)))
    maintenance.start()
    threads.append(maintenance)
    return threads
