"""A real SMTP server on 127.0.0.1 for the e-mail tests (aiosmtpd in a thread of its
own): it keeps every message it accepts, and can refuse chosen recipients, answer
DATA slowly, or ask for a login."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


class SmtpPeer:
    """Start with start(); received holds the messages as the server accepted them.
    refuse maps a recipient to the server's answer to RCPT TO (e.g. "550 5.1.1 No
    such user"); delay is seconds per message before answering DATA; login is the
    (user, password) the server asks for."""

    def __init__(self, port: int | None = None, *, refuse: dict[str, str] | None = None, delay: float = 0,
                 login: tuple[str, str] | None = None):
        self.port = port or free_port()
        self.refuse = dict(refuse or {})
        self.delay = delay
        self.login = login
        self.received: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self.controller: Controller | None = None

    # aiosmtpd's handler hooks
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.received.append(message_from_bytes(envelope.original_content or envelope.content,
                                                    policy=policy.default))
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Accepted"

    def _authenticate(self, server, session, envelope, mechanism, data):
        fits = (isinstance(data, LoginPassword) and self.login is not None
                and (data.login.decode(), data.password.decode()) == self.login)
        return AuthResult(success=fits, handled=False)  # handled=False: aiosmtpd answers 535 itself

    def start(self) -> "SmtpPeer":
        options = {}
        if self.login:
            options = dict(authenticator=self._authenticate, auth_require_tls=False, auth_required=True)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int, seconds: float = 15) -> list[EmailMessage]:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)

    def message_ids(self) -> list[str]:
        return [str(message["Message-ID"]) for message in self.received]
