"""The app's JSON, both ways.

* **Responses never hold NaN or Infinity.** Python's json writes them as the bare words ``NaN`` /
  ``Infinity``, which are not JSON: a browser's ``JSON.parse`` (the dashboard, any web client)
  rejects the whole body. A non-finite number means "no value" here, so it is written as ``null``
  and the log says where (one warning per response). Bodies without one (all of them, normally)
  are written in one pass: ``allow_nan=False`` finds the case, and only then is the body walked.
* **Request bodies** are JSON only: ``NaN``/``Infinity`` (which Python's json would take) and numbers
  past a float's range (``1e999``) are a malformed body, as is one nested deeper than Python's
  recursion limit (ValueError, so 400 — not a RecursionError, 500).

:func:`dumps_finite` is also what the Subsonic renderer writes its JSON with.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

from flask.json.provider import DefaultJSONProvider

log = logging.getLogger(__name__)

MAX_NAMED = 5   # places named in the warning


def finite(value: Any, where: str, found: list[str]) -> Any:
    """``value`` with every non-finite float (numpy's float64 included) replaced by None;
    ``found`` collects where they were (``tracks[3].energy``)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        found.append(where or "the body")
        return None
    if isinstance(value, dict):
        return {k: finite(v, f"{where}.{k}" if where else str(k), found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v, f"{where}[{i}]", found) for i, v in enumerate(value)]
    return value


def dumps_finite(obj: Any, *, default: Callable[[Any], Any] | None = None, **kwargs: Any) -> str:
    """``json.dumps`` that writes a non-finite number as null (and logs where), never as NaN/Infinity."""
    kwargs["allow_nan"] = False
    try:
        return json.dumps(obj, default=default, **kwargs)
    except ValueError as exc:
        if not str(exc).startswith("Out of range float"):
            raise
    found: list[str] = []
    hook = None if default is None else (lambda o: finite(default(o), type(o).__name__, found))
    text = json.dumps(finite(obj, "", found), default=hook, **kwargs)
    more = f" and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
    log.warning("a JSON response held non-finite numbers, sent as null: %s%s", ", ".join(found[:MAX_NAMED]), more)
    return text


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's provider with the two rules of the module docstring."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return dumps_finite(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", _not_json)   # NaN, Infinity, -Infinity
        kwargs.setdefault("parse_float", _finite_float)  # 1e999
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _not_json(token: str) -> float:
    raise ValueError(f"{token} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of a float's range")
    return value
