"""A radio that listens (issue 23.2): a simulated listening session on the dev corpus.

The corpus (101 real tracks from 5 Debian game-music packages, `manifest.tsv`) is analysed once
with `playlistgen scan` (preset balanced) into a cached database. For each source package (the
*disliked* one) and each of several seeds, on a fresh copy of that database:

1. *before*: a 50-track radio from a seed track of another source; the disliked source's share;
2. a listening session: the listener plays that radio, skips (at 5 s) every track of the disliked
   source and hears every other one to its end — the events MPD radio or the /rest proxy record;
3. *after*: the same radio request again; the disliked source's share.

Goal (issue 23): the disliked source's share falls. A section of `make bench` (bench/run_all.py,
`feedback`: 3 seeds in quick mode, 5 in full); alone it prints the section, and writes it into
docs/benchmarks.md with --write.
Run: PLAYLISTGEN_CORPUS=/work/corpus python bench/feedback.py [--seeds 5] [--write]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import REPO, cache_dir, corpus_tracks, find_corpus  # noqa: E402

from playlistgen.config import Settings  # noqa: E402
from playlistgen.core.analysis.version import ANALYZER_VERSION  # noqa: E402

RADIO = 50
TITLE = "## A radio that listens: skips (issue 23)"


def library_db(corpus: Path) -> Path:
    """The corpus analysed by `playlistgen scan` (preset balanced) into a cached file (once)."""
    key = hashlib.sha256((corpus / "manifest.tsv").read_bytes() + ANALYZER_VERSION.encode()).hexdigest()[:12]
    folder = cache_dir() / "feedback"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"library-{key}.db"
    if not db.exists():
        print("feedback: analysing the corpus with `playlistgen scan` (once, a few minutes) …", file=sys.stderr)
        tmp = db.with_name("tmp-" + db.name)
        for p in tmp.parent.glob(tmp.name + "*"):
            p.unlink()
        env = dict(os.environ, PLAYLISTGEN_ANALYSIS__MODELS_DIR=str(REPO / "models"),
                   PLAYLISTGEN_LOGGING__LEVEL="WARNING")
        subprocess.run([sys.executable, "-m", "playlistgen", "scan", str(corpus), "--db", str(tmp),
                        "--preset", "balanced"], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
        from playlistgen.core.storage.db import Database

        Database(tmp).close()   # the WAL checkpointed into the file
        tmp.rename(db)
    return db


def session(db_file: Path, corpus: Path, disliked: str, seed: int) -> tuple[float, float, int, list[str]]:
    """(share before, share after, skips recorded, the after-radio's notes) for one listener."""
    from playlistgen.core.feedback.rules import PLAY, SKIP
    from playlistgen.core.playlists.service import PlaylistRequest, PlaylistService
    from playlistgen.core.storage.db import Database

    labels = {t.path: t.label for t in corpus_tracks(corpus)}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "library.db"
        shutil.copy(db_file, copy)
        settings = Settings()
        settings.database.path, settings.library.paths = str(copy), [str(corpus)]
        db = Database(copy, pool_min=1, pool_max=2)
        try:
            service = PlaylistService(db, settings)
            label_of = {int(t): labels.get(p) for p, t in db.query(
                "SELECT path, track_id FROM files WHERE status = 'done' AND track_id IS NOT NULL")}
            others = sorted(t for t, lab in label_of.items() if lab != disliked)
            start = int(np.random.default_rng(seed).choice(others))

            def radio() -> dict:
                return service.generate(PlaylistRequest.of("radio", settings, seeds=[start], size=RADIO,
                                                           random_seed=seed))

            def share(playlist: dict) -> float:
                ids = [t["id"] for t in playlist["tracks"]]
                return sum(label_of.get(i) == disliked for i in ids) / max(len(ids), 1)

            before = radio()
            skips = 0
            for t in before["tracks"]:   # the listening session: the radio as the listener hears it
                if label_of.get(t["id"]) == disliked:
                    service.feedback.record(t["id"], SKIP, "mpd", position_s=5.0)
                    skips += 1
                else:
                    service.feedback.record(t["id"], PLAY, "mpd", position_s=t["duration_s"])
            after = radio()
            return share(before), share(after), skips, after["playlist"]["notes"]
        finally:
            db.close()


def run(corpus: Path, seeds: int) -> list[dict]:
    db = library_db(corpus)
    counts: dict[str, int] = {}
    for t in corpus_tracks(corpus):
        counts[t.label] = counts.get(t.label, 0) + 1
    rows = []
    for label in sorted(counts):
        results = [session(db, corpus, label, s) for s in range(seeds)]
        rows.append({"source": label, "tracks": counts[label],
                     "before": statistics.median(r[0] for r in results),
                     "before_range": (min(r[0] for r in results), max(r[0] for r in results)),
                     "after": statistics.median(r[1] for r in results),
                     "after_range": (min(r[1] for r in results), max(r[1] for r in results)),
                     "skips": statistics.median(r[2] for r in results), "seeds": seeds,
                     "note": next((n for n in results[0][3] if "skipped" in n), "")})
    return rows


def goal_met(rows: list[dict]) -> bool:
    """The disliked source's share fell, for every source the first radio played."""
    played = [r for r in rows if r["before"] > 0]
    return bool(played) and all(r["after"] < r["before"] for r in played)


def measure(corpus: Path, seeds: int, log=print) -> dict:  # type: ignore[no-untyped-def]
    """The section for bench/run_all.py: every row, the corpus size and whether the goal was met."""
    log(f"feedback: {seeds} seed(s) per source on {corpus}")
    rows = run(corpus, seeds)
    return {"rows": rows, "corpus_tracks": len(corpus_tracks(corpus)), "seeds": seeds, "radio": RADIO,
            "goal_met": goal_met(rows)}


def markdown(rows: list[dict], corpus_size: int) -> str:
    def pct(v: float, rng: tuple[float, float]) -> str:
        return f"{v:.0%} ({rng[0]:.0%}–{rng[1]:.0%})"

    verdict = "**met**" if goal_met(rows) else "**not met**"
    lines = [TITLE, "",
             f"Goal (issue 23): the disliked source's share of the next {RADIO} radio tracks falls once its "
             f"tracks were skipped: {verdict}.", "",
             f"A simulated listening session on the dev corpus ({corpus_size} real tracks, 5 source packages; "
             "`bench/feedback.py`, preset balanced, default `feedback.*` and diversity settings): a listener "
             f"starts a {RADIO}-track radio from a track of another source, skips every track of one source "
             "(the disliked one) and hears the rest to the end; then asks for the same radio again. The "
             "disliked source's share of the radio, before and after, median over "
             f"{rows[0]['seeds'] if rows else 0} seeds (min–max):", "",
             "| disliked source | its tracks | share before | skips recorded | share after "
             "| note of the second radio |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['source']} | {r['tracks']} | {pct(r['before'], r['before_range'])} | "
                     f"{r['skips']:.0f} | {pct(r['after'], r['after_range'])} | {r['note']} |")
    lines += ["", "Tracks skipped within `feedback.avoid_days` are left out of every radio; their "
              f"`feedback.neighbours` closest tracks move one playlist length down the ranking, so the rest of "
              "a source that was skipped and not yet heard comes later. With 101 tracks and a "
              f"{RADIO}-track radio the library runs short, so some neighbours still come back.", ""]
    return "\n".join(lines)


def write_section(doc: Path, text: str) -> None:
    old = doc.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(TITLE) + r"\n.*?(?=\n## |\Z)", re.S)
    new = pattern.sub(lambda _m: text.rstrip("\n") + "\n", old) if pattern.search(old) \
        else old.rstrip("\n") + "\n\n" + text
    doc.write_text(new, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="write the section into docs/benchmarks.md")
    args = ap.parse_args()
    corpus = find_corpus(args.corpus)
    rows = run(corpus, args.seeds)
    text = markdown(rows, len(corpus_tracks(corpus)))
    print(text)
    if args.write:
        write_section(REPO / "docs" / "benchmarks.md", text)


if __name__ == "__main__":
    main()
