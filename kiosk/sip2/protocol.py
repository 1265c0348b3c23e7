"""SIP2 (3M Standard Interchange Protocol 2.00) frames, without any I/O: the requests
Kodomat sends, the answers it reads, the checksums both carry.

A frame is ASCII-framed text ending in a carriage return: a two-digit command, fixed
fields, identified fields `XXvalue|`, then `AY<seq>AZ<checksum>`. Field values travel in
the library system's encoding (bytes on the wire), so checksums are sums of bytes."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

ENCODINGS = ("utf-8", "cp1250", "cp852", "cp850")
MAX_FIELD_BYTES = 255  # the spec's limit for one variable-length field
RESEND_REQUEST = b"97AZFEF5\r"  # Request ACS Resend: no sequence number, its checksum fixed
LOG_SNIPPET = 80
_LOG_SCAN = 2048  # bytes of a bad answer looked at to write its log line

# The six 4-digit counts of a 64 answer, in wire order.
COUNT_NAMES = ("hold", "overdue", "charged", "fine", "recall", "unavailable_holds")
_FIXED_64 = 14 + 3 + 18 + 4 * len(COUNT_NAMES)
_FIXED_24 = 14 + 3 + 18
_FIXED_98 = 6 + 3 + 3 + 18 + 4
_FIELD_ID = re.compile(rb"[A-Za-z0-9]{2}")
_TRAILER = re.compile(rb"(?:AY([0-9]))?AZ([0-9A-Fa-f]{4})\Z")


class FrameError(ValueError):
    """An answer that cannot be read as the SIP2 frame we waited for. The message is a
    fixed phrase: it never repeats the answer's content (which may hold a card number)."""


class ChecksumMismatch(FrameError):
    """The answer's AZ does not match its bytes: worth one Request ACS Resend."""


@dataclass(frozen=True)
class PatronAnswer:
    """A library system's answer about one card, as sent: the domain interprets it."""

    command: str  # "64" (Patron Information) or "24" (Patron Status)
    patron_status: str  # the 14 status flags exactly as sent: ' ' or 'Y' each
    valid_patron: bool | None  # BL; None when the server did not say
    valid_password: bool | None  # CQ; None when no PIN was checked
    fields: Mapping[str, tuple[str, ...]]  # every identified field, arrival order
    counts: Mapping[str, int]  # 64 only; a blank count is left out
    ms: float  # round trip of the patron request

    def first(self, field_id: str) -> str | None:
        values = self.fields.get(field_id)
        return values[0] if values else None


@dataclass(frozen=True)
class AcsStatus:
    """What the 98 answer to our SC Status tells us."""

    online: bool
    supports_patron_information: bool


# -- checksums ----------------------------------------------------------------

def checksum(prefix_through_az: bytes) -> str:
    """Two's complement of the 16-bit byte sum, as 4 uppercase hex digits."""
    return f"{-sum(prefix_through_az) & 0xFFFF:04X}"


def seal(body: str, seq: int, encoding: str) -> bytes:
    """The frame on the wire: body, AY<seq>AZ<checksum>, CR."""
    prefix = body.encode(encoding) + f"AY{seq}AZ".encode("ascii")
    return prefix + checksum(prefix).encode("ascii") + b"\r"


# -- requests -----------------------------------------------------------------

def field_value(value: str, what: str, encoding: str) -> str:
    """A value checked to travel inside one field; the error names `what`, never the value."""
    if any(c in value for c in "|\r\n\0"):
        raise ValueError(f"the {what} contains a character SIP2 cannot carry in a field")
    try:
        size = len(value.encode(encoding))
    except UnicodeEncodeError:
        raise ValueError(f"the {what} cannot be written in {encoding}") from None
    if size > MAX_FIELD_BYTES:
        raise ValueError(f"the {what} is longer than a SIP2 field allows")
    return value


def transaction_date(now: datetime) -> str:
    """YYYYMMDDZZZZHHMMSS with the time zone left blank: local time."""
    return now.strftime("%Y%m%d") + "    " + now.strftime("%H%M%S")


def login_request(user: str, password: str, location: str | None) -> str:
    # Algorithms 0 and 0: user id and password travel as they are.
    body = f"9300CN{user}|CO{password}|"
    return body + (f"CP{location}|" if location is not None else "")


def status_request() -> str:
    # Status 0 (SC ok), 040 characters of print width, protocol version 2.00.
    return "990" + "040" + "2.00"


def patron_information_request(institution: str, card: str, pin: str | None, now: datetime) -> str:
    # Language 000 (unknown), a blank summary: we ask for no item lists.
    body = f"63000{transaction_date(now)}{' ' * 10}AO{institution}|AA{card}|AC|"
    return body + (f"AD{pin}|" if pin is not None else "")


def patron_status_request(institution: str, card: str, pin: str | None, now: datetime) -> str:
    # In a 23 the patron password is a required field; empty when we have no PIN.
    return f"23000{transaction_date(now)}AO{institution}|AA{card}|AC|AD{pin or ''}|"


# -- answers ------------------------------------------------------------------

def is_resend_request(frame: bytes) -> bool:
    """A 96: the server did not read our last request and asks for it again."""
    return frame[:2] == b"96"


def open_frame(frame: bytes, seq: int) -> bytes:
    """The answer's payload (command and fields) once its trailer has been checked.

    `frame` is everything before the CR. A present AZ must match, a present AY must be
    our `seq` (another one is an answer to some other request)."""
    if b"\0" in frame:
        raise FrameError("the answer contains a NUL byte")
    trailer = _TRAILER.search(frame)
    if trailer is None:
        return frame
    prefix = frame[: trailer.start(2)]
    if checksum(prefix) != trailer.group(2).decode("ascii").upper():
        raise ChecksumMismatch("the answer's checksum does not match its bytes")
    if trailer.group(1) is not None and int(trailer.group(1)) != seq:
        raise FrameError("the answer carries another request's sequence number")
    return frame[: trailer.start()]


