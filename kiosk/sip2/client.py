"""Asking a library system about a card over SIP2: sockets, TLS, the login and status
greeting, and one open connection per thread and library system, reused between
questions the way self-check machines keep theirs.

Nothing here logs or raises with a card number, a PIN or a login password in the text."""
from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from kiosk.sip2 import protocol
from kiosk.sip2.protocol import PatronAnswer

log = logging.getLogger("kiosk.sip2")

MAX_ANSWER = 64 * 1024  # no real answer comes near; a stream without CR is not SIP2
MAX_CACHED = 8  # connections one thread keeps open; the least recently used goes first
RECV_SIZE = 4096

Kind = Literal["connect", "tls", "timeout", "closed", "checksum", "garbage", "login_refused", "offline"]
T = TypeVar("T")


@dataclass(frozen=True)
class Sip2Settings:
    """Where and how to reach one library system. Hashable: it keys the connection cache."""

    host: str
    port: int
    tls: bool = False
    ca_file: str | None = None  # verify the server against this CA file; else the system's CAs
    login_user: str | None = None  # 93 Login only when set: many servers bind by address
    login_password: str | None = field(default=None, repr=False)
    institution: str = ""  # AO
    location: str | None = None  # CP of the login
    encoding: str = "utf-8"  # bytes on the wire: one of protocol.ENCODINGS
    timeout: float = 3.0  # seconds for one whole question, connecting included

    def __post_init__(self):
        if self.encoding not in protocol.ENCODINGS:
            raise ValueError(f"SIP2 encoding must be one of {', '.join(protocol.ENCODINGS)}")
        if not self.timeout > 0:
            raise ValueError("SIP2 timeout must be a positive number of seconds")
        for what, value in (("institution", self.institution), ("login user", self.login_user),
                            ("login password", self.login_password), ("location", self.location)):
            if value is not None:
                protocol.field_value(value, f"SIP2 {what}", self.encoding)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class Sip2Unavailable(Exception):
    """The library system could not answer; `kind` says why, the message is a log sentence."""

    def __init__(self, kind: Kind, message: str):
        super().__init__(message)
        self.kind = kind


class _NothingBack(Exception):
    """The connection ended before any byte of the answer: on a reused connection, the
    server has dropped it while idle, and the question is worth asking again."""


def _remaining(settings: Sip2Settings, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(settings)
    return left


def _timed_out(settings: Sip2Settings) -> Sip2Unavailable:
    return Sip2Unavailable("timeout", f"The SIP2 server at {settings.address} did not answer "
                                      f"within {settings.timeout:g} s")


def _connect(settings: Sip2Settings, deadline: float) -> socket.socket:
    """A connection to the first address that takes one, all of them within the one
    deadline (socket.create_connection would give each address the whole timeout).
    The name lookup itself is the resolver's to bound: give an IP address where DNS is slow."""
    try:
        addresses = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
    except UnicodeError:  # a name no resolver takes ("koha..pl"): not the card's fault
        raise Sip2Unavailable("connect", f"The SIP2 server's name {settings.host!r} is not a host name") from None
    except OSError as error:
        raise Sip2Unavailable("connect", f"Cannot find the SIP2 server {settings.address}: "
                                         f"{error.strerror or error}") from None
    failure: OSError | None = None
    for family, kind, proto, _name, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_remaining(settings, deadline))
            sock.connect(address)
            break
        except TimeoutError:
            sock.close()
            raise _timed_out(settings) from None
        except OSError as error:
            sock.close()
            failure = error
        except BaseException:
            sock.close()
            raise
    else:
        raise Sip2Unavailable("connect", f"Cannot connect to the SIP2 server at {settings.address}: "
                                         f"{getattr(failure, 'strerror', None) or failure}")
    try:
        # One small frame, then wait for its answer: Nagle's delay would only slow us down.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _secure(sock, settings, deadline) if settings.tls else sock
    except BaseException:
        sock.close()
        raise


