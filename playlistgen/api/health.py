"""GET /health: liveness and readiness of each component."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify

from ..core.migrate import latest_version

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():  # type: ignore[no-untyped-def]
    services = current_app.extensions["playlistgen"]
    db_ready = services.db.ready()
    components = {"database": {"ready": db_ready, "path": str(services.db.path),
                               "schema_version": latest_version()}}
    if services.daemon is not None:
        daemon = services.daemon.health()
        components["analysis"] = daemon["analysis"]
        components["library"] = daemon["library"]
    ready = all(c.get("ready", True) for c in components.values())
    body = {"status": "ok" if ready else "degraded", "ready": ready,
            "uptime_s": round(time.time() - services.started_at, 3), "components": components}
    return jsonify(body), 200 if ready else 503
