"""The one helper that declares a settings field (its default, help line and limits); the
sections live in ``config.py`` and ``config_*.py``."""

from __future__ import annotations

import copy
from dataclasses import field
from typing import Any


def setting(default: Any, help: str, *, choices: tuple | None = None,
            min: float | None = None, max: float | None = None) -> Any:
    """A settings field: its default, one help line, and optional limits."""
    meta = {"help": help, "choices": choices, "min": min, "max": max}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)
