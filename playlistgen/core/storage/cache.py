"""FeatureCache: a generic compressed TTL + LRU cache (per-track feature records, the overview...).

* Bounded by the **compressed** size in bytes (``cache.size_mb``): cachetools' ``TTLCache`` with
  ``getsizeof=len`` over the stored blobs, so the bound is what the cache really holds.
* Entries expire after ``cache.ttl_s``; a small background thread (started by the entry point)
  purges expired entries so their memory is returned even when nobody reads them.
* Values are pickled and compressed with zlib, lz4 or nothing (``cache.compression``). Each ``get``
  unpickles a fresh copy, so a caller can never mutate what the cache holds.
* Keys carry everything that identifies the content: track id, the file's content fingerprint,
  the analyzer version and the preset (:func:`track_key`). A changed file is a new fingerprint
  (a new track row) and a new analyzer version or preset is a new key, so a stale entry can never
  be served; old entries simply age out.

What is cached and under which key is the caller's business: the stored track record and its
read paths (``get_many_features``, ``track_key``) live in :mod:`playlistgen.core.storage.records`.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
import zlib
from collections.abc import Callable, Hashable
from typing import Any

import cachetools

from ...errors import ConfigError
from ..loops import BackgroundLoop

log = logging.getLogger(__name__)
MB = 1024 * 1024
ZLIB_LEVEL = 1     # feature records are mostly float32: level 1 compresses as well as 6, 3× faster


# ----------------------------------------------------------------------------- codecs

def _codec(name: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    if name == "zlib":
        return (lambda b: zlib.compress(b, ZLIB_LEVEL)), zlib.decompress
    if name == "lz4":
        try:
            import lz4.block
        except ImportError:
            raise ConfigError("config key 'cache.compression' is 'lz4' but the lz4 module is not installed",
                              hint="pip install lz4 (it is in requirements.lock), or use compression: zlib") from None
        return (lambda b: lz4.block.compress(b, store_size=True)), lz4.block.decompress
    if name == "none":
        return bytes, bytes
    raise ConfigError(f"config key 'cache.compression' must be zlib, lz4 or none; got {name!r}")


class _Store(cachetools.TTLCache):
    """TTLCache that counts LRU evictions (popitem when full) and TTL expirations."""

    def __init__(self, maxsize: int, ttl: float, timer: Callable[[], float]) -> None:
        super().__init__(maxsize, ttl, timer=timer, getsizeof=len)
        self.evictions = 0
        self.expirations = 0

    def popitem(self):  # type: ignore[no-untyped-def]
        item = super().popitem()
        self.evictions += 1
        return item

    def expire(self, time=None):  # type: ignore[no-untyped-def]
        expired = super().expire(time)
        self.expirations += len(expired)
        return expired


# ----------------------------------------------------------------------------- the cache

class FeatureCache:
    def __init__(self, size_mb: float, ttl_s: float, compression: str = "zlib", *,
                 timer: Callable[[], float] = time.monotonic, max_bytes: int | None = None) -> None:
        self.compression = compression
        self._compress, self._decompress = _codec(compression)
        self.max_bytes = int(size_mb * MB) if max_bytes is None else int(max_bytes)
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._store = _Store(max(self.max_bytes, 1), ttl_s, timer)
        self._hits = self._misses = self._puts = self._too_large = 0
        self._raw_bytes = self._stored_bytes = 0     # of every put, for the compression ratio
        self._purger: BackgroundLoop | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> FeatureCache:
        c = settings.cache
        return cls(c.size_mb, c.ttl_s, c.compression)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, key: Hashable) -> Any | None:
        """The cached value, or None on a miss (expired entries are misses)."""
        with self._lock:
            blob = self._store.get(key) if self.enabled else None
            if blob is None:
                self._misses += 1
                return None
            self._hits += 1
        return pickle.loads(self._decompress(blob))   # outside the lock: readers do not queue

    def put(self, key: Hashable, value: Any) -> bool:
        """Store a value; False when caching is off or the value alone exceeds the byte bound."""
        if not self.enabled:
            return False
        raw = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        blob = self._compress(raw)
        with self._lock:
            self._puts += 1
            self._raw_bytes += len(raw)
            self._stored_bytes += len(blob)
            if len(blob) > self.max_bytes:
                self._too_large += 1
                return False
            self._store[key] = blob
        return True

    def get_or_load(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        value = self.get(key)
        if value is None:
            value = loader()
            if value is not None:
                self.put(key, value)
        return value

    def clear(self) -> dict:
        with self._lock:
            entries, size = len(self._store), self._store.currsize
            self._store.clear()
        log.info("feature cache cleared (%d entries, %.1f MB)", entries, size / MB)
        return {"cleared_entries": entries, "cleared_bytes": size}

    def purge_expired(self) -> int:
        with self._lock:
            return len(self._store.expire())

    def stats(self) -> dict:
        with self._lock:
            lookups = self._hits + self._misses
            return {
                "enabled": self.enabled, "compression": self.compression, "ttl_s": self.ttl_s,
                "entries": len(self._store), "size_bytes": int(self._store.currsize), "max_bytes": self.max_bytes,
                "fill_ratio": round(self._store.currsize / self.max_bytes, 4) if self.max_bytes else 0.0,
                "hits": self._hits, "misses": self._misses, "lookups": lookups,
                "hit_rate": round(self._hits / lookups, 4) if lookups else None,
                "evictions": self._store.evictions, "expirations": self._store.expirations,
                "puts": self._puts, "too_large": self._too_large,
                "compression_ratio": round(self._raw_bytes / self._stored_bytes, 3) if self._stored_bytes else None,
                "avg_entry_bytes": round(self._store.currsize / len(self._store)) if len(self._store) else None,
                "purger_running": self._purger is not None and self._purger.is_alive,
            }

    # ---- background purge ------------------------------------------------------------------
    def start_purger(self, interval_s: float | None = None) -> None:
        """Start the purge thread (the entry point calls this; tests may not)."""
        if self._purger is not None or not self.enabled:
            return
        interval = interval_s if interval_s is not None else min(max(self.ttl_s / 4, 1.0), 60.0)
        self._purger = BackgroundLoop("cache-purge", self._purge, interval_s=interval, wait_first=True,
                                      on_error=lambda exc: log.exception("feature cache purge failed"))
        self._purger.start()

    def stop_purger(self) -> None:
        if self._purger is not None:
            self._purger.stop(5)
            self._purger = None

    def _purge(self) -> None:
        purged = self.purge_expired()
        if purged:
            log.debug("feature cache: purged %d expired entries", purged)
