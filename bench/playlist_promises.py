"""Do playlists keep their promises (issue 21, points 5-7)? On a dev-corpus-like synthetic library
(real SQLite written through the job queue, the real playlist service): most tracks have no artist
tag and share a few "soundtrack" albums, as the game music of the dev corpus does.

* gap violations per order: radios of 11 from every track, artist gap 3 / album gap 2 (the
  defaults); playlists breaking a gap, and those breaking one the ``as_is`` selection kept;
* harmonic mixes of 12 from every track: length delivered (and how many runs did not finish
  within --timeout seconds);
* paths of 12 between random pairs: length delivered.

    .venv/bin/python bench/playlist_promises.py [--tracks 100] [--pairs 40] [--code DIR]

``--code DIR`` runs another checkout's playlistgen (e.g. the parent commit in a temporary
worktree) with the same library, for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ORDERS = ("as_is", "smooth", "energy_arc")


def build(db, root: Path, tracks: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    """``tracks`` tracks in five soundtracks; 80 % without an artist tag, the rest by 6 composers."""
    from tests.playlist_fixtures import STYLES, add_track, make_result, style_centres

    rng = np.random.default_rng(seed)
    centres = style_centres(rng)
    styles = list(STYLES)
    for i in range(tracks):
        album = int(rng.integers(0, 5))
        artist = f"Composer {int(rng.integers(0, 6))}" if rng.random() < 0.2 else ""
        result = make_result(rng, styles[album], centres, artist=artist, album=f"Soundtrack {album}",
                             title=f"Level {i}", track_number=i + 1)
        add_track(db, root / "library", result, fingerprint=f"fp-{i}")


class TimedOut(Exception):
    pass


def timed(seconds: float, fn, *args):  # type: ignore[no-untyped-def]
    """fn(*args), or TimedOut after ``seconds`` (SIGALRM: the old harmonic could loop forever)."""
    def alarm(*_: object) -> None:
        raise TimedOut

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def gaps_broken(cat, rows: list[int], artist_gap: int = 3, album_gap: int = 2) -> bool:  # type: ignore[no-untyped-def]
    from playlistgen.core.playlists.diversity import gaps_respected

    return not (gaps_respected([int(cat.artist[r]) for r in rows], artist_gap)
                and gaps_respected([int(cat.album[r]) for r in rows], album_gap))


def lengths(values: list[int], asked: int) -> dict:
    return {"asked": asked, "min": min(values), "mean": round(float(np.mean(values)), 2), "full": sum(
        v == asked for v in values), "runs": len(values)}


def measure(tracks: int, pairs: int, timeout: float, seed: int) -> dict:
    from playlistgen.core.playlists.service import PlaylistRequest, PlaylistService
    from playlistgen.core.storage.db import Database
    from tests.conftest import library_settings

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "library").mkdir()
        db = Database(root / "test.db", pool_min=1, pool_max=4)
        try:
            build(db, root, tracks, seed)
            settings = library_settings(root)
            service = PlaylistService(db, settings)
            cat = service.catalog()
            ids = [int(t) for t in cat.track_ids]
            out["tracks"] = cat.size

            def pick(strategy: str, seeds: list[int], size: int, order: str | None = None) -> list[int]:
                return service.pick(PlaylistRequest.of(strategy, settings, seeds=seeds, size=size, order=order)).rows

            started = time.perf_counter()
            broken = {o: 0 for o in ORDERS}
            worse = {o: 0 for o in ORDERS}
            for track in ids:
                kept = not gaps_broken(cat, pick("radio", [track], 11, "as_is"))
                for o in ORDERS:
                    bad = gaps_broken(cat, pick("radio", [track], 11, o))
                    broken[o] += bad
                    worse[o] += bad and kept
            out["radio11_gap_violations"] = {"runs": len(ids), "breaking_a_gap": broken,
                                             "breaking_a_gap_as_is_kept": worse}
            harmonic, hung = [], 0
            for track in ids:
                try:
                    harmonic.append(len(timed(timeout, pick, "harmonic", [track], 12)))
                except TimedOut:
                    hung += 1
            out["harmonic12"] = {**lengths(harmonic, 12), "did_not_finish": hung}
            rng = np.random.default_rng(seed)
            paths = [len(pick("path", [int(a), int(b)], 12)) for a, b in
                     (rng.choice(ids, 2, replace=False) for _ in range(pairs))]
            out["path12"] = lengths(paths, 12)
            out["seconds"] = round(time.perf_counter() - started, 1)
        finally:
            db.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds one harmonic mix may take")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--code", help="the checkout whose playlistgen to run (default: this one)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    repo = Path(args.code).resolve() if args.code else Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))
    figures = {"code": str(repo), **measure(args.tracks, args.pairs, args.timeout, args.seed)}
    g = figures["radio11_gap_violations"]
    print(f"library: {figures['tracks']} tracks ({repo})")
    print(f"radio of 11 from each track, artist gap 3 / album gap 2 — playlists breaking a gap "
          f"(of them, ones as_is kept), out of {g['runs']}:")
    for o in ORDERS:
        print(f"  {o:>10}: {g['breaking_a_gap'][o]:4d}  ({g['breaking_a_gap_as_is_kept'][o]})")
    for name in ("harmonic12", "path12"):
        f = figures[name]
        extra = f", did not finish within {args.timeout:g} s: {f['did_not_finish']}" if "did_not_finish" in f else ""
        print(f"{name[:-2]} (size {f['asked']}): delivered min {f['min']}, mean {f['mean']}, "
              f"full {f['full']} of {f['runs']}{extra}")
    print(f"({figures['seconds']} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
