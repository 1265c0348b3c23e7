"""A reader's data (kiosk.domain.reader_data) as JSON (stable keys, ISO dates) and
as text (DD.MM.YYYY, times in the library's zone): for `kiosk reader-data` and the
staff's page and download."""
from __future__ import annotations

import dataclasses
import enum
from datetime import date, datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kiosk.domain.clock import format_date, format_moment
from kiosk.domain.limits import LimitKind
from kiosk.domain.reader_data import Activation, IssuanceData, MessageState, ReaderData
from kiosk.wording.names import channel_name, event_name
from kiosk.wording.slips import slip_id

ACTIVATION_NAMES = {
    Activation.ACTIVATED: _l("aktywowany"),
    Activation.NOT_ACTIVATED: _l("nieaktywowany"),
    Activation.UNKNOWN: _l("brak danych o aktywacji"),
}
MESSAGE_STATES = {
    MessageState.SENT: _l("wysłany"),
    MessageState.FAILED: _l("niewysłany (zaniechano)"),
    MessageState.WAITING: _l("czeka na wysłanie"),
}
LIMIT_NAMES = {
    LimitKind.CARD_WRONG_PINS: _l("błędny PIN"),
    LimitKind.CARD_WRONG_PINS_DAY: _l("błędny PIN (limit dzienny)"),
    LimitKind.ONLINE_PIN_ASKS: _l("sprawdzenie PIN-u (formularz online)"),
    LimitKind.ONLINE_RESENDS: _l("kod wysłany ponownie (formularz online)"),
    LimitKind.KIOSK_SAME_CARD: _l("kod pokazany ponownie w kiosku"),
}


def _plain(value):
    """A value as JSON holds it: dates and moments in ISO 8601, enums by value."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _slip(issuance_id: int | None) -> str | None:
    return slip_id(issuance_id) if issuance_id is not None else None


def as_json(data: ReaderData) -> dict:
    """The whole report, every key always present (empty lists, nulls)."""
    return {
        "library": {"slug": data.library_slug, "name": data.library_name},
        "generated_at": data.generated_at.isoformat(),
        "reader_key": data.reader_key,
        "card_hint": data.card_hint,
        "found": data.found,
        "register": _plain(dataclasses.asdict(data.register)) if data.register else None,
        "issuances": [{"slip": slip_id(i.issuance_id), **_plain(dataclasses.asdict(i)),
                       "replaces": _slip(i.replaces), "replaced_by": _slip(i.replaced_by)} for i in data.issuances],
        "messages": [{**_plain(dataclasses.asdict(m)), "slip": slip_id(m.issuance_id)} for m in data.messages],
        "events": [_plain(dataclasses.asdict(e)) for e in data.events],
        "limit_hits": [_plain(dataclasses.asdict(h)) for h in data.limit_hits],
        "api_answers": [_plain(dataclasses.asdict(a)) for a in data.api_answers],
    }


def money(grosze: int) -> str:
    return _("%(amount)s zł", amount=f"{grosze / 100:.2f}".replace(".", ","))


def yes_no(value: bool) -> str:
    return _("tak") if value else _("nie")


def register_lines(data: ReaderData) -> list[tuple[str, str]]:
    """(label, value) of the card register's row; only what it holds."""
    row = data.register
    if row is None:
        return []
    lines = [(_("Karta ważna do"), format_date(row.expires_on) if row.expires_on else _("bez daty")),
             (_("Zablokowana"), yes_no(row.blocked))]
    if row.birth_date:
        lines.append((_("Data urodzenia"), format_date(row.birth_date)))
    if row.last_loan:
        lines.append((_("Ostatnie wypożyczenie"), format_date(row.last_loan)))
    if row.debt_grosze is not None:
        lines.append((_("Zadłużenie"), money(row.debt_grosze)))
    if row.email:
        lines.append((_("E-mail"), row.email))
    return lines