def _secure(sock: socket.socket, settings: Sip2Settings, deadline: float) -> ssl.SSLSocket:
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)
        tls = context.wrap_socket(sock, server_hostname=settings.host, do_handshake_on_connect=False)
    except (OSError, ValueError) as error:  # an unreadable CA file, mostly
        raise Sip2Unavailable("tls", f"TLS for the SIP2 server at {settings.address} cannot be set "
                                     f"up: {error}") from None
    try:  # the TLS socket now owns the connection: it is the one to close
        tls.settimeout(_remaining(settings, deadline))
        tls.do_handshake()
        return tls
    except BaseException as error:
        tls.close()
        if isinstance(error, TimeoutError):
            raise _timed_out(settings) from None
        if isinstance(error, OSError):
            raise Sip2Unavailable("tls", f"TLS with the SIP2 server at {settings.address} failed: "
                                         f"{error}") from None
        raise


class _Connection:
    """One socket to one library system, greeted (login, status) and ready for questions.
    Used by one thread only; closed and forgotten after any failure, never left half-read."""

    def __init__(self, settings: Sip2Settings, sock: socket.socket):
        self.settings = settings
        self.sock = sock
        self.buffer = bytearray()
        self.seq = -1
        self.use_63 = True

    @classmethod
    def open(cls, settings: Sip2Settings, deadline: float) -> _Connection:
        connection = cls(settings, _connect(settings, deadline))
        try:
            connection._greet(deadline)
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _greet(self, deadline: float) -> None:
        s = self.settings
        if s.login_user is not None:
            body = protocol.login_request(s.login_user, s.login_password or "", s.location)
            if not self.exchange(body, deadline, protocol.parse_login_answer, (s.login_password,)):
                raise Sip2Unavailable("login_refused", f"The SIP2 server at {s.address} refused the "
                                                       "login: check the SIP2 user and password")
        status = self.exchange(protocol.status_request(), deadline,
                               lambda payload: protocol.parse_acs_status(payload, s.encoding))
        if not status.online:
            raise Sip2Unavailable("offline", f"The SIP2 server at {s.address} says it is offline")
        # Some ACS (RFID self-check systems above all) answer only the older 23 Patron Status.
        self.use_63 = status.supports_patron_information

    def ask_patron(self, card: str, pin: str | None, deadline: float) -> PatronAnswer:
        s = self.settings
        if self.buffer.strip(b"\n"):
            # Bytes nobody asked for: an answer to an earlier question, maybe. Out of step,
            # this connection could hand one reader's answer to the next: start afresh.
            log.info("SIP2 server at %s sent more than was asked; opening a new connection", s.address)
            raise _NothingBack()
        request = protocol.patron_information_request if self.use_63 else protocol.patron_status_request
        expected = "64" if self.use_63 else "24"
        body = request(s.institution, card, pin, datetime.now())
        started = time.monotonic()

        def parse(payload: bytes) -> PatronAnswer:
            ms = (time.monotonic() - started) * 1000
            answer = protocol.parse_patron_answer(payload, expected, s.encoding, ms)
            if not protocol.same_card(answer.first("AA"), card):
                raise protocol.FrameError("the answer is about another card")
            return answer

        return self.exchange(body, deadline, parse, (card, pin))

    def exchange(self, body: str, deadline: float, parse: Callable[[bytes], T],
                 secrets: tuple[str | None, ...] = ()) -> T:
        """Send one request and read its answer, asking for a resend once (97) when the
        checksum is wrong and resending once when the server asks (96)."""
        s = self.settings
        self.seq = (self.seq + 1) % 10
        request = protocol.seal(body, self.seq, s.encoding)
        self._send(request, deadline, nothing_back_yet=True)
        resent = asked_again = False
        while True:
            frame = self._read_frame(deadline, secrets, nothing_back_yet=not (resent or asked_again))
            if protocol.is_resend_request(frame):
                if resent:
                    raise Sip2Unavailable("checksum", f"The SIP2 server at {s.address} cannot read "
                                                      "our requests (it asked twice for a resend)")
                resent = True
                self._send(request, deadline)
                continue
            try:
                return parse(protocol.open_frame(frame, self.seq))
            except protocol.ChecksumMismatch:
                if asked_again:
                    raise Sip2Unavailable("checksum", f"The SIP2 server at {s.address} sent two "
                                                      "answers with a wrong checksum") from None
                asked_again = True
                self._send(protocol.RESEND_REQUEST, deadline)
            except protocol.FrameError as error:
                raise self._garbage(str(error), frame, secrets) from None

    def _garbage(self, why: str, frame: bytes, secrets: tuple[str | None, ...]) -> Sip2Unavailable:
        s = self.settings
        log.warning("SIP2 server at %s sent an answer that cannot be read (%s): %s",
                    s.address, why, protocol.redacted(bytes(frame), s.encoding, secrets))
        return Sip2Unavailable("garbage", f"The SIP2 server at {s.address} sent an answer that "
                                          f"cannot be read: {why}")

    def _send(self, data: bytes, deadline: float, *, nothing_back_yet: bool = False) -> None:
        self.sock.settimeout(_remaining(self.settings, deadline))
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise _timed_out(self.settings) from None
        except OSError:
            if nothing_back_yet:
                raise _NothingBack() from None
            raise self._closed() from None

    def _read_frame(self, deadline: float, secrets: tuple[str | None, ...], *,
                    nothing_back_yet: bool) -> bytes:
        """Bytes up to the next CR, however they arrive; a LF left by a CRLF is skipped."""
        searched = 0
        while True:
            while self.buffer[:1] == b"\n":
                del self.buffer[:1]
                searched = 0
            end = self.buffer.find(b"\r", searched)
            if end != -1:
                frame = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                return frame
            searched = len(self.buffer)
            if len(self.buffer) > MAX_ANSWER:
                raise self._garbage(f"no end of message within {MAX_ANSWER} bytes",
                                    self.buffer[:RECV_SIZE], secrets)
            chunk = self._recv(deadline)
            if not chunk:
                if nothing_back_yet and not self.buffer:
                    raise _NothingBack()
                raise self._closed()
            self.buffer += chunk

    def _recv(self, deadline: float) -> bytes:
        self.sock.settimeout(_remaining(self.settings, deadline))
        try:
            return self.sock.recv(RECV_SIZE)
        except TimeoutError:
            raise _timed_out(self.settings) from None
        except OSError:
            return b""  # reset, or TLS ended uncleanly: for us the same as a close

    def _closed(self) -> Sip2Unavailable:
        when = "in the middle of an answer" if self.buffer else "before answering"
        return Sip2Unavailable("closed", f"The SIP2 server at {self.settings.address} closed the "
                                         f"connection {when}")


