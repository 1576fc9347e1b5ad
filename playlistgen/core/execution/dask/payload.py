"""One remote analysis on its way back from a Dask worker: JSON text, checked field by field
(and the worker's events, checked the same way).

A worker is trusted to analyse, not to run code in the daemon (``guard.py``), so what it returns
is data the daemon parses, never a pickle: :func:`encode` on the worker, :func:`decode` in the
executor, which refuses anything that is not text of the right shape and types (so a hostile
worker can send wrong numbers, but not objects the job queue or the writer would trip over).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any

from ...analysis.result import AnalysisResult, WorkerStats
from .plain import REFUSED


class MalformedResult(ValueError):
    """What a worker sent is not a result of this shape."""


@dataclass
class RemoteOutcome:
    result: AnalysisResult | None
    error: str | None
    worker: WorkerStats
    not_ready: str | None = None   # the worker could not analyse at all: not the file's fault


def encode(result: AnalysisResult | None, error: str | None, worker: WorkerStats,
           not_ready: str | None = None) -> str:
    return json.dumps({"result": result.to_dict() if result is not None else None, "error": error,
                       "worker": worker.to_dict(), "not_ready": not_ready}, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):   # numpy scalars and arrays an analyzer may leave in
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def decode(value: Any) -> RemoteOutcome:
    """The outcome a worker sent, or MalformedResult saying what is wrong with it."""
    if value == REFUSED:
        raise MalformedResult("not plain data (a pickle, which the daemon does not load from workers)")
    if not isinstance(value, str):
        raise MalformedResult(f"not plain data (a {type(value).__name__}, not JSON text)")
    try:
        data = json.loads(value)
    except ValueError:
        raise MalformedResult("not JSON") from None
    if not isinstance(data, dict):
        raise MalformedResult(f"a JSON {type(data).__name__}, not an object")
    for key, hint in (("result", dict | None), ("error", str | None), ("worker", dict), ("not_ready", str | None)):
        if not _fits(data.get(key), hint):
            raise MalformedResult(f"{key!r} is not a {hint}")
    _check(data["worker"], WorkerStats, "worker")
    if data["result"] is not None:
        _check(data["result"], AnalysisResult, "result")
    result = AnalysisResult.from_dict(data["result"]) if data["result"] is not None else None
    return RemoteOutcome(result, data["error"], WorkerStats.from_dict(data["worker"]), data["not_ready"])


# what the worker events (worker.TOPIC_*) may carry; other fields are dropped
EVENT_FIELDS: dict[str, Any] = {"address": str, "host": str | None, "pid": int | None, "name": str | None,
                                "nthreads": int, "file_id": int, "at": float, "reason": str | None}


def event(msg: Any, required: tuple[str, ...]) -> dict | None:
    """A worker's event with only known fields of the right types, or None when it is malformed."""
    if not isinstance(msg, dict) or any(key not in msg for key in required):
        return None
    out = {key: msg[key] for key in EVENT_FIELDS if key in msg}
    return out if all(_fits(value, EVENT_FIELDS[key]) for key, value in out.items()) else None


def _check(data: dict, cls: type, where: str) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in data and not _fits(data[f.name], hints[f.name]):
            raise MalformedResult(f"{where}.{f.name} is not a {hints[f.name]}")


def _fits(value: Any, hint: Any) -> bool:
    """``value`` (parsed JSON) matches the type ``hint`` of a result field."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:   # metadata values: tag text and numbers
        return value is None or isinstance(value, (str, int, float))
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint in (int, str, bool, dict):
        return type(value) is hint
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict) and all(
            _fits(value[f.name], typing.get_type_hints(hint)[f.name]) for f in dataclasses.fields(hint)
            if f.name in value)
    return False
