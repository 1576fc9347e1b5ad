"""Which decoders the analysis worker lets ``decode.py`` use, and which one is running now.

A decoder can crash its process (a segfault in native code). The worker sets, per file and per
thread, decoders to skip (those that crashed on this file before) and a callback told the decoder
about to run native code, so a crash can be blamed on it (see ``core/execution/local.py``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

DECODERS = ("soundfile", "essentia", "audioread")   # the chain, in order (SourceInfo.decoder)
CRASH_ENV = "PLAYLISTGEN_TEST_CRASH_DECODERS"   # tests only: these decoders segfault when entered
_ERROR_NAMES = {"soundfile": "libsndfile", "essentia": "ffmpeg", "audioread": "audioread"}

# Per thread: each analysis worker thread (or process) sets its own policy for its file.
_POLICY = threading.local()


@contextmanager
def decoder_policy(skip: Iterable[str] = (),
                   on_decoder: Callable[[str | None], None] | None = None) -> Iterator[None]:
    """Within the block (this thread only): leave the decoders named in ``skip`` out of the
    chain, and call ``on_decoder(name)`` whenever a decoder starts running native code and
    ``on_decoder(None)`` when control returns to the caller."""
    unknown = set(skip) - set(DECODERS)
    if unknown:
        raise ValueError(f"unknown decoders {sorted(unknown)}: choose from {', '.join(DECODERS)}")
    saved = getattr(_POLICY, "skip", frozenset()), getattr(_POLICY, "on_decoder", None)
    _POLICY.skip, _POLICY.on_decoder = frozenset(skip), on_decoder
    try:
        yield
    finally:
        _POLICY.skip, _POLICY.on_decoder = saved


def skipped(name: str, errors: list[str]) -> bool:
    """True when the policy leaves ``name`` out (noted in ``errors``, the file's failure reason)."""
    if name in getattr(_POLICY, "skip", ()):
        errors.append(f"{_ERROR_NAMES[name]}: skipped")
        return True
    return False


def entering(name: str | None) -> None:
    """Say which decoder runs now (None: none); the worker records it where a crash leaves it."""
    callback = getattr(_POLICY, "on_decoder", None)
    if callback is not None:
        callback(name)
    if name and name in os.environ.get(CRASH_ENV, "").split(","):
        os.kill(os.getpid(), signal.SIGSEGV)   # a real native crash, for the executor's tests
