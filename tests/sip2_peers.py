"""Servers for the SIP2 client's tests, each in a thread on 127.0.0.1 with a port from the OS.

- `sip2_server`: a real SIP2 server nobody here wrote (pysip2), serving a patron table,
  with the fields Koha and Evergreen add beyond SIP2 2.00 spliced in.
- Hostile servers written by hand (`silent_server`, `half_answer_server`, ...): each is
  a `RawPeer` whose per-connection script misbehaves in one way.

They build frames with pysip2's checksum, not with kiosk.sip2's: the client is checked
against someone else's arithmetic."""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import SocketAttribute
from pysip2 import (LOGIN, PATRON_INFORMATION, PATRON_STATUS, LoginResponse, PatronInformationResponse,
                    PatronStatusResponse, SIP2Server, calculate_checksum)

INSTITUTION = "KODOMAT"


@dataclass
class Patron:
    """One row of the peer's patron table."""

    pin: str | None = None
    valid: bool = True  # BL
    status: str = " " * 14  # the 14 patron status flags
    name: str = ""  # AE
    fee: str | None = None  # BV
    email: str | None = None  # BE
    expiry: str | None = None  # PA, YYYYMMDD (Koha, Evergreen)
    birth: str | None = None  # PB, YYYYMMDD; BC when birth_field says so (Polaris)
    birth_field: str = "PB"
    charged: int = 0
    messages: tuple[str, ...] = ()  # AF, repeatable
    vendor: dict[str, str] = field(default_factory=dict)  # any other field, sent after the rest

    def extensions(self) -> list[tuple[str, str]]:
        found = [("PA", self.expiry), (self.birth_field, self.birth), *self.vendor.items()]
        return [(field_id, value) for field_id, value in found if value is not None]


class PatronServer(SIP2Server):
    """pysip2's server, counting connections and requests, with extension fields.

    pysip2's models stop at SIP2 2.00 and have no PA/PB/BC (nor vendor) fields, so the
    frame writer is overridden: once pysip2 has encoded an answer, the fields its handler
    left in the connection state go in before the AY…AZ trailer, and the checksum is
    recomputed with pysip2's own calculate_checksum. This leans on pysip2 0.1's private
    `_send`, `_process_frame` and `_handle_connection`."""

    def __init__(self, **options):
        super().__init__(**options)
        self.port = 0
        self.connections = 0  # TCP connections accepted
        self.open = 0  # of those, still open
        self.requests: list[str] = []  # command ids received, in order
        self.cards_asked: list[set[str]] = []  # per connection: the cards asked about on it

    async def _handle_connection(self, stream):
        self.connections += 1
        self.open += 1
        try:
            await super()._handle_connection(stream)
        finally:
            self.open -= 1

    def open_connections(self) -> int:
        """Connections accepted and not yet closed by the client."""
        return self.open

    async def _process_frame(self, stream, state, frame):
        self.requests.append(frame[:2].decode("ascii", "replace"))
        if "cards" not in state.app_state:
            self.cards_asked.append(state.app_state.setdefault("cards", set()))
        await super()._process_frame(stream, state, frame)

    async def _send(self, stream, state, frame):
        extra = b"".join(f"{fid}{value}|".encode(self.encoding)
                         for fid, value in state.app_state.pop("extensions", []))
        if extra and sequence_of(frame) is not None:  # trailer: AY, a digit, AZ, 4 hex, CR
            prefix = frame[:-10] + extra + frame[-10:-5]
            frame = prefix + calculate_checksum(prefix).encode("ascii") + b"\r"
        elif extra:
            frame = frame[:-1] + extra + b"\r"
        await super()._send(stream, state, frame)


