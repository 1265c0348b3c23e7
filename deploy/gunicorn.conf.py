"""gunicorn for a consortium server: `gunicorn --config deploy/gunicorn.conf.py`,
run from the project's folder (kodomat.service's WorkingDirectory), behind nginx
(deploy/nginx/kodomat.conf). tests/test_deploy_stack.py starts it with this file.

Sized for 2 cores: 2 processes × 8 threads (what bench/rush.py measured the release
minute with). A request mostly waits on PostgreSQL or on the library system (SIP2),
so threads, not more processes, take the queue; a second process keeps the kiosks
served while the other is busy hashing a password or building a report.
"""
import os

wsgi_app = "wsgi:app"
bind = "127.0.0.1:8000"  # nginx alone talks to it
worker_class = "gthread"
workers = int(os.environ.get("KODOMAT_WORKERS", 2))
threads = int(os.environ.get("KODOMAT_THREADS", 8))
# Each process loads the app itself (no preload): the database connection pool and
# the background threads (kiosk.app.background) must be a process's own, never
# shared across fork.
preload_app = False

# A request that takes 60 s is stuck (a report of a big consortium takes a few).
timeout = 60
graceful_timeout = 30  # a restart lets requests under way finish
keepalive = 5  # nginx opens a connection per request (no upstream keepalive); short is enough

# nginx on the same machine is the only proxy: gunicorn believes its
# X-Forwarded-Proto, and the app (TRUST_PROXY in config.py) its X-Forwarded-For.
forwarded_allow_ips = "127.0.0.1"

# Logs go to standard error, that is to the journal (journalctl -u kodomat), as
# one JSON object a line (kiosk.app.logs): gunicorn's own lines too. No gunicorn
# access log: the app writes one line per request with nginx's request id, the
# client's address, the path without its query string, the status, the time taken
# and the worker's pid.
accesslog = None
errorlog = "-"
loglevel = "info"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "kiosk.app.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                             "stream": "ext://sys.stderr"}},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False}},
}


def post_worker_init(worker):
    """Once a worker has the app: start its background work (the e-mail sender and
    the daily retention purge), then say it is ready."""
    from kiosk.app.background import start_background

    start_background(worker.wsgi)
    worker.log.info("Kodomat ready in worker %s", worker.pid)
