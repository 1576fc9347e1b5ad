"""Library status, rescans and failures."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify

from ..core.library.reconcile import library_counts
from ..core.similarity.refit import status as similarity_status
from ..core.storage.jobs import failed_files
from ..errors import PlaylistgenError
from .args import int_arg
from .context import current_services

bp = Blueprint("library", __name__, url_prefix="/api/v1")


def _services():  # type: ignore[no-untyped-def]
    return current_services()


class NoDaemonError(PlaylistgenError):
    code = "unavailable"
    status = 503


def _daemon():  # type: ignore[no-untyped-def]
    daemon = _services().daemon
    if daemon is None:
        raise NoDaemonError("the analysis daemon is not running in this process",
                               hint="start it with `playlistgen serve`")
    return daemon


def _eta(remaining: int, files_per_min: float) -> float | None:
    if not remaining:
        return 0.0
    return round(remaining / files_per_min * 60, 1) if files_per_min > 0 else None


@bp.get("/library/status")
def status():  # type: ignore[no-untyped-def]
    services = _services()
    counts = library_counts(services.db)
    body: dict = {"counts": counts}
    playlists = services.playlists
    if playlists is not None:   # tracks playlists.exclude leaves out (null until the index is built)
        body["excluded"] = {"tracks": playlists.excluded_count(),
                            "rules": playlists.exclusions.configured.to_dict()}
    body["similarity"] = _similarity(services)
    daemon = services.daemon
    if daemon is not None:
        snapshot = daemon.status()
        analysis = snapshot.analysis
        rate = analysis["files_per_min"]
        remaining = counts["pending"] + counts["analysing"]
        body.update({
            "queue_depth": remaining,
            "in_flight": analysis["in_flight"],
            "files_per_min": rate,
            "eta_s": _eta(remaining, rate),
            "analysis": analysis,
            "scan": snapshot.library["scan"],
            "last_scan": snapshot.last_scan,
            "watcher": snapshot.library["watcher"],
            "preset": services.settings.analysis.preset,
            # older analyses being completed in the background (core/library/upgrade.py)
            "upgrade": analysis.get("upgrade"),
        })
    body["time"] = time.time()
    return jsonify(body)


def _similarity(services) -> dict:  # type: ignore[no-untyped-def]
    """Which projection "sounds like" uses: the one a catalog built now would use, the one the
    current index was built with (they differ for a moment after a refit), the background refit."""
    body = similarity_status(services.db, services.settings.similarity)
    catalog = services.playlists.index.peek() if services.playlists is not None else None
    if catalog is not None and catalog.space is not None:
        body["index"] = catalog.space.describe()
    if services.refitter is not None:
        body["refit"] = services.refitter.health()
    return body


@bp.post("/library/scan")
def scan():  # type: ignore[no-untyped-def]
    queued = _daemon().library_service.request_scan("api")
    message = "reconcile queued" if queued else "a reconcile is already queued"
    return jsonify({"accepted": queued, "message": message}), 202


@bp.get("/tracks/failed")
def failed():  # type: ignore[no-untyped-def]
    services = _services()
    limit = int_arg("limit", 100, 1, 1000)
    offset = int_arg("offset", 0, 0, 10**9)
    total = services.db.query("SELECT count(*) FROM files WHERE status = 'failed'")[0][0]
    return jsonify({"total": total, "failed": failed_files(services.db, limit, offset)})