def _build(patrons: dict[str, Patron], *, encoding: str, login: tuple[str, str] | None,
           patron_information: bool, error_detection: str) -> PatronServer:
    app = PatronServer(encoding=encoding, error_detection=error_detection, institution_id=INSTITUTION,
                       login_required=login is not None)
    if login is not None:
        @app.route(LOGIN)
        async def log_in(request, ctx):
            return LoginResponse(ok="1" if (request.login_user_id, request.login_password) == login else "0")

    def common(request, ctx, pin):
        patron = patrons.get(request.patron_identifier)
        ctx.connection.state["cards"].add(request.patron_identifier)
        ctx.connection.state["extensions"] = patron.extensions() if patron else []
        pin_right = patron is not None and patron.pin == pin
        return dict(
            patron_status=patron.status if patron else " " * 14, language="000",
            transaction_date=ctx.now_18(), institution_id=request.institution_id,
            patron_identifier=request.patron_identifier, personal_name=patron.name if patron else "",
            valid_patron="Y" if patron and patron.valid else "N",
            valid_patron_password=None if pin is None else "Y" if pin_right else "N",  # no PIN, no CQ
            currency_type="PLN" if patron and patron.fee else None,
            fee_amount=patron.fee if patron else None,
            screen_message=patron.messages if patron else ("Nieznana karta",))

    if patron_information:
        @app.route(PATRON_INFORMATION)
        async def information(request, ctx):
            patron = patrons.get(request.patron_identifier)
            # The recall count left blank, as servers that keep no recalls send it.
            return PatronInformationResponse(
                **common(request, ctx, request.patron_password),
                hold_items_count="0000", overdue_items_count="0000",
                charged_items_count=f"{patron.charged if patron else 0:04d}", fine_items_count="0000",
                recall_items_count="    ", unavailable_holds_count="0000",
                email_address=patron.email if patron else None)

    @app.route(PATRON_STATUS)
    async def status(request, ctx):
        # A 23 always carries AD; an empty one means no PIN was given.
        return PatronStatusResponse(**common(request, ctx, request.patron_password or None))

    return app


@contextmanager
def sip2_server(patrons: dict[str, Patron], *, encoding: str = "utf-8",
                login: tuple[str, str] | None = None, patron_information: bool = True,
                error_detection: str = "auto", port: int = 0) -> Iterator[PatronServer]:
    """pysip2 serving `patrons` in a thread; the server object has .port, .connections,
    .requests and .cards_asked. `patron_information=False` leaves out 63, so BX says it is missing."""
    app = _build(patrons, encoding=encoding, login=login, patron_information=patron_information,
                 error_detection=error_detection)
    ready = threading.Event()
    loop: dict = {}

    async def serve():
        loop["token"], loop["stop"] = anyio.lowlevel.current_token(), anyio.Event()
        try:
            # Not app.start(): pysip2 0.1 never closes that listener, so the port stays
            # taken after exit and a restarted server could not bind it again.
            async with await app.listen(port=port) as listener, anyio.create_task_group() as tasks:
                app.port = listener.extra(SocketAttribute.local_port)
                tasks.start_soon(listener.serve, app._handle_connection)
                ready.set()
                await loop["stop"].wait()
                tasks.cancel_scope.cancel()
        except BaseException as error:
            loop["error"] = error
            ready.set()
            raise

    thread = threading.Thread(target=anyio.run, args=(serve,), name="pysip2", daemon=True)
    thread.start()
    ready.wait(10)
    if "error" in loop or not app.port:
        raise RuntimeError(f"pysip2 did not start: {loop.get('error')!r}")
    try:
        yield app
    finally:
        anyio.from_thread.run_sync(loop["stop"].set, token=loop["token"])
        thread.join(10)


# -- frames written by hand ------------------------------------------------------

_SEQ = re.compile(rb"AY([0-9])AZ[0-9A-Fa-f]{4}\Z")


def sequence_of(frame: bytes) -> str | None:
    match = _SEQ.search(frame.rstrip(b"\r"))
    return match.group(1).decode() if match else None


def sealed(body: str, seq: str | None, encoding: str = "utf-8", *, wrong_checksum: bool = False) -> bytes:
    """A frame with its AY/AZ trailer (only AZ when seq is None), CR-terminated."""
    prefix = body.encode(encoding) + (b"AZ" if seq is None else f"AY{seq}AZ".encode())
    checksum = calculate_checksum(prefix)
    if wrong_checksum:
        checksum = f"{(int(checksum, 16) + 1) & 0xFFFF:04X}"
    return prefix + checksum.encode() + b"\r"


def now_18() -> str:
    return dt.datetime.now().strftime("%Y%m%d    %H%M%S")


def acs_status(seq: str | None, *, online: str = "Y", supported: str = "Y" * 16) -> bytes:
    return sealed(f"98{online}YYNYN030003{now_18()}2.00AO{INSTITUTION}|BX{supported}|", seq)


