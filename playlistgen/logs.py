"""Logging set-up: the only place that adds log handlers (called by the command entry points)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class RepeatFilter(logging.Filter):
    """Rate-limits repeated warnings and errors (6,500 ``waitress.queue`` lines in 30 s under load):
    the first record of a kind (logger, level, message template) passes, the same kind within
    ``interval_s`` is counted instead, and the next one after the interval passes carrying that
    count. Records with a traceback always pass; INFO and DEBUG are never limited."""

    MAX_KINDS = 1000

    def __init__(self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self._kinds: dict[tuple, list] = {}   # kind → [time it last passed, records dropped since]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.exc_info:
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            state = self._kinds.get(kind)
            if state is not None and now - state[0] < self.interval_s:
                state[1] += 1
                return False
            if len(self._kinds) >= self.MAX_KINDS:  # forget kinds that are quiet
                self._kinds = {k: v for k, v in self._kinds.items() if now - v[0] < self.interval_s}
            self._kinds[kind] = [now, 0]
        if state is not None and state[1]:
            record.msg = f"{record.msg} [{state[1]} more like this in the last {now - state[0]:.0f} s]"
        return True


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
