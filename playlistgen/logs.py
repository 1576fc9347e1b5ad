"""Logging set-up: the only place that adds log handlers (called by the command entry points).

Subsonic credentials travel in URLs (``u``, ``p`` — ``enc:`` is the password in hex —, ``t``,
``s``, ``apiKey``): :class:`RedactFilter` replaces their values in every line written, whoever
logged it (a request line, an exception naming a URL), and urllib3's DEBUG line per request, which
is nothing but such a URL, is not logged at all.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping

SECRET_PARAMS = frozenset({"u", "p", "t", "s", "apikey"})   # compared in lower case
_SECRET_IN_URL = re.compile(r"(?<=[?&;])(u|p|t|s|apikey)=[^&\s#'\"]*", re.IGNORECASE)
QUIET_LOGGERS = ("urllib3",)   # DEBUG: one line per request with its full URL


def redact(text: str) -> str:
    """``text`` with the values of URL parameters named in SECRET_PARAMS replaced by ``***``."""
    return _SECRET_IN_URL.sub(lambda m: m.group(1) + "=***", text) if "=" in text else text


def redact_params(params: Mapping[str, str]) -> dict[str, str]:
    """Query or form parameters fit for a log line."""
    return {k: "***" if k.lower() in SECRET_PARAMS else v for k, v in params.items()}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry)


class RedactFilter(logging.Filter):
    """Redacts Subsonic credentials in the message and the traceback of every record (see :func:`redact`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:   # a malformed record: logging reports it when formatting
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


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
    handler.addFilter(RedactFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