def patron_answer(frame: bytes, *, name: str = "Anna Nowak", seq: str | None = None,
                  wrong_checksum: bool = False) -> bytes:
    """A 64 for the card in the request `frame`: valid, nothing charged."""
    card = re.search(rb"\|AA([^|]*)\|", frame).group(1).decode()
    body = (f"64{' ' * 14}000{now_18()}0000000000000000    0000AO{INSTITUTION}|AA{card}|AE{name}|BLY|")
    return sealed(body, seq if seq is not None else sequence_of(frame), wrong_checksum=wrong_checksum)


# -- hostile peers ---------------------------------------------------------------

class PeerConnection:
    """One accepted socket of a RawPeer, read frame by frame."""

    def __init__(self, sock: socket.socket, peer: RawPeer):
        self.sock, self.peer, self.buffer = sock, peer, b""

    def read_frame(self) -> bytes | None:
        """The next request, CR included; None once the client has gone."""
        while b"\r" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buffer += chunk
        frame, _, self.buffer = self.buffer.partition(b"\r")
        self.peer.requests.append(frame[:2].decode("ascii", "replace"))
        return frame + b"\r"

    def send(self, data: bytes) -> None:
        if self.peer.crlf:
            data = data.replace(b"\r", b"\r\n")
        if self.peer.trickle:
            for index in range(len(data)):
                self.sock.sendall(data[index : index + 1])
        else:
            self.sock.sendall(data)

    def greet(self, frame: bytes) -> bool:
        """Answer a login or status request as a willing server would; False for others."""
        if frame.startswith(b"93"):
            self.send(sealed("941", sequence_of(frame)))
        elif frame.startswith(b"99"):
            self.send(acs_status(sequence_of(frame)))
        else:
            return False
        return True


class RawPeer:
    """A TCP server on 127.0.0.1 running `script(connection)` for each connection in a
    thread of its own. A context manager: at exit it wakes and joins every thread."""

    def __init__(self, script: Callable[[PeerConnection], None], *, tls: ssl.SSLContext | None = None,
                 trickle: bool = False, crlf: bool = False):
        self.script, self.tls, self.trickle, self.crlf = script, tls, trickle, crlf
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[str] = []
        self.state: dict = {}  # for scripts that remember across connections
        self._lock = threading.Lock()
        self._stopping = False
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> RawPeer:
        self._start(self._accept)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._stopping = True
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
                except OSError:
                    pass
        try:  # wakes the thread blocked in accept
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._threads[0].join(10)  # the accepting thread: no connection threads start after it
        for thread in self._threads[1:]:
            thread.join(10)
        self.listener.close()

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="raw-sip2-peer")
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            sock, _ = self.listener.accept()
            if self._stopping:
                sock.close()
                return
            self.connections += 1
            self._start(self._run, sock)

    def _run(self, sock: socket.socket) -> None:
        sock.settimeout(10)  # a safety net: no test waits this long
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a trickle leaves byte by byte
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            with self._lock:
                if self._stopping:
                    return
                self._open.add(sock)
            self.script(PeerConnection(sock, self))
        except OSError:
            pass  # the client went away, or TLS failed: both are what some tests want
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()


def _on_patron_request(answer: Callable[[PeerConnection, bytes], bool | None]):
    """A script that greets politely and lets `answer` handle every other request;
    `answer` returning True ends the connection."""
    def script(connection: PeerConnection) -> None:
        while (frame := connection.read_frame()) is not None:
            if not connection.greet(frame) and answer(connection, frame):
                return
    return script


def _polite(connection: PeerConnection, frame: bytes) -> None:
    connection.send(patron_answer(frame))


def answering_server(**options) -> RawPeer:
    """Answers everything correctly. Options: trickle (one byte per send), crlf, tls."""
    return RawPeer(_on_patron_request(_polite), **options)


def byte_by_byte_server() -> RawPeer:
    """Correct answers, sent one byte per send, each followed by LF (CRLF line ends)."""
    return answering_server(trickle=True, crlf=True)


def slow_server(delay: float) -> RawPeer:
    """Answers everything correctly, each answer `delay` seconds after its request."""
    def script(connection):
        while (frame := connection.read_frame()) is not None:
            time.sleep(delay)
            if not connection.greet(frame):
                _polite(connection, frame)
    return RawPeer(script)


