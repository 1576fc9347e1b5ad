"""The figure issue 22's "done when" names, measured the way a user gets it: a real
`playlistgen serve` over the dev corpus analysed at the default preset (balanced: MSD + MTT), asked
``GET /api/v1/tracks/<id>/similar?count=10`` for every track.

Three runs of the daemon on copies of one cached database (bench/fit_shipped_projection.py scans
the corpus once, ~6 min, and keeps it):

* ``raw``      — ``similarity.projection: off``: the MusiCNN MSD mean, as before issue 22;
* ``auto``     — the default: the daemon's background refit fits the library's own projection at
                 start-up (the corpus has more than ``similarity.min_tracks`` tracks) and the index is
                 rebuilt with it; the run waits until ``/api/v1/library/status`` says the index uses it;
* ``shipped``  — ``similarity.min_tracks`` set above the library's size: the shipped ``msd+mtt``
                 projection, as a small library uses it. It was fitted on this very corpus
                 (bench/fit_shipped_projection.py), so here it is *in-sample*: near ``auto`` by
                 construction. What a projection fitted on other music gives is bench/similarity.py's
                 "held-out sources" variant.

Per query: P@10 (same source package among the 10 answers), artist-filtered P@10 (the first 10
answers by another artist, from the full ranking ``count=500``; artists from
bench/similarity_artists.py), and the lists' hubness (skewness of N10); each run against ``raw``
with the paired bootstrap 95 % interval over the queries (bench/similarity_stats.py).

    PLAYLISTGEN_CORPUS=/work/corpus python bench/similarity_api.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import REPO, corpus_tracks, find_corpus  # noqa: E402
from similarity_artists import artist_keys, corpus_credits  # noqa: E402
from similarity_stats import K, Scores, compare  # noqa: E402

RUNS = {"raw": {"PLAYLISTGEN_SIMILARITY__PROJECTION": "off"},
        "auto": {},
        "shipped": {"PLAYLISTGEN_SIMILARITY__MIN_TRACKS": "100000"}}
EXPECT = {"raw": "none", "auto": "library", "shipped": "shipped"}   # similarity.source of each run
READY_S = 600        # a 2-core machine shared with other work: generous


def corpus_db(corpus: Path) -> Path:
    """The cached analysis of the corpus at preset balanced (scanned once; a rerun is a no-op)."""
    from fit_shipped_projection import corpus_db_path, scan

    path = corpus_db_path(corpus)
    scan(corpus, path)
    return path


def _wait(what: str, check: Callable[[], bool], proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"playlistgen serve exited: {log_path.read_text()[-3000:]}")
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not after {READY_S} s; {log_path.read_text()[-3000:]}")


def run(db_src: Path, corpus: Path, name: str, log: Callable[[str], None]) -> dict:
    """One daemon over a copy of the database: {track id: (10 ids, full ranking)} and its status."""
    with tempfile.TemporaryDirectory(prefix=f"simapi-{name}-") as tmp:
        work = Path(tmp)
        db = work / "library.db"
        shutil.copyfile(db_src, db)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO), "PLAYLISTGEN_DATABASE__PATH": str(db),
               "PLAYLISTGEN_ANALYSIS__MODELS_DIR": str(REPO / "models"), "PLAYLISTGEN_ANALYSIS__WORKERS": "1",
               **RUNS[name]}
        log_path = work / "serve.log"
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "playlistgen", "serve", "--port", str(port),
                                     "--library", str(corpus)], env=env, cwd=work, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def ready() -> bool:
                # the index notices a new projection when a request comes (then rebuilds in the background)
                first = requests.get(f"{url}/api/v1/tracks?limit=1", timeout=10).json()["tracks"]
                if first:
                    requests.get(f"{url}/api/v1/tracks/{first[0]['id']}/similar?count=1", timeout=30)
                body = requests.get(f"{url}/api/v1/library/status", timeout=10).json()
                sim = body.get("similarity", {})
                return sim.get("source") == EXPECT[name] and sim.get("index") == sim.get("in_use")

            started = time.monotonic()
            _wait("the index on the expected projection", ready, proc, log_path)
            status = requests.get(f"{url}/api/v1/library/status", timeout=10).json()["similarity"]
            log(f"{name}: ready in {time.monotonic() - started:.0f} s, index: {status['index']}")
            ids = [t["id"] for t in requests.get(f"{url}/api/v1/tracks?limit=1000", timeout=30).json()["tracks"]]
            answers = {}
            for track_id in ids:
                top = requests.get(f"{url}/api/v1/tracks/{track_id}/similar?count={K}", timeout=60).json()
                full = requests.get(f"{url}/api/v1/tracks/{track_id}/similar?count=500", timeout=60).json()
                answers[track_id] = ([t["id"] for t in top["similar"]], [t["id"] for t in full["similar"]])
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(10)
    return {"answers": answers, "status": status}


def free_port() -> int:
    """A free loopback port (closed again before the daemon binds it)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def track_facts(db_path: Path, corpus: Path) -> tuple[dict[int, str], dict[int, int], dict]:
    """Per track id: its source package and artist key (and the artist counts)."""
    from playlistgen.core.storage.db import Database

    db = Database(db_path, pool_min=1, pool_max=1)
    try:
        rows = db.query("SELECT track_id, path FROM files WHERE status = 'done' AND track_id IS NOT NULL "
                        "ORDER BY track_id")
    finally:
        db.close()
    label_of = {t.path: t.label for t in corpus_tracks(corpus)}
    keys, info = artist_keys([p for _, p in rows], corpus_credits(corpus))
    return ({tid: label_of[p] for tid, p in rows}, {tid: int(k) for (tid, _), k in zip(rows, keys, strict=True)},
            info)


