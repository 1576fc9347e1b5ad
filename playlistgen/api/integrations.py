"""Wiring of the media-server integrations into the app: the AudioMuse-compatible routes, the
scheduled-mix routes, and — when the app built the Subsonic upstream (``mediaserver.proxy``) —
the ``/rest`` proxy. Every part they use is already in ``services``."""

from __future__ import annotations

from flask import Flask

from ..services import Services
from .audiomuse import bp as audiomuse_bp
from .schedule import bp as schedule_bp


def register_integrations(app: Flask, services: Services) -> None:
    app.register_blueprint(audiomuse_bp)
    app.register_blueprint(schedule_bp)
    if services.upstream is not None:
        from .subsonic.proxy import bp as proxy_bp

        app.register_blueprint(proxy_bp)
