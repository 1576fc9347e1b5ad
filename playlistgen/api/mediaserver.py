"""The media-server link: GET /api/v1/mediaserver/status, POST /api/v1/mediaserver/link."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..core.integrations.mediaserver.status import link_status
from ..errors import PlaylistgenError
from .args import bool_arg
from .context import current_services

bp = Blueprint("mediaserver", __name__, url_prefix="/api/v1/mediaserver")


class LinkOffError(PlaylistgenError):
    code = "mediaserver_off"
    status = 409


@bp.get("/status")
def status():  # type: ignore[no-untyped-def]
    services = current_services()
    service = getattr(services, "mediaserver", None)
    if service is not None:
        body = service.status()
        body["health"] = service.health()
    else:
        body = link_status(services.db, services.settings)
    return jsonify(body)


@bp.post("/link")
def relink():  # type: ignore[no-untyped-def]
    """Re-link now. ``?wait=true`` links in this request and answers the report (or the error);
    otherwise the link thread is woken and the answer is 202."""
    wait = bool_arg("wait", False)   # a malformed request is a 400 whether the link is on or off
    services = current_services()
    service = getattr(services, "mediaserver", None)
    if service is None:
        raise LinkOffError("the media-server link is off",
                           hint="set mediaserver.url, mediaserver.user and mediaserver.password, then restart serve")
    if wait:
        return jsonify({"linked": service.link_now()})
    service.request_link()
    return jsonify({"queued": True, "status": "/api/v1/mediaserver/status"}), 202