def scores(answers: dict, labels: dict[int, str], artists: dict[int, int]) -> Scores:
    order = sorted(answers)
    row = {tid: i for i, tid in enumerate(order)}
    p, pa, lists = [], [], []
    for q in order:
        top, full = answers[q]
        other = [t for t in full if artists[t] != artists[q]][:K]
        p.append(np.mean([labels[t] == labels[q] for t in top]) if top else 0.0)
        pa.append(np.mean([labels[t] == labels[q] for t in other]) if other else 0.0)
        lists.append(np.array([row[t] for t in top], dtype=np.int64))
    return Scores(np.arange(len(order)), np.array(p), np.array(pa), lists, len(order))


def measure(corpus: Path, log: Callable[[str], None] = print) -> dict:
    db = corpus_db(corpus)
    labels, artists, info = track_facts(db, corpus)
    sources = list(labels.values())
    out: dict = {"tracks": len(labels), "labels": {k: sources.count(k) for k in sorted(set(sources))},
                 "artists": info, "runs": {}}
    per: dict[str, Scores] = {}
    for name in RUNS:
        got = run(db, corpus, name, log)
        missing = set(labels) - set(got["answers"])
        if missing:
            raise RuntimeError(f"{name}: the API did not list {len(missing)} analysed tracks")
        per[name] = scores(got["answers"], labels, artists)
        out["runs"][name] = {**per[name].summary(), "in_use": got["status"]["in_use"]}
    for name in RUNS:
        if name != "raw":
            out["runs"][name]["vs_raw"] = compare(per["raw"], per[name])
    return out


def table(result: dict) -> str:
    def delta(v: dict | None) -> str:
        return f"{v['diff']:+.3f} [{v['lo']:+.3f}, {v['hi']:+.3f}]" if v else "–"

    lines = ["| run | embedding space (`/library/status`) | P@10 | artist-filtered | hubness | max N10 | "
             "Δ P@10 vs raw [95 %] | Δ artist-filtered [95 %] |", "|---|---|---|---|---|---|---|---|"]
    for name, r in result["runs"].items():
        v = r.get("vs_raw", {})
        lines.append(f"| {name} | {r['in_use']} | {r['p10']:.3f} | {r['p10_artist']:.3f} | {r['hubness']:.2f} | "
                     f"{r['max_n10']} | {delta(v.get('p10'))} | {delta(v.get('p10_artist'))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="the dev corpus (default $PLAYLISTGEN_CORPUS)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    result = measure(find_corpus(args.corpus), log=lambda m: print(m, file=sys.stderr))
    print(f"{result['tracks']} tracks, sources {result['labels']}, artists {result['artists']}")
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