def issuance_lines(item: IssuanceData, tz: str) -> list[str]:
    """What the report says of one issuance, a line each."""
    who = item.kiosk or item.actor
    lines = [_("%(platform)s, ważny %(start)s–%(end)s", platform=item.platform_name,
               start=format_date(item.window_start), end=format_date(item.window_end)),
             _("wydano %(moment)s: %(channel)s (%(who)s); wydruków: %(count)s", moment=format_moment(item.issued_at, tz),
               channel=channel_name(item.channel), who=who, count=item.print_count)]
    if item.card_hint:
        lines.append(_("karta: ••••%(hint)s", hint=item.card_hint))
    if item.first_timer:
        lines.append(_("pierwszy kod czytelnika w tej bibliotece"))
    if item.note:
        lines.append(_("notatka: %(note)s", note=item.note))
    if item.voided_at:
        lines.append(_("wycofany %(moment)s: %(reason)s", moment=format_moment(item.voided_at, tz),
                       reason=item.void_reason or "—"))
    if item.replaces:
        lines.append(_("zastąpił kod z wydruku %(slip)s", slip=slip_id(item.replaces)))
    if item.replaced_by:
        lines.append(_("zastąpiony kodem z wydruku %(slip)s", slip=slip_id(item.replaced_by)))
    activation = str(ACTIVATION_NAMES[item.activation])
    if item.activated_on:
        activation += f" {format_date(item.activated_on)}"
    lines.append(activation)
    return lines


def event_details(details: dict) -> str:
    """The details as stored, the ids aside (the code is named beside them)."""
    def said(key: str, value) -> str:
        if isinstance(value, bool):
            return yes_no(value)
        return channel_name(value) if key == "channel" else str(value)

    return ", ".join(f"{key}: {said(key, value)}" for key, value in details.items() if not key.endswith("_id"))


def as_text(data: ReaderData) -> str:
    """The report as plain text, for the terminal or a printout."""
    tz = data.timezone
    out = [_("Dane czytelnika — %(library)s", library=data.library_name),
           _("Sporządzono %(moment)s.", moment=format_moment(data.generated_at, tz))]
    if data.card_hint:
        out.append(_("Karta: ••••%(hint)s", hint=data.card_hint))
    if not data.found:
        out.append(_("O tej karcie nic nie jest zapisane w tej bibliotece."))
        if data.events:  # only earlier lookups
            out += ["", *_event_lines(data)]
        return "\n".join(out) + "\n"
    out.append(_("Klucz czytelnika (skrót numeru karty): %(key)s", key=data.reader_key))
    out += ["", _("Rejestr kart:")]
    lines = register_lines(data)
    out += [f"  {label}: {value}" for label, value in lines] or ["  " + _("karty nie ma w rejestrze")]
    out += ["", _("Wydane kody: %(count)s", count=len(data.issuances))]
    for item in data.issuances:
        out.append(f"  {slip_id(item.issuance_id)}  {item.code}")
        out += [f"    {line}" for line in issuance_lines(item, tz)]
    out += ["", _("E-maile z kodami: %(count)s", count=len(data.messages))]
    for m in data.messages:
        said = _("%(moment)s do %(address)s (wydruk %(slip)s): %(state)s", moment=format_moment(m.created_at, tz),
                 address=m.to_address, slip=slip_id(m.issuance_id), state=MESSAGE_STATES[m.state])
        if m.sent_at:
            said += " " + format_moment(m.sent_at, tz)
        if m.last_error and not m.sent_at:
            said += f" ({m.last_error})"
        out.append(f"  {said}")
    out += ["", *_event_lines(data)]
    out += ["", _("Próby liczone w limitach: %(count)s", count=len(data.limit_hits))]
    out += [f"  {format_moment(h.at, tz)}  {LIMIT_NAMES.get(h.kind, h.kind)}" for h in data.limit_hits]
    out += ["", _("Zapamiętane odpowiedzi API: %(count)s", count=len(data.api_answers))]
    out += [f"  {format_moment(a.created_at, tz)}  {a.api_key}: {a.status} {a.body.get('code') or ''}".rstrip()
            for a in data.api_answers]
    return "\n".join(out) + "\n"


def _event_lines(data: ReaderData) -> list[str]:
    lines = [_("Zdarzenia w dzienniku: %(count)s", count=len(data.events))]
    for e in data.events:
        code = f" {e.code}" if e.code else ""
        details = event_details(e.details)
        lines.append(f"  {format_moment(e.at, data.timezone)}  {event_name(e.kind)}{code} — {e.actor}"
                     + (f" ({details})" if details else ""))
    return lines
