"""Wiring of the media-server integrations into the app: the AudioMuse-compatible routes, the
scheduled-mix routes, and — with ``mediaserver.proxy`` — the ``/rest`` proxy. Components the
entry point did not build (plain API use, tests) are built here; none opens anything yet."""

from __future__ import annotations

from flask import Flask

from ..config import Settings
from ..services import Services
from .audiomuse import bp as audiomuse_bp
from .schedule import bp as schedule_bp


def register_integrations(app: Flask, settings: Settings, services: Services) -> None:
    if services.sonic is None:
        from ..core.integrations.mediaserver.sonic import SonicSearch

        services.sonic = SonicSearch(services.db, services.playlists, settings)
    if services.mixes is None:
        from ..core.playlists.schedule import MixScheduler

        services.mixes = MixScheduler(services.playlists, settings)
    app.register_blueprint(audiomuse_bp)
    app.register_blueprint(schedule_bp)
    if settings.mediaserver.proxy and settings.mediaserver.url:
        from .subsonic.proxy import bp as proxy_bp
        from .subsonic.upstream import Upstream

        app.extensions["subsonic_upstream"] = Upstream(settings.mediaserver.url)
        app.register_blueprint(proxy_bp)
