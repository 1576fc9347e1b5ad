"""Media-server link time for a generated catalogue (issue 11 goal: 100k songs in < 60 CPU-s).

The server side is a small fixture Subsonic server (search3 paging, ping, getIndexes) in a
separate process on loopback — benchmark only; the integration tests use a real supysonic. Our
side is a playlistgen database with the same number of tracks. The catalogue exercises every
match method: 85 % exact path, 5 % another folder (path suffix), 5 % MusicBrainz id, 4 % artist +
title + duration, 1 % unmatched. The figure is the CPU time of *our* process (all its threads,
the writer included) for one link, first (insert) and again (update).

    .venv/bin/python bench/mediaserver_link.py [--songs 100000] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = "/music"


def catalogue(n: int) -> tuple[list[tuple], list[dict]]:
    """(our rows: path, artist, title, duration, mbid) and the server's songs (Child dicts)."""
    ours, songs = [], []
    for i in range(n):
        artist, album = f"Artist {i // 120}", f"Album {i // 12}"
        rel = f"{artist}/{album}/{i % 12 + 1:02d} Song {i}.mp3"
        duration = 120 + i % 240
        mbid = f"{i:08x}-0000-4000-8000-000000000000" if i % 20 == 1 else None
        ours.append((f"{ROOT}/{rel}", artist, f"Song {i}", float(duration), mbid))
        kind = i % 100
        song = {"id": f"so-{i}", "parent": f"al-{i // 12}", "isDir": False, "title": f"Song {i}", "album": album,
                "artist": artist, "track": i % 12 + 1, "year": 2000 + i % 20, "genre": "Rock", "size": 5_000_000,
                "contentType": "audio/mpeg", "suffix": "mp3", "duration": duration, "bitRate": 320,
                "path": rel, "playCount": i % 7, "type": "music", "albumId": f"al-{i // 12}",
                "artistId": f"ar-{i // 120}"}
        if kind < 85:
            pass                                                     # exact path
        elif kind < 90:
            song["path"] = f"Compilations/{album}/{i % 12 + 1:02d} Song {i}.mp3"  # suffix (folder + file)
        elif kind < 95:
            song["path"] = f"other/{i}.mp3"                          # MusicBrainz id
            song["musicBrainzId"] = ours[-1][4] or f"{i:08x}-0000-4000-8000-000000000000"
            ours[-1] = (*ours[-1][:4], song["musicBrainzId"])
        elif kind < 99:
            song["path"], song["duration"] = f"renamed/{i}.mp3", duration + 1   # tags
        else:
            song["path"], song["title"] = f"unknown/{i}.mp3", f"Not here {i}"  # unmatched
        if i % 50 == 0:
            song["starred"] = "2025-01-02T03:04:05Z"
            song["played"] = "2025-06-01T12:00:00.000Z"
        songs.append(song)
    return ours, songs


def serve(port_file: str, n: int) -> None:
    """The fixture server (run in its own process)."""
    _, songs = catalogue(n)
    ok = {"status": "ok", "version": "1.16.1", "type": "fixture", "serverVersion": "1", "openSubsonic": True}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            method = url.path.rsplit("/", 1)[-1].removesuffix(".view")
            body = dict(ok)
            if method == "search3":
                offset, count = int(q.get("songOffset", 0)), int(q.get("songCount", 20))
                body["searchResult3"] = {"song": songs[offset:offset + count]}
            elif method == "getPlaylists":
                body["playlists"] = {"playlist": []}
            data = json.dumps({"subsonic-response": body}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def fill_db(db, ours: list[tuple]) -> None:  # type: ignore[no-untyped-def]
    def run(conn) -> None:  # type: ignore[no-untyped-def]
        conn.executemany("INSERT INTO tracks(id, fingerprint, artist, title, duration_s, musicbrainz_trackid) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         [(i + 1, f"fp{i}", a, t, d, m) for i, (_, a, t, d, m) in enumerate(ours)])
        conn.executemany("INSERT INTO files(path, size, mtime_ns, fingerprint, status, track_id) "
                         "VALUES (?, 1, 1, ?, 'done', ?)", [(p, f"fp{i}", i + 1) for i, (p, *_r) in enumerate(ours)])

    db.write(run)


def measure(songs: int, runs: int, log=print) -> dict:  # type: ignore[no-untyped-def]
    """``runs`` links of a ``songs``-song fixture server (the first inserts the mapping, the
    others update it): wall and CPU seconds of our process, matches by method, the goal."""
    from playlistgen.core.integrations.mediaserver.client import SubsonicClient
    from playlistgen.core.integrations.mediaserver.link import link
    from playlistgen.core.storage.db import Database

    out: dict = {"songs": songs, "goal_cpu_s": 60.0 * songs / 100_000, "runs": []}
    with tempfile.TemporaryDirectory(prefix="pg-mslink-") as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen([sys.executable, __file__, "--songs", str(songs), "--serve", str(port_file)])
        try:
            started = time.monotonic()
            ours, _ = catalogue(songs)
            db = Database(Path(tmp) / "bench.db")
            fill_db(db, ours)
            out["fill_s"] = time.monotonic() - started
            log(f"catalogue: {songs} songs, our database filled in {out['fill_s']:.1f} s")
            while not port_file.exists() or not port_file.read_text():
                if proc.poll() is not None or time.monotonic() - started > 300:
                    raise RuntimeError("the fixture server did not start")
                time.sleep(0.1)
            client = SubsonicClient(f"http://127.0.0.1:{port_file.read_text()}", "bench", "pw")
            try:
                for run in range(runs):
                    report = link(db, client, [ROOT], {})
                    label = "first link (insert)" if run == 0 else "re-link (update)"
                    out["runs"].append({"label": label, "songs": report.songs, "wall_s": report.seconds,
                                        "cpu_s": report.cpu_s, "by_method": dict(report.by_method),
                                        "unmatched": report.unmatched})
                    log(f"{label}: {report.songs} songs in {report.seconds:.1f} s wall, {report.cpu_s:.1f} CPU-s "
                        f"({report.cpu_s / max(report.songs, 1) * 1e6:.0f} CPU-µs/song); by method "
                        f"{report.by_method}, unmatched {report.unmatched}")
            finally:
                db.close()
        finally:
            proc.terminate()
            proc.wait(30)
    worst = max(r["cpu_s"] for r in out["runs"])
    out["goal_met"] = worst < out["goal_cpu_s"]
    log(f"goal: < {out['goal_cpu_s']:.0f} CPU-s for {songs} songs -> {'met' if out['goal_met'] else 'MISSED'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.songs)
        return
    measure(args.songs, args.runs)
    os._exit(0)   # skip tearing down the big catalogue objects


if __name__ == "__main__":
    main()
