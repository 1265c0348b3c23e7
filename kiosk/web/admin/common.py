"""What the admin panel's areas share: the page renderer, the month in a query,
the printers an admin may choose."""
from __future__ import annotations

from datetime import date

from flask import abort, current_app, render_template, request

from kiosk.domain.clock import local_day, month_window, parse_month, utcnow
from kiosk.wording.names import (card_check_name, check_digit_name, event_name, facts_in_words, pattern_example,
                                 pool_label, printer_name, refusal_name)

# Stored values in words, for every admin page.
IN_WORDS = dict(printer_name=printer_name, card_check_name=card_check_name, check_digit_name=check_digit_name,
                event_name=event_name, facts_in_words=facts_in_words, pattern_example=pattern_example,
                pool_label=pool_label, refusal_name=refusal_name)


def page(template: str, status: int = 200, **context):
    return render_template(template, **IN_WORDS, **context), status


def printer_choices() -> list[str]:
    """What a library admin may pick: the browser, and the printers the operator
    listed in PRINTERS (config.py). A free-form setting would let an admin make the
    server write to any file or connect to any host."""
    return ["browser", *current_app.config.get("PRINTERS", [])]


def month_arg() -> tuple[date, date]:
    text = request.args.get("month")
    if text:
        try:
            return parse_month(text)
        except ValueError:
            abort(400)
    today = local_day(utcnow())
    return month_window(today.year, today.month)

