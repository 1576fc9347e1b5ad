"""GET /health: liveness and readiness of each component."""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, jsonify, request

from ..core.storage.migrate import latest_version
from .context import current_services

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():  # type: ignore[no-untyped-def]
    services = current_services()
    database = services.db.health()   # ready + the writer's state (degraded while writes fail)
    components = {"database": {**database, "degraded": database["writer"]["degraded"],
                               "schema_version": latest_version()}}
    if services.daemon is not None:
        status = services.daemon.status()
        components["analysis"] = status.analysis
        components["library"] = status.library
    if getattr(services, "mediaserver", None) is not None:  # degraded, never down: analysis and API go on
        components["mediaserver"] = services.mediaserver.health()
    if getattr(services, "mpd", None) is not None:  # the MPD radio: degraded while MPD is away
        components["mpd"] = services.mpd.health()
    ready = all(c.get("ready", True) for c in components.values())
    degraded = any(c.get("degraded") for c in components.values())
    body = {"status": "ok" if ready and not degraded else "degraded", "ready": ready,
            "problems": _problems(components),
            "uptime_s": round(time.time() - services.started_at, 3), "components": components}
    if _keyed(services.settings.api.key):   # the folders are no business of an anonymous caller
        body["paths"] = _paths(services.settings)
    return jsonify(body), 200 if ready else 503


def _keyed(key: str) -> bool:
    """/health needs no key; the paths are shown without api.key, or to a caller sending it."""
    if not key:
        return True
    supplied = request.headers.get("X-API-Key", "")
    return hmac.compare_digest(supplied.encode(), key.encode())


def _paths(settings) -> dict:  # type: ignore[no-untyped-def]
    """The resolved paths (config_paths: relative ones are made absolute when settings load)."""
    return {"config_file": settings.config_file, "database": settings.database.path,
            "library": list(settings.library.paths), "models_dir": settings.analysis.models_dir,
            "output_dir": settings.playlists.output_dir, "data_dir": settings.data_dir}


def _problems(components: dict) -> list[str]:
    """One line per thing that needs the operator (the dashboard shows them)."""
    out = []
    writer = components["database"]["writer"]
    if writer["degraded"]:
        out.append(f"database writes failing ({writer['consecutive_failures']} in a row): {writer['last_error']}")
    analysis = components.get("analysis") or {}
    if analysis.get("unsaved_results"):
        out.append(f"{analysis['unsaved_results']} analysis result(s) waiting to be written")
    library = components.get("library") or {}
    out += list((library.get("unavailable_roots") or {}).values())
    if library.get("storage_error"):
        out.append(f"library: {library['storage_error']}")
    mpd = components.get("mpd") or {}
    if mpd.get("degraded"):
        out.append(f"MPD radio: {mpd['server']} unavailable ({mpd['last_error']}); retrying")
    return out
