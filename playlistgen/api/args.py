"""Query-string helpers shared by the playlist/track blueprints, and the playlist service lookup."""

from __future__ import annotations

import math

from flask import request

from ..errors import BadRequestError
from .context import current_services


def playlist_service():  # type: ignore[no-untyped-def]
    """The PlaylistService built by the entry point (create_app fills it in when absent)."""
    return current_services().playlists


def int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)   # an empty value is not a number: 400, as the description's type integer says
    except ValueError:
        raise BadRequestError(f"parameter '{name}' must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequestError(f"parameter '{name}' must be between {low} and {high}, got {value}")
    return value


def float_arg(name: str) -> float | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequestError(f"parameter '{name}' must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise BadRequestError(f"parameter '{name}' must be a finite number, got {raw!r}")
    return value


def str_arg(name: str, max_len: int = 500) -> str | None:
    """The parameter's text; empty or blank means absent (checked after the length and NUL rules,
    as the OpenAPI description states them)."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if len(raw) > max_len:
        raise BadRequestError(f"parameter '{name}' is longer than {max_len} characters")
    if "\x00" in raw:
        raise BadRequestError(f"parameter '{name}' contains a NUL character")
    return raw if raw.strip() else None


def bool_arg(name: str, default: bool) -> bool:
    """``true`` or ``false`` (any case); absent means ``default``. Anything else (``null``, ``1``,
    an empty value) is a 400, as the OpenAPI description (type boolean) says."""
    raw = request.args.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "false"):
        return value == "true"
    raise BadRequestError(f"parameter '{name}' must be true or false, got {raw!r}")
