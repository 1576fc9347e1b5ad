"""Scheduled mixes (``playlists.schedule``): each entry ``{name, strategy, at: "HH:MM", ...}`` is a
playlist request generated once a day after its time (local time of the server) and on demand
(``POST /api/v1/playlists/schedule/run``), saved under its stable name: the first run saves a new
playlist, later runs replace that playlist's tracks in place (same id, same M3U8 file), and the
service's ``on_saved`` hooks (the media-server push) update the server playlist in place — "Daily
mix 1" is refreshed, never duplicated. The entry's other keys are the request (``size``,
``seeds``, ``filters``, ``params``, strategy parameters...), checked once when serve starts.

The saved playlist carries ``params.schedule`` (the entry's name) and ``params.generated_at``; a
mix is due when today's time has passed and it was not generated since, so a daemon that was down
at 07:00 catches up when it starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ...config import Settings
from ...errors import ConfigError, PlaylistgenError
from ..loops import BackgroundLoop
from . import store
from .names import UnknownNameError
from .service import PlaylistRequest, PlaylistService

log = logging.getLogger(__name__)

POLL_S = 60.0  # the thread re-checks at least this often (clock changes, daylight saving)


@dataclass(frozen=True)
class ScheduledMix:
    name: str
    hour: int
    minute: int
    request: PlaylistRequest  # the entry's other keys (not at), named after the mix, never saved by generate

    @classmethod
    def from_entry(cls, entry: dict, settings: Settings) -> ScheduledMix:
        """Raises PlaylistgenError when the entry is not a valid playlist request."""
        hh, _, mm = str(entry["at"]).partition(":")
        name = str(entry["name"])
        body = {k: v for k, v in entry.items() if k not in ("name", "at")}
        request = PlaylistRequest.parse({**body, "name": name}, settings)
        return cls(name, int(hh), int(mm), replace(request, save=False))  # saved by name here, in place

    def time_on(self, day: datetime) -> datetime:
        return day.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)


class MixScheduler:
    """Built in the entry point; ``start()`` runs the daily thread (serve), ``run()`` generates now."""

    def __init__(self, service: PlaylistService, settings: Settings, *,
                 now: Callable[[], datetime] = datetime.now, poll_s: float = POLL_S) -> None:
        self.service = service
        self.settings = settings
        self.now = now
        self.poll_s = poll_s
        self.mixes: list[ScheduledMix] = []
        for i, entry in enumerate(settings.playlists.schedule):
            try:
                self.mixes.append(ScheduledMix.from_entry(entry, settings))
            except PlaylistgenError as exc:
                raise ConfigError(f"config key 'playlists.schedule[{i}]' ({entry['name']}): {exc.message}",
                                  hint=exc.hint or "fix the entry's strategy or parameters") from None
        self._lock = threading.Lock()  # one generation at a time: never two playlists for one name
        self._loop = BackgroundLoop("mix-scheduler", self.run_due, interval_s=self.seconds_to_next,
                                    on_error=lambda exc: log.exception("scheduled mixes: unexpected error"))

    # --- generation --------------------------------------------------------------------------
    def saved_id(self, name: str) -> tuple[int | None, float | None]:
        """The saved playlist of a scheduled mix and when it was generated (unix time)."""
        rows = self.service.db.query(
            "SELECT id, json_extract(params, '$.generated_at') FROM playlists "
            "WHERE json_extract(params, '$.schedule') = ? ORDER BY id LIMIT 1", (name,))
        return (int(rows[0][0]), rows[0][1]) if rows else (None, None)

    def run(self, names: list[str] | None = None) -> list[dict]:
        """Generate the named mixes (all when None) now; one result per mix (an error is reported
        in its result, the others still run)."""
        known = {m.name: m for m in self.mixes}
        for name in names or []:
            if name not in known:
                raise UnknownNameError("scheduled mix", name, list(known))
        chosen = [known[n] for n in names] if names else self.mixes
        return [self._run_one(mix) for mix in chosen]

    def _run_one(self, mix: ScheduledMix) -> dict:
        with self._lock:
            try:
                result = self.service.generate(mix.request, for_server=True)   # saved below, then pushed
                if not result["tracks"]:  # e.g. right after the first start: stays due, tried again later
                    notes = result["playlist"].get("notes") or ["no tracks matched"]
                    log.debug("scheduled mix '%s' not saved: %s", mix.name, "; ".join(notes))
                    return {"name": mix.name, "ok": False, "error": {
                        "code": "empty_mix", "message": "the mix came out empty, so it was not saved: " + notes[0],
                        "hint": "wait for the analysis, or check the entry's filters and parameters"}}
                meta = result["playlist"]
                meta["params"] = {**meta.get("params", {}), "schedule": mix.name,
                                  "generated_at": self.now().timestamp()}
                existing, _ = self.saved_id(mix.name)
                output_dir = self.settings.playlists.output_dir
                if existing is None:
                    saved = store.save_playlist(self.service.db, output_dir, result, paths=self.service.path_options)
                else:
                    saved = store.replace_playlist(self.service.db, output_dir, existing, result,
                                                   paths=self.service.path_options)
                for hook in self.service.on_saved:
                    try:
                        hook(saved)
                    except PlaylistgenError as exc:  # e.g. the media server is down: the mix itself is saved
                        saved.setdefault("notes", []).append(exc.one_line())
                        log.warning("scheduled mix '%s': %s", mix.name, exc.one_line())
            except PlaylistgenError as exc:
                log.warning("scheduled mix '%s' failed: %s", mix.name, exc.one_line())
                return {"name": mix.name, "ok": False, "error": exc.to_dict()}
        log.info("scheduled mix '%s': %s playlist %d with %d tracks", mix.name,
                 "refreshed" if existing is not None else "saved", saved["id"], len(result["tracks"]))
        return {"name": mix.name, "ok": True, "playlist_id": saved["id"], "refreshed": existing is not None,
                "tracks": len(result["tracks"]), "file": saved.get("file"), "notes": saved.get("notes", [])}

    # --- the daily thread --------------------------------------------------------------------
    def due(self, now: datetime | None = None) -> list[ScheduledMix]:
        now = now or self.now()
        out = []
        for mix in self.mixes:
            at = mix.time_on(now)
            if now < at:
                continue
            _, generated = self.saved_id(mix.name)
            if generated is None or datetime.fromtimestamp(generated) < at:
                out.append(mix)
        return out

    def run_due(self) -> list[dict]:
        return [self._run_one(mix) for mix in self.due()]

    def seconds_to_next(self, now: datetime | None = None) -> float:
        now = now or self.now()
        waits = []
        for mix in self.mixes:
            at = mix.time_on(now)
            waits.append(((at if at > now else at + timedelta(days=1)) - now).total_seconds())
        return max(1.0, min([self.poll_s, *waits]))

    def start(self) -> None:
        if not self.mixes or self._loop.running:
            return
        self._loop.start()
        log.info("scheduled mixes: %s", ", ".join(f"{m.name} at {m.hour:02d}:{m.minute:02d}" for m in self.mixes))

    def stop(self, timeout: float = 5.0) -> None:
        self._loop.stop(timeout)

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for mix in self.mixes:
            playlist_id, generated = self.saved_id(mix.name)
            out.append({"name": mix.name, "at": f"{mix.hour:02d}:{mix.minute:02d}",
                        "strategy": mix.request.strategy.name, "playlist_id": playlist_id, "generated_at": generated})
        return out