_local = threading.local()


def _thread_connections() -> OrderedDict[Sip2Settings, _Connection]:
    if not hasattr(_local, "connections"):
        _local.connections = OrderedDict()
    return _local.connections


def patron_information(settings: Sip2Settings, card: str, pin: str | None = None) -> PatronAnswer:
    """What the library system says about `card` (and `pin`, when given).

    Raises Sip2Unavailable when it cannot say, ValueError when the card or PIN cannot
    travel in a SIP2 field at all."""
    protocol.field_value(card, "card number", settings.encoding)
    if pin is not None:
        protocol.field_value(pin, "PIN", settings.encoding)
    deadline = time.monotonic() + settings.timeout
    connections = _thread_connections()
    connection = connections.pop(settings, None)
    try:
        if connection is not None:
            try:
                answer = connection.ask_patron(card, pin, deadline)
            except _NothingBack:
                log.info("SIP2 server at %s had closed the idle connection; opening a new one",
                         settings.address)
                connection.close()
                connection = None
        if connection is None:
            connection = _Connection.open(settings, deadline)
            answer = connection.ask_patron(card, pin, deadline)
    except BaseException as error:
        if connection is not None:
            connection.close()
        if isinstance(error, _NothingBack):
            raise Sip2Unavailable("closed", f"The SIP2 server at {settings.address} closed the "
                                            "connection before answering") from None
        raise
    _keep(connections, connection)
    return answer


def _keep(connections: OrderedDict[Sip2Settings, _Connection], connection: _Connection) -> None:
    # Settings changed (a new timeout, a new user): the old connection to the same server
    # goes now, not when eight others have pushed it out; servers count their sessions.
    for settings in [s for s in connections if s.address == connection.settings.address]:
        connections.pop(settings).close()
    connections[connection.settings] = connection  # the most recently used comes last
    while len(connections) > MAX_CACHED:
        connections.popitem(last=False)[1].close()


def close_thread_connections() -> None:
    """Close the connections this thread keeps open (at the end of a worker, in tests)."""
    connections = _thread_connections()
    while connections:
        connections.popitem()[1].close()