def _command(payload: bytes, expected: Iterable[str]) -> str:
    command = payload[:2].decode("ascii", "replace")
    if command not in expected:
        raise FrameError(f"expected a {'/'.join(expected)} answer, got another command")
    return command


def _fixed(payload: bytes, width: int) -> str:
    """The fixed part after the command: ASCII, complete, with no field delimiter in it."""
    fixed = payload[2 : 2 + width]
    if len(fixed) < width or b"|" in fixed:
        raise FrameError("the answer's fixed fields are cut short")
    try:
        return fixed.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("the answer's fixed fields are not ASCII") from None


def identified_fields(data: bytes, encoding: str) -> dict[str, tuple[str, ...]]:
    """`XXvalue|` fields in arrival order, repeated ones gathered, unknown ones kept.

    Values are split as bytes before decoding: `|` is never part of a multi-byte
    character in the encodings we allow. A value the encoding cannot read keeps a
    replacement mark rather than losing the whole answer."""
    found: dict[str, list[str]] = {}
    cursor = 0
    while cursor < len(data):
        field_id = data[cursor : cursor + 2]
        if not _FIELD_ID.fullmatch(field_id):
            raise FrameError("the answer has a malformed field identifier")
        end = data.find(b"|", cursor + 2)
        if end == -1:
            raise FrameError("the answer's last field has no delimiter")
        value = data[cursor + 2 : end].decode(encoding, "replace")
        found.setdefault(field_id.decode("ascii"), []).append(value)
        cursor = end + 1
    return {field_id: tuple(values) for field_id, values in found.items()}


def _yes_no(fields: Mapping[str, tuple[str, ...]], field_id: str) -> bool | None:
    values = fields.get(field_id)
    if not values:
        return None
    flag = values[0].strip().upper()
    if not flag:
        return None
    if flag not in ("Y", "N"):
        raise FrameError(f"the answer's {field_id} is neither Y nor N")
    return flag == "Y"


def _counts(fixed: str) -> dict[str, int]:
    counts = {}
    for index, name in enumerate(COUNT_NAMES):
        text = fixed[35 + 4 * index : 39 + 4 * index].strip()
        if not text:
            continue  # the server does not keep this count
        if not text.isdigit():
            raise FrameError("the answer's item counts are not numbers")
        counts[name] = int(text)
    return counts


def parse_patron_answer(payload: bytes, expected: str, encoding: str, ms: float) -> PatronAnswer:
    """A 64 (expected "64") or 24 (expected "24") answer, from a payload `open_frame` gave."""
    command = _command(payload, (expected,))
    width = _FIXED_64 if command == "64" else _FIXED_24
    fixed = _fixed(payload, width)
    fields = identified_fields(payload[2 + width :], encoding)
    return PatronAnswer(
        command=command,
        patron_status=fixed[:14],
        valid_patron=_yes_no(fields, "BL"),
        valid_password=_yes_no(fields, "CQ"),
        fields=fields,
        counts=_counts(fixed) if command == "64" else {},
        ms=ms,
    )


def parse_login_answer(payload: bytes) -> bool:
    """94: whether the server took our login."""
    _command(payload, ("94",))
    ok = _fixed(payload, 1)
    if ok not in ("0", "1"):
        raise FrameError("the login answer is neither 0 nor 1")
    return ok == "1"


def parse_acs_status(payload: bytes, encoding: str) -> AcsStatus:
    """98: online or not, and (BX) whether Patron Information (63) is supported."""
    _command(payload, ("98",))
    fixed = _fixed(payload, _FIXED_98)
    supported = identified_fields(payload[2 + _FIXED_98 :], encoding).get("BX", ("",))[0]
    # BX position 7 is 63 Patron Information; a server that sends no BX gets the benefit
    # of the doubt.
    return AcsStatus(online=fixed[0] == "Y",
                     supports_patron_information=len(supported) < 8 or supported[7] != "N")


def same_card(answered: str | None, asked: str) -> bool:
    """Whether an answer's AA names the card asked about: servers may change its case or
    drop leading zeros and spaces, never answer about another card."""
    if answered is None:
        return True  # AA is required in 64 and 24; a server that leaves it out names no other card
    plain = lambda card: card.strip().upper().lstrip("0")  # noqa: E731
    return plain(answered) == plain(asked)


def redacted(frame: bytes, encoding: str, secrets: Iterable[str | None] = ()) -> str:
    """At most LOG_SNIPPET characters of a frame for a log line: its command and field
    identifiers and its shape, no value (a value may be a card, a PIN, a password, a
    reader's name or e-mail). Letters show as x, digits as 9."""
    text = frame[:_LOG_SCAN].decode(encoding, "replace")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    shape, keep = [], 2  # the command's two characters, then each field's identifier
    for ch in text:
        if keep:
            shape.append(ch if ch.isascii() and ch.isalnum() else "?")
            keep -= 1
        elif ch == "|":
            shape.append(ch)
            keep = 2
        else:
            shape.append("9" if ch.isdigit() else "x" if ch.isalpha() else ch if ch in " .,-:/<>*" else "?")
    text = "".join(shape)
    shown = repr(text[:LOG_SNIPPET])
    return shown + ("…" if len(text) > LOG_SNIPPET else "")