def eager_server() -> RawPeer:
    """Answers a login with the 94 and, in the same send, the 98 to the status request
    the client is about to make; then ignores that request."""
    def script(connection):
        while (frame := connection.read_frame()) is not None:
            if frame.startswith(b"93"):
                seq = sequence_of(frame)
                connection.send(sealed("941", seq) + acs_status(str((int(seq) + 1) % 10)))
            elif not frame.startswith(b"99"):
                _polite(connection, frame)
    return RawPeer(script)


def silent_server() -> RawPeer:
    """Accepts and reads, never answers (not even the status request)."""
    def script(connection):
        while connection.read_frame() is not None:
            pass
    return RawPeer(script)


def stalling_server() -> RawPeer:
    """Answers correctly, except the second patron request: that one it reads and ignores."""
    def answer(connection, frame):
        asked = connection.peer.state["asked"] = connection.peer.state.get("asked", 0) + 1
        if asked != 2:
            _polite(connection, frame)
    return RawPeer(_on_patron_request(answer))


def half_answer_server() -> RawPeer:
    """Greets, then answers the patron request with half a frame and closes."""
    def half(connection, frame):
        answer = patron_answer(frame)
        connection.send(answer[: len(answer) // 2])
        return True
    return RawPeer(_on_patron_request(half))


def bad_checksum_server(times: int = 1) -> RawPeer:
    """The first `times` patron answers (a 97 resend included) carry a wrong AZ."""
    def answer(connection, frame):
        state = connection.peer.state
        if not frame.startswith(b"97"):
            state["request"] = frame
        bad = state.setdefault("bad_left", times) > 0
        if bad:
            state["bad_left"] -= 1
        connection.send(patron_answer(state["request"], wrong_checksum=bad))
    return RawPeer(_on_patron_request(answer))


def resend_asking_server() -> RawPeer:
    """Answers the first patron request with 96 (send it again), then answers properly."""
    def answer(connection, frame):
        if connection.peer.state.setdefault("asked", False):
            return _polite(connection, frame)
        connection.peer.state["asked"] = True
        connection.send(sealed("96", None))
    return RawPeer(_on_patron_request(answer))


def garbage_server() -> RawPeer:
    """Greets, then answers the patron request with an HTML page echoing the request
    (so its card number) back: not SIP2, and a trap for log lines."""
    return RawPeer(_on_patron_request(
        lambda connection, frame: connection.send(b"<html><body>" + frame[:-1] + b"</body></html>\r")))


def stale_answer_server() -> RawPeer:
    """Answers with a well-formed 64 carrying another request's sequence number."""
    def answer(connection, frame):
        connection.send(patron_answer(frame, seq=str((int(sequence_of(frame)) + 5) % 10)))
    return RawPeer(_on_patron_request(answer))


def offline_server() -> RawPeer:
    """Its 98 says the ACS is offline."""
    def script(connection):
        while (frame := connection.read_frame()) is not None:
            connection.send(acs_status(sequence_of(frame), online="N"))
    return RawPeer(script)


def flood_server(megabytes: int = 10) -> RawPeer:
    """Greets, then answers the patron request with `megabytes` MB containing no CR."""
    chunk = b"X" * 65536

    def flood(connection, frame):
        for _ in range(megabytes * 16):
            connection.send(chunk)
        return True
    return RawPeer(_on_patron_request(flood))


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1: the CA, certificate and key files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def sign(subject: str, key, issuer: str, issuer_key, *, ca: bool) -> x509.Certificate:
        # The extensions Python 3.13's strict verification asks of a CA and of a server.
        usage = x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                              key_encipherment=False, data_encipherment=False, key_agreement=False,
                              encipher_only=False, decipher_only=False)
        builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(usage, critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
        if not ca:
            address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            builder = (builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = sign("Kodomat test CA", ca_key, "Kodomat test CA", ca_key, ca=True)
    cert = sign("127.0.0.1", key, "Kodomat test CA", ca_key, ca=False)
    files = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return files


def tls_server(folder: Path) -> RawPeer:
    """Answers everything correctly, over TLS, with a certificate for 127.0.0.1 from a
    CA of its own; `.ca_file` names that CA's file for the client to trust."""
    ca_file, cert, key = _certificates(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    peer = answering_server(tls=context)
    peer.ca_file = str(ca_file)
    return peer
