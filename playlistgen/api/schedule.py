"""Scheduled mixes: list them, and generate them now (``POST /api/v1/playlists/schedule/run``,
optionally ``{"names": [...]}``; without names every entry of ``playlists.schedule`` runs)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..core.playlists.schedule import MixScheduler
from ..errors import BadRequestError
from .context import current_services

bp = Blueprint("schedule", __name__, url_prefix="/api/v1/playlists/schedule")
EMPTY_HINT = "add entries to playlists.schedule, e.g. {name: Daily mix 1, strategy: for_you, at: '07:00', size: 40}"


def _mixes() -> MixScheduler:
    return current_services().mixes


@bp.get("")
def index():  # type: ignore[no-untyped-def]
    mixes = _mixes().describe()
    return jsonify({"mixes": mixes, **({} if mixes else {"hint": EMPTY_HINT})})


@bp.post("/run")
def run_now():  # type: ignore[no-untyped-def]
    body: dict = {}
    if request.content_length:   # no body: every mix; a body must be a JSON object (not null, not text)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequestError("the request body must be a JSON object", hint='e.g. {"names": ["Daily mix 1"]}')
        unknown = sorted(set(body) - {"names"})
        if unknown:
            raise BadRequestError(f"unknown field '{unknown[0]}'", hint='the body takes only "names"')
    names = body.get("names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise BadRequestError("'names' must be a list of scheduled mix names", hint='e.g. {"names": ["Daily mix 1"]}')
    results = _mixes().run(names)
    out: dict = {"mixes": results}
    if not results:
        out["hint"] = EMPTY_HINT
    return jsonify(out), 200 if all(r["ok"] for r in results) else 207
