"""Endless radio for MPD: keep the queue filled with songs similar to what was just played.

One :class:`MpdRadio` holds one python-mpd2 client. Each step (every ``poll_s``) it reads MPD's
status and queue; a change of the current song is recorded in the play history. When fewer than
``mpd.min_queue`` songs follow the current one, it asks the playlist service for a ``radio``
playlist seeded by the last few played songs (multi-seed blend; before anything was played:
the ``--seed`` songs, else the songs in the queue) that continues the queue: the service leaves
out the last ``mpd.history`` played (queue entries before the current song count as played) and
everything still to come in the queue, and keeps the diversity rules (artist and album gaps...)
across the join. Once every song of the library is among the recently played (a small library, a
long ``mpd.history``), the least recently played become eligible again, as few as needed, and
the radio says so once instead of going quiet. MPD URIs are paths relative to
``mpd.music_directory`` (default: the first library folder).

Skips and plays (``feedback.*``, core/feedback): at each step the radio notes how far MPD says the
current song is (``elapsed``); when another song becomes current, the last position seen decides
— left before ``feedback.skip_threshold_s`` (or half its length) is a skip, heard to (near) its
end a play. Skipped songs are never seeds. One skip is soft, two are hard (counted since the
song's last full play, within ``feedback.avoid_days``): a song skipped once is left out while
enough others remain, and when the radio runs short the once-skipped come back, the least
recently skipped first — before any of the recently played does; a song skipped twice is never
offered. When nothing but twice-skipped songs is left, the radio adds nothing, says so once
(``exhausted_by_skips`` in /health) and goes on as soon as a song is played to its end.

A missing or restarted MPD is not an error storm: the radio reconnects with exponential backoff
(1 s … 60 s), logs one warning per outage and one line when it is back, and its health entry
says ``degraded`` meanwhile (the daemon stays ready: MPD is optional).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ...config import Settings
from ...errors import PlaylistgenError
from ..feedback.events import FeedbackStore
from ..feedback.rules import PLAY, SKIP
from ..loops import BackgroundLoop
from ..playlists.service import MAX_SIZE, PlaylistRequest
from ..storage.db import Database
from ..storage.files import live_files

log = logging.getLogger(__name__)

SEEDS_FROM_HISTORY = 3
SPARE = 10   # songs asked for beyond the need, in case some lie outside mpd.music_directory
BACKOFF_MIN_S, BACKOFF_MAX_S = 1.0, 60.0


class MpdRadio:
    def __init__(self, settings: Settings, db: Database, generate: Callable[[PlaylistRequest], dict], *,
                 seeds: list[int | str] | None = None, poll_s: float = 1.0, timeout_s: float = 5.0,
                 feedback: FeedbackStore | None = None) -> None:
        """``generate`` is ``PlaylistService.generate`` (a request → a playlist response);
        ``feedback`` records the skips and plays MPD shows (None: nothing is recorded)."""
        self.settings = settings
        self.cfg = settings.mpd
        self.db = db
        self.generate = generate
        self.seeds = list(seeds or [])
        root = self.cfg.music_directory or (settings.library.paths[0] if settings.library.paths else ".")
        self.root = os.path.abspath(root)
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.history: deque[str] = deque(maxlen=max(self.cfg.history, 1))
        self._client: Any = None
        self._current: str | None = None
        self.feedback = feedback
        # the current song as last seen: (MPD song id, uri, elapsed s, duration s)
        self._heard: tuple[str, str, float | None, float | None] | None = None
        self.skips = self.plays = 0
        self._loop = BackgroundLoop("mpd-radio", self.step, interval_s=poll_s,
                                    on_error=lambda exc: log.exception("MPD radio step failed"))
        self._backoff = BACKOFF_MIN_S
        self._next_try = 0.0
        self.connected = False
        self.last_error: str | None = None
        self.reconnects = 0
        self.added = 0
        self.last_fill: float | None = None
        self.exhausted = False   # every song was among the recently played at the last fill
        self.exhausted_by_skips = False   # only songs skipped twice were left to offer at the last fill

    # ---- connection ------------------------------------------------------------------------
    def _connect(self) -> bool:
        from mpd import MPDClient

        if time.monotonic() < self._next_try:
            return False
        client = MPDClient()
        client.timeout = self.timeout_s
        client.idletimeout = None
        try:
            client.connect(self.cfg.host, self.cfg.port)
            if self.cfg.password:
                client.password(self.cfg.password)
        except Exception as exc:
            self._lost(exc)
            return False
        if self.last_error is not None or self.reconnects or self.added:
            log.info("MPD at %s:%d is back", self.cfg.host, self.cfg.port)
        self._client, self.connected, self.last_error = client, True, None
        self._backoff = BACKOFF_MIN_S
        return True

    def _lost(self, exc: BaseException) -> None:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        reason = reason.replace(self.cfg.password, "***") if self.cfg.password else reason
        if self.connected or self.last_error is None:   # one warning per outage
            log.warning("MPD at %s:%d unavailable (%s); retrying with backoff up to %.0f s",
                        self.cfg.host, self.cfg.port, reason, BACKOFF_MAX_S)
        if self.connected:
            self.reconnects += 1
        self.connected, self.last_error = False, reason
        self._close_client()
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)

    def _close_client(self) -> None:
        if self._client is not None:
            try:
                self._client.disconnect()
            except Exception:   # already gone
                pass
            self._client = None

    # ---- one step ----------------------------------------------------------------------------
    def step(self) -> int:
        """Connect if needed, record what is playing, top the queue up. Returns songs added."""
        from mpd import ConnectionError as MpdConnectionError
        from mpd import ProtocolError

        if self._client is None and not self._connect():
            return 0
        try:
            return self._step(self._client)
        except (MpdConnectionError, ProtocolError, OSError) as exc:   # gone or confused: reconnect
            self._lost(exc)
            return 0

    def _step(self, client: Any) -> int:
        status = client.status()
        queue = client.playlistinfo()
        pos = int(status["song"]) if "song" in status else -1
        self._listen(status, queue[pos] if 0 <= pos < len(queue) else None)
        if pos >= 0 and pos < len(queue):
            uri = queue[pos]["file"]
            if uri != self._current:
                self._current = uri
                if not self.history or self.history[-1] != uri:
                    self.history.append(uri)
        following = len(queue) - pos - 1 if pos >= 0 else len(queue)
        need = self.cfg.min_queue - following
        if need <= 0:
            return 0
        from mpd import CommandError

        added = 0
        for uri in self.continuations(need, [s["file"] for s in queue], pos):
            try:
                client.add(uri)
                added += 1
            except CommandError as exc:   # not in MPD's database yet (no `mpc update` since)
                log.debug("MPD refused %s: %s", uri, exc)
        self.added += added
        if added:
            self.last_fill = time.time()
            log.info("MPD radio: added %d song(s)", added)
        return added

    # ---- feedback ------------------------------------------------------------------------------
    def _listen(self, status: dict, song: dict | None) -> None:
        """Judge the previous song once another is current, from the last ``elapsed`` seen."""
        song_id = status.get("songid") if song is not None else None
        if self._heard is not None and self._heard[0] != song_id:
            self._judge(*self._heard[1:])
            self._heard = None
        if song is None or song_id is None:
            return
        duration = _number(status.get("duration")) or _number(song.get("duration")) or _number(song.get("time"))
        elapsed = _number(status.get("elapsed"))
        if elapsed is None and self._heard is not None:   # stopped: MPD no longer says; keep the last seen
            elapsed = self._heard[2]
        self._heard = (song_id, song["file"], elapsed, duration)

    def _judge(self, uri: str, elapsed: float | None, duration: float | None) -> None:
        if self.feedback is None:
            return
        verdict = self.feedback.rules.verdict(elapsed, duration, slack_s=self.poll_s + 1.0)
        if verdict is None:
            return
        ids = self._track_ids([uri])
        if not ids:
            return
        self.feedback.record(ids[0], verdict, "mpd", position_s=elapsed)
        if verdict == SKIP:
            self.skips += 1
        elif verdict == PLAY:
            self.plays += 1

    def _skipped_ids(self) -> set[int]:
        return set(self.feedback.skipped(None).skips) if self.feedback is not None else set()

    # ---- choosing songs ------------------------------------------------------------------------
    def _path(self, uri: str) -> str:
        return os.path.normpath(os.path.join(self.root, uri))

    def _uri(self, path: str) -> str | None:
        prefix = self.root.rstrip(os.sep) + os.sep
        return path[len(prefix):] if path.startswith(prefix) else None

    def _track_ids(self, uris: list[str]) -> list[int]:
        if not uris:
            return []
        paths = [self._path(u) for u in uris]
        found = dict(live_files(self.db, paths))
        return [found[p] for p in paths if p in found]

    def _seed_ids(self, queue: list[str]) -> list[Any]:
        played = list(dict.fromkeys(reversed(self.history)))   # newest first, distinct
        skipped = self._skipped_ids()   # what the listener left is no seed: the radio follows what they kept
        ids = [t for t in self._track_ids(played[:SEEDS_FROM_HISTORY * 3]) if t not in skipped][:SEEDS_FROM_HISTORY]
        if ids:
            return ids
        if self.seeds:
            return self.seeds
        return self._track_ids(queue[-SEEDS_FROM_HISTORY:])

    def _recently_played(self, past: list[str], upcoming: set[str]) -> list[int]:
        """Track ids of the last ``mpd.history`` songs played, newest first, leaving out those
        still to come; queue entries before the current song (``past``) were played too, before
        anything this radio saw."""
        newest_first = [*reversed(self.history), *reversed(past)]
        played = [uri for uri in dict.fromkeys(newest_first) if uri not in upcoming]
        return self._track_ids(played[:self.cfg.history])

    def continuations(self, need: int, queue: list[str], pos: int = -1) -> list[str]:
        """Up to ``need`` URIs to append: a radio from the seeds that continues the recent history
        and the queue (``pos``: the current song's index, -1 when none; see the module docstring)."""
        seeds = self._seed_ids(queue)
        if not seeds:
            if self.last_error != "no seed":
                log.warning("MPD radio: the queue is empty and nothing was played; add a song or pass --seed")
            self.last_error = "no seed"
            return []
        if self.last_error == "no seed":
            self.last_error = None
        upcoming = queue[max(pos, 0):]
        recent = self._recently_played(queue[:max(pos, 0)], set(upcoming))
        upcoming_ids = self._track_ids(list(dict.fromkeys(upcoming)))
        skipped = self.feedback.skipped(None) if self.feedback is not None else None
        soft = skipped.skipped_once() if skipped else []            # the least recently skipped first
        hard = set(skipped.track_ids(min_skips=2)) if skipped else set()
        size = min(need + SPARE, MAX_SIZE)
        forgiven = reused = 0   # how many of the once-skipped, then of the least recently played, are allowed back
        while True:
            kept, back = recent[:len(recent) - reused], set(recent[len(recent) - reused:])
            # a seed would be put first whatever its turn: one allowed back is a candidate instead
            body = self._radio([s for s in seeds if s not in back] or seeds, size,
                               [*reversed(kept), *upcoming_ids], soft[:forgiven])   # oldest first
            if body is None:
                return []
            # a seed is never left out by the playlist service: a twice-skipped one is, here
            tracks = [t for t in body.get("tracks", []) if t.get("id") not in hard]
            short = need - len(tracks)
            if short <= 0:
                break
            if forgiven < len(soft):     # at most log2 retries each
                forgiven = _grow(forgiven, short, len(soft))
            elif reused < len(recent):
                reused = _grow(reused, short, len(recent))
            else:
                break
        if reused and not self.exhausted:
            log.info("MPD radio: every song of the library was played within the last %d; "
                     "reusing the least recently played first", len(recent))
        self.exhausted = reused > 0
        out: list[str] = []
        for track in tracks:
            uri = self._uri(track.get("path") or "")
            if uri is not None and uri not in out:
                out.append(uri)
            if len(out) == need:
                break
        self._note_skipped_through(not out and bool(hard), len(hard))
        return out

    def _note_skipped_through(self, through: bool, hard: int) -> None:
        """Say once (and in /health) that only songs skipped twice are left, and once that it is over."""
        if through and not self.exhausted_by_skips:
            log.warning("MPD radio: the library is exhausted by skips: every song not queued or just played "
                        "(%d of them) was skipped twice within feedback.avoid_days (%g days); adding nothing "
                        "until one is played to its end (feedback.avoid_days: 0 turns skips off)",
                        hard, self.feedback.rules.avoid_days if self.feedback is not None else 0)
        elif not through and self.exhausted_by_skips:
            log.info("MPD radio: songs to offer again (no longer exhausted by skips)")
        self.exhausted_by_skips = through

    def _radio(self, seeds: list[Any], size: int, after: list[int], forgive: list[int]) -> dict | None:
        """A radio playlist that continues ``after`` (track ids, oldest first), overlooking the
        skips of ``forgive``; None after a playlist error (logged once per distinct message)."""
        request = PlaylistRequest.of("radio", self.settings, seeds=seeds, size=size, after=after, forgive=forgive)
        try:
            return self.generate(request)
        except PlaylistgenError as exc:   # e.g. a --seed that is not in the library
            if self.last_error != exc.one_line():
                log.warning("MPD radio: %s", exc.one_line())
            self.last_error = exc.one_line()
            return None

    # ---- running ---------------------------------------------------------------------------------
    def run(self) -> None:
        """Step every ``poll_s`` until :meth:`stop`, in the calling thread (the foreground command);
        a failing step (a playlist error) is logged and retried, never the end of the radio."""
        self._loop.run()
        self._close_client()

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        if self._loop.stop(self.timeout_s + 2) and self._loop.started:
            self._close_client()

    def health(self) -> dict:
        """Never makes the daemon unready (MPD is optional): ``degraded`` while it is away."""
        return {"ready": True, "degraded": not self.connected, "connected": self.connected,
                "server": f"{self.cfg.host}:{self.cfg.port}", "last_error": self.last_error,
                "reconnects": self.reconnects, "songs_added": self.added, "history": len(self.history),
                "last_fill": self.last_fill, "library_exhausted": self.exhausted,
                "exhausted_by_skips": self.exhausted_by_skips,
                "skips_recorded": self.skips, "plays_recorded": self.plays}


def _grow(allowed: int, short: int, limit: int) -> int:
    """The next number allowed back: the shortfall first, then doubling (log2 steps to ``limit``)."""
    return min(limit, allowed * 2 if allowed else short)


def _number(value: Any) -> float | None:
    """MPD's "12.345" (or "12:240" for ``time``: the total) as a float; None when absent."""
    if value in (None, ""):
        return None
    try:
        return float(str(value).split(":")[-1]) if ":" in str(value) else float(value)
    except ValueError:
        return None
