"""Time from dropping a file into the library to playlist-ready, through a real daemon.

A `playlistgen serve` child (default config: watcher on, ``library.settle_seconds`` 5, preset
balanced, 2 workers) starts on a small library of real tracks and analyses it; then, one at a
time, a tagged copy of another corpus track is copied into the library folder (as a user's
``cp`` would) and we poll, on 127.0.0.1 only, every 0.1 s:

* **searchable**: ``GET /api/v1/tracks?q=<its unique title>`` lists it;
* **in others' radio**: a radio playlist seeded with an older track includes it (the similarity
  index notices a changed library at most every ``playlists.index_check_s`` seconds and rebuilds
  in the background);
* **radio from it**: ``POST /api/v1/playlists {"strategy": "radio", "seeds": [its id]}`` works
  (measured last: a seed the index does not know yet makes it rebuild at once).

Times are from the end of the copy. Every loop is bounded in count and time.

    .venv/bin/python bench/latency.py [--corpus DIR] [--drops 3] [--settle 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import REPO, durations, find_corpus, pick_files, stats  # noqa: E402

POLL_S = 0.1
LIMIT_S = 240.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tagged_copy(source: str, dest: Path, title: str) -> Path:
    import mutagen

    shutil.copyfile(source, dest)
    audio = mutagen.File(dest)
    audio["title"] = [title]
    audio["artist"] = ["Bench Drop"]
    audio.save()
    return dest


def _wait(what: str, check, deadline_s: float = LIMIT_S):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        value = check()
        if value:
            return value
        time.sleep(POLL_S)
    raise SystemExit(f"latency bench: gave up waiting for {what} after {deadline_s:.0f} s")


def measure(corpus: Path, drops: int = 3, seed_tracks: int = 4, settle_s: float | None = None,
            workers: int = 2, log=print) -> dict:  # type: ignore[no-untyped-def]
    files = pick_files(corpus, seed_tracks + drops, min_s=60, max_s=200)
    seed_files, drop_files = files[:seed_tracks], files[seed_tracks:]
    lengths = durations(drop_files)
    with tempfile.TemporaryDirectory(prefix="pg-latency-") as tmp:
        root = Path(tmp)
        library, staging = root / "library", root / "staging"
        library.mkdir()
        staging.mkdir()
        for i, f in enumerate(seed_files):
            shutil.copyfile(f, library / f"seed{i}-{Path(f).name}")
        port = _free_port()
        env = dict(os.environ, PLAYLISTGEN_ANALYSIS__MODELS_DIR=str(REPO / "models"),
                   PLAYLISTGEN_PLAYLISTS__OUTPUT_DIR=str(root / "playlists"), PLAYLISTGEN_LOGGING__LEVEL="WARNING")
        if settle_s is not None:
            env["PLAYLISTGEN_LIBRARY__SETTLE_SECONDS"] = str(settle_s)
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "playlistgen", "serve", "--library", str(library),
                                 "--db", str(root / "db.sqlite"), "--port", str(port), "--workers", str(workers)],
                                cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        try:
            def analysed() -> bool:
                try:
                    r = session.get(base + "/api/v1/library/status", timeout=5)
                except requests.ConnectionError:
                    return False
                return r.ok and r.json()["counts"]["done"] >= seed_tracks

            _wait("the seed library", analysed)
            log(f"latency: daemon up and {seed_tracks} seed tracks analysed in {time.monotonic() - started:.1f} s")
            old_id = session.get(base + "/api/v1/tracks", params={"limit": 1}, timeout=5).json()["tracks"][0]["id"]
            rows = []
            for n, source in enumerate(drop_files):
                title = f"Dropzone{n}x{os.getpid()}"
                staged = _tagged_copy(source, staging / f"drop{n}.ogg", title)
                target = library / f"drop{n}-{Path(source).name}"
                shutil.copyfile(staged, target)
                t0 = time.monotonic()

                def found(title: str = title) -> int | None:
                    r = session.get(base + "/api/v1/tracks", params={"q": title}, timeout=5)
                    tracks = r.json().get("tracks", []) if r.ok else []
                    return tracks[0]["id"] if tracks else None

                new_id = _wait("search", found)
                t_search = time.monotonic() - t0

                def included(new_id: int = new_id) -> bool:
                    r = session.post(base + "/api/v1/playlists", json={"strategy": "radio", "seeds": [old_id],
                                                                        "size": 50, "diversity": False}, timeout=10)
                    return r.ok and any(t["id"] == new_id for t in r.json()["tracks"])

                _wait("the new track in another track's radio", included)
                t_incl = time.monotonic() - t0

                def radio_from_it(new_id: int = new_id) -> bool:
                    r = session.post(base + "/api/v1/playlists", json={"strategy": "radio", "seeds": [new_id],
                                                                        "size": 10}, timeout=10)
                    return r.ok

                _wait("radio from the new track", radio_from_it)
                t_seed = time.monotonic() - t0

                detail = session.get(f"{base}/api/v1/tracks/{new_id}", timeout=5).json()
                rows.append({"file_s": lengths[source], "searchable_s": t_search, "radio_seed_s": t_seed,
                             "in_radio_s": t_incl, "track": detail.get("title")})
                log(f"  drop {n + 1}: {lengths[source]:.0f} s of audio → searchable {t_search:.1f} s, "
                    f"radio from it {t_seed:.1f} s, in another radio {t_incl:.1f} s")
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    settle = settle_s if settle_s is not None else 5.0
    return {"drops": len(rows), "settle_s": settle, "workers": workers, "rows": rows,
            "file_s": stats([r["file_s"] for r in rows]),
            "searchable_s": stats([r["searchable_s"] for r in rows]),
            "radio_seed_s": stats([r["radio_seed_s"] for r in rows]),
            "in_radio_s": stats([r["in_radio_s"] for r in rows])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--drops", type=int, default=3)
    parser.add_argument("--settle", type=float, default=None, help="library.settle_seconds (default: config's)")
    args = parser.parse_args()
    result = measure(find_corpus(args.corpus), args.drops, settle_s=args.settle)
    for key in ("searchable_s", "radio_seed_s", "in_radio_s"):
        s = result[key]
        print(f"{key:14s} median {s['median']:.1f} s (min {s['min']:.1f}, max {s['max']:.1f})")


if __name__ == "__main__":
    main()
