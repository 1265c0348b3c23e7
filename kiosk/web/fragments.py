"""The one place that tells an htmx request (a fragment swapped into a page) from
a plain one (the whole page): htmx-flask's request.htmx."""
from __future__ import annotations

from flask import render_template
from htmx_flask import request


def is_fragment_request() -> bool:
    return bool(request.htmx)


def render_part(part: str, page: str, status: int = 200, page_context: dict | None = None, **context):
    """The fragment alone for htmx; otherwise the page, which includes it as `part`.
    page_context is what only the page needs; a callable there is called only
    when the page is drawn."""
    if is_fragment_request():
        return render_template(part, **context), status
    extra = {key: value() if callable(value) else value for key, value in (page_context or {}).items()}
    return render_template(page, part=part, **extra, **context), status
