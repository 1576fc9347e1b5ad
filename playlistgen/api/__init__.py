"""HTTP API. ``create_app`` only wires blueprints to already-built services (``playlistgen.app``
builds them): it builds no part, starts no threads and opens no files."""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request

from ..config import Settings
from ..logs import redact_params
from ..services import Services
from .auth import require_api_key
from .context import install
from .dashboard import bp as dashboard_bp
from .errors import register_error_handlers
from .health import bp as health_bp
from .integrations import register_integrations
from .json_provider import SafeJSONProvider
from .library import bp as library_bp
from .mediaserver import bp as mediaserver_bp
from .openapi import bp as openapi_bp
from .performance import bp as performance_bp
from .playlists import bp as playlists_bp
from .security import install_security
from .tracks import bp as tracks_bp
from .upload import bp as upload_bp

log = logging.getLogger(__name__)


def create_app(settings: Settings, services: Services) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.api.max_upload_mb * 1024 * 1024
    app.config["JSON_SORT_KEYS"] = False
    app.json = SafeJSONProvider(app)   # never NaN/Infinity in a response; too-deep bodies are 400
    install(app, services)
    register_error_handlers(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(library_bp)
    app.register_blueprint(performance_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(mediaserver_bp)
    for blueprint in (tracks_bp, playlists_bp, upload_bp, openapi_bp):
        app.register_blueprint(blueprint)
    register_integrations(app, services)  # AudioMuse routes, scheduled mixes, /rest proxy
    require_api_key(app, settings.api.key)
    install_security(app, settings.api.host, settings.api.allowed_hosts)  # runs before the key check
    slow_ms = settings.api.slow_request_ms

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _process_time(response):  # type: ignore[no-untyped-def]
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        response.headers["X-Process-Time"] = f"{elapsed:.6f}"
        if services.metrics is not None:  # one timer per route rule, not per concrete path
            rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
            services.metrics.observe_http(request.method, rule, response.status_code, elapsed)
        if slow_ms and elapsed * 1000 > slow_ms:
            log.warning("slow request %s %s %.0f ms args=%s", request.method, request.path,
                        elapsed * 1000, redact_params(request.args))
        return response

    return app
