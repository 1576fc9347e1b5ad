"""What the daemon takes from a Dask peer it does not trust (a worker, a nanny, a scheduler in
another process): plain data, never a pickle.

Dask's wire format lets any peer run code where a message is read: ``__Pickled__`` parts are
unpickled while the frames are decoded (before any handler sees the operation), ``__Serialized__``
parts are a pickle or name a pickled type, and a client unpickles bytes it gets back in some fields
(an error's ``exception``, a finished task's ``type``). So a message from such a peer is decoded
here instead of by ``distributed.protocol.loads``: msgpack, where pickled and serialized parts are
loaded by an unpickler that knows no class or function (only None, numbers, str, lists, tuples,
dicts and sets can come out), bytes become None, and whatever else is not plain becomes the
:data:`REFUSED` note. What passes cannot run code anywhere it travels next (the scheduler hands
worker data on to the daemon's client).

Dask's own workers send pickles in only two places, and both degrade to text: a task's error
(its ``exception_text`` stands in for the exception) and a finished task's pickled type (None:
the client does without it). Analysis results travel as JSON text (see ``payload.py``).
"""

from __future__ import annotations

import io
import pickle
from enum import Enum
from typing import Any

import msgpack

REFUSED = "<refused: not plain data>"
_SCALARS = (type(None), bool, int, float, str)


class _NoGlobals(pickle.Unpickler):
    """Loads only what pickle builds without naming a class or function."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def unpickle_plain(data: Any, buffers: list | tuple = ()) -> Any:
    """A pickle of plain data, else :data:`REFUSED`."""
    try:
        return plain(_NoGlobals(io.BytesIO(bytes(data)), buffers=list(buffers)).load())
    except Exception:
        return REFUSED


def plain(value: Any) -> Any:
    """``value`` with bytes dropped (None, as if absent: Dask's client unpickles some) and every
    other thing that is not plain data replaced by :data:`REFUSED`."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        out = {plain(k): plain(v) for k, v in value.items()}
        if out.get("exception") in (REFUSED, None) and isinstance(out.get("exception_text"), str):
            out["exception"] = out["exception_text"]   # Dask's error replies: the text stands in
        return out
    if isinstance(value, Enum) and type(value).__module__.split(".")[0] in ("distributed", "dask"):
        return value
    return REFUSED


def loads(frames: list) -> Any:
    """Decode one message (Dask's frames) from an untrusted peer."""
    from distributed.protocol.utils import msgpack_opts

    def hook(obj: dict) -> Any:
        if "__Pickled__" in obj or "__Serialized__" in obj:
            return _part(obj, frames)
        if "__Enum__" in obj:
            return _enum(obj)
        if "__Set__" in obj:
            return set(obj.get("as-list") or ())
        return obj

    return plain(msgpack.loads(frames[0], object_hook=hook, use_list=False, **msgpack_opts))


def _part(obj: dict, frames: list) -> Any:
    """A ``__Pickled__`` or ``__Serialized__`` part: its header frame, then its own frames."""
    from distributed.protocol.utils import msgpack_opts

    offset = obj.get("__Pickled__") or obj.get("__Serialized__")
    if type(offset) is not int or not 0 < offset < len(frames):
        return REFUSED
    try:
        header = msgpack.loads(frames[offset], use_list=False, **msgpack_opts)
        parts = list(frames[offset + 1: offset + 1 + int(header["num-sub-frames"])])
        if "compression" in header:
            from distributed.protocol.compression import decompress

            parts = decompress(header, parts)
        if "__Pickled__" in obj:
            return unpickle_plain(header["pickled-obj"], parts)
        return _deserialized(header, parts)
    except Exception:
        return REFUSED


def _deserialized(header: dict, parts: list) -> Any:
    """Dask's ``serialize`` output, for the families that can hold plain data."""
    from distributed.protocol.utils import msgpack_opts

    if "split-num-sub-frames" in header:
        parts = [b"".join(bytes(p) for p in parts[offset: offset + n])
                 for n, offset in zip(header["split-num-sub-frames"], header["split-offsets"], strict=True)]
    family = header.get("serializer")
    if family == "pickle" and parts:
        return unpickle_plain(parts[0], parts[1:])
    if family == "msgpack":
        return plain(msgpack.loads(b"".join(bytes(p) for p in parts), use_list=False, **msgpack_opts))
    return REFUSED


def _enum(obj: dict) -> Any:
    """A Dask enum (e.g. a worker status) by name, never anything else from those modules."""
    from distributed.protocol.serialize import import_allowed_module

    try:
        typ = getattr(import_allowed_module(obj["__module__"]), obj["__name__"])
        if isinstance(typ, type) and issubclass(typ, Enum):
            return typ[obj["name"]]
    except Exception:
        pass
    return REFUSED
