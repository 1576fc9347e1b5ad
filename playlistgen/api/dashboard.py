"""GET /dashboard (one page, its JS/CSS served from ./static: works offline) and the library
overview JSON it draws its charts from."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from ..core.observe.overview import cached_overview
from .context import current_services

REFRESH_S = 5

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/dashboard/static")


@bp.get("/dashboard")
def dashboard():  # type: ignore[no-untyped-def]
    # the page carries no data (it is served without the API key); its JS fetches everything
    return render_template("dashboard.html", refresh_s=REFRESH_S)


@bp.get("/api/v1/library/overview")
def overview():  # type: ignore[no-untyped-def]
    services = current_services()
    return jsonify(cached_overview(services.db, getattr(services, "cache", None)))
