"""The one way a blueprint reaches the running parts: ``current_services()`` inside a request.
``create_app`` stores them with :func:`install`; nothing else touches ``app.extensions``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from ..services import Services

_KEY = "playlistgen"


def install(app: Flask, services: Services) -> None:
    app.extensions[_KEY] = services


def current_services() -> Services:
    """The Services of the app handling the current request."""
    return current_app.extensions[_KEY]
