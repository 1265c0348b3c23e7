"""HTTP views, one blueprint per audience; each parses the request, calls the
domain (writes through kiosk.app.units.write) and picks a template."""
from __future__ import annotations

from flask import Flask, g


def asset_version(app: Flask) -> str:
    """A short hash of the scripts and styles: in their URLs (no stale copy in a cache)
    and in every htmx request, so a kiosk page left open across an upgrade reloads."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    for name in ("kiosk.js", "staff.js", "kodomat.css", "online.css"):
        digest.update((Path(app.static_folder) / name).read_bytes())
    return digest.hexdigest()[:10]


def register_web(app: Flask) -> None:
    from kiosk.domain.accounts import dummy_hash
    from kiosk.domain.clock import format_date, format_moment
    from kiosk.storage.models import Role
    from kiosk.web import admin, api, auth, desk, edge, errors, kiosk as kiosk_views, online, public, reader_data
    from kiosk.web.access import ADMIN_ROLES
    from kiosk.wording.languages import DEFAULT_LANGUAGE, LANGUAGES
    from kiosk.wording.eligibility import ineligible_line, ineligible_sentences, release_sentence
    from kiosk.wording.names import channel_name, role_name

    dummy_hash()  # now, not in the first sign-in with an unknown name (which would take longer)
    for blueprint in (public.bp, kiosk_views.bp, auth.bp, desk.bp, reader_data.bp, admin.bp, online.bp):
        app.register_blueprint(blueprint)
    api.register(app)
    edge.register(app)
    errors.register(app)
    app.jinja_env.filters["warsaw"] = format_moment
    app.config.setdefault("ASSET_VERSION", asset_version(app))
    app.jinja_env.globals.update(asset_version=app.config["ASSET_VERSION"], languages=LANGUAGES, admin_roles=ADMIN_ROLES, Role=Role, role_name=role_name, channel_name=channel_name,
                                 format_date=format_date, ineligible_sentences=ineligible_sentences,
                                 ineligible_line=ineligible_line, release_sentence=release_sentence)

    @app.context_processor
    def language():
        return {"lang": g.get("lang", DEFAULT_LANGUAGE)}
