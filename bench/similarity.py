"""Representation bench: which track vector makes "sounds like" answers right, on the dev corpus
and its variants, each against today's vector with a paired bootstrap interval.

Every vector is built with the project's own code from the per-patch MusiCNN embeddings of
bench/similarity_embed.py (same decoder, mel and patching as the analyzer; cached), and the
projection with ``core/similarity/lda`` exactly as the daemon fits it (``spread_of`` rows per
track, ``within_covariance``, ``fit_projection``). Representations (cosine distance unless said):

* ``msd mean /3``        today: mean MSD embedding over every third patch (preset balanced);
* ``msd mean /1``        the same over every patch;
* ``msd + LDA /3``       the library's own projection (12 spread rows, shrinkage 0.1) of today's mean;
* ``msd‖mtt mean /3``    MSD and MTT means side by side (400-d), and ``msd‖mtt + LDA /3`` (6 spread
  rows at 400-d, as stored); the ``/1`` forms use every patch;
* ``msd + LDA, z-scored`` the projection with every output dimension standardised, which is what
  the catalog's per-dimension z-score does to any vector it is given (see the report);
* ``MFCC mean``          z-scored 13-d MFCC means, Euclidean (the classic timbre baseline), from the
  corpus scan of bench/quality.py; ``random``.

Variants: ``full`` (every track; the projection fitted on all of them, as a library fits on its
own audio), ``balanced`` (each source capped at BALANCED_CAP tracks, mean of DRAWS draws; fitted on
the draw), ``leave-one-source-out`` (a query's projection never saw its source — what a projection
shipped with the models faces). Plus shrinkage and output-dimension sweeps.

Measures and intervals: bench/similarity_stats.py. Artists: the files' artist tags where present,
else the composer named in the file name (similarity_artists.py); the corpus has few tags.

    .venv/bin/python bench/similarity.py [--corpus DIR] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import similarity_stats as st  # noqa: E402
from common import REPO, corpus_tracks, find_corpus  # noqa: E402
from similarity_artists import artist_keys, corpus_credits  # noqa: E402
from similarity_embed import corpus_patches  # noqa: E402

from playlistgen.core.similarity.lda import fit_projection, spread_of, within_covariance  # noqa: E402

SHRINKAGE = 0.1
SPREAD_ROWS = {"msd": 12, "msd+mtt": 6}   # rows stored per track (migration 0008)
BALANCED_CAP = 10
DRAWS = 10
TODAY = "msd mean /3"


class Corpus:
    """The corpus tracks with their labels, artist keys and patch embeddings."""

    def __init__(self, corpus: Path, models_dir: Path, log: Callable[..., None]) -> None:
        tracks = corpus_tracks(corpus)
        self.paths = [t.path for t in tracks]
        self.labels = np.array([t.label for t in tracks])
        self.artists, self.artist_source = artist_keys(self.paths, corpus_credits(corpus))
        data = corpus_patches(corpus, models_dir, log=log)
        self.patches = {"msd": [data[p]["msd"] for p in self.paths],
                        "msd+mtt": [np.hstack([data[p]["msd"], data[p]["mtt"]]) for p in self.paths]}
        self.n = len(self.paths)

    def means(self, rep: str, stride: int) -> np.ndarray:
        return np.stack([p[::stride].mean(axis=0) for p in self.patches[rep]])

    def spreads(self, rep: str, stride: int) -> list[np.ndarray]:
        return [spread_of(p[::stride], SPREAD_ROWS[rep]) for p in self.patches[rep]]


def lda_vectors(c: Corpus, rep: str, stride: int, fit_rows: np.ndarray, shrinkage: float = SHRINKAGE,
                dims: int | None = None, zscore: bool = False, cache: dict | None = None) -> np.ndarray:
    """Every track's mean projected by a projection fitted on ``fit_rows`` only."""
    key = (rep, stride)
    if cache is not None and key in cache:
        means, spreads = cache[key]
    else:
        means, spreads = c.means(rep, stride), c.spreads(rep, stride)
        if cache is not None:
            cache[key] = (means, spreads)
    proj = fit_projection(means[fit_rows], within_covariance([spreads[i] for i in fit_rows]), shrinkage, dims)
    out = proj.apply(means)
    if zscore:
        out = (out - out[fit_rows].mean(axis=0)) / np.maximum(out[fit_rows].std(axis=0), 1e-9)
    return out


def representations(c: Corpus, mfcc: np.ndarray | None) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name → f(fit rows) → distance matrix over all tracks."""
    cache: dict = {}
    cos = st.cosine_distances

    def mean(rep: str, stride: int) -> Callable[[np.ndarray], np.ndarray]:
        m = c.means(rep, stride)
        return lambda rows: cos(m)

    def lda(rep: str, stride: int, **kw: object) -> Callable[[np.ndarray], np.ndarray]:
        return lambda rows: cos(lda_vectors(c, rep, stride, rows, cache=cache, **kw))  # type: ignore[arg-type]

    reps = {TODAY: mean("msd", 3), "msd mean /1": mean("msd", 1), "msd + LDA /3": lda("msd", 3),
            "msd + LDA /1": lda("msd", 1), "msd‖mtt mean /3": mean("msd+mtt", 3),
            "msd‖mtt + LDA /3": lda("msd+mtt", 3), "msd‖mtt + LDA /1": lda("msd+mtt", 1),
            "msd + LDA /3, z-scored": lda("msd", 3, zscore=True),
            "msd‖mtt + LDA /3, z-scored": lda("msd+mtt", 3, zscore=True)}
    if mfcc is not None:
        z = (mfcc - mfcc.mean(axis=0)) / np.maximum(mfcc.std(axis=0), 1e-9)
        reps["MFCC mean"] = lambda rows: st.euclidean_distances(z)
    return reps


def sweep_representations(c: Corpus) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    cache: dict = {}
    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for rep in ("msd", "msd+mtt"):
        for shrink in (0.05, 0.1, 0.2, 0.4):
            out[f"{rep} + LDA /3, shrinkage {shrink:g}"] = (
                lambda rows, r=rep, s=shrink: st.cosine_distances(lda_vectors(c, r, 3, rows, s, cache=cache)))
        for dims in (32, 64):
            out[f"{rep} + LDA /3, {dims} dims"] = (
                lambda rows, r=rep, d=dims: st.cosine_distances(lda_vectors(c, r, 3, rows, dims=d, cache=cache)))
    return out


# --- variants -------------------------------------------------------------------------------------

def full(c: Corpus, build: Callable[[np.ndarray], np.ndarray]) -> st.Scores:
    rows = np.arange(c.n)
    return st.score(build(rows), rows, rows, c.labels, c.artists)


def held_out_splits(c: Corpus) -> list[np.ndarray]:
    """Every set of 2 or 3 sources held out: the projection is fitted on the other sources and
    the held-out tracks are searched among themselves — a projection that never saw the music it
    ranks, which is what one shipped with the models faces. (Searching held-out queries among
    *all* tracks would flatter it: every unseen track is off the fitted distribution in a shared
    way, and that alone gathers an unseen source.)"""
    sources = sorted(set(c.labels))
    out = []
    for size in (2, 3):
        for held in itertools.combinations(sources, size):
            out.append(np.flatnonzero(np.isin(c.labels, held)))
    return out


def held_out(c: Corpus, build: Callable[[np.ndarray], np.ndarray], splits: list[np.ndarray]) -> dict:
    """Per track, precision averaged over the splits that hold it out; mean hubness over splits."""
    return _averaged(c, build, splits, fit_on_rest=True)


def _averaged(c: Corpus, build: Callable[[np.ndarray], np.ndarray], sets: list[np.ndarray],
              fit_on_rest: bool) -> dict:
    p, pa, seen = np.zeros(c.n), np.zeros(c.n), np.zeros(c.n)
    hub, top = [], []
    for rows in sets:
        fit = np.setdiff1d(np.arange(c.n), rows) if fit_on_rest else rows
        s = st.score(build(fit), rows, rows, c.labels, c.artists)
        p[rows] += s.p10
        pa[rows] += s.p10_artist
        seen[rows] += 1
        summary = s.summary()
        hub.append(summary["hubness"])
        top.append(summary["max_n10"])
    used = np.flatnonzero(seen)
    return {"tracks": used, "p10": p[used] / seen[used], "p10_artist": pa[used] / seen[used],
            "hubness": float(np.mean(hub)), "max_n10": float(np.mean(top)), "sets": len(sets)}


def balanced_draws(c: Corpus, seed: int = 13) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.sort(np.concatenate([rng.permutation(np.flatnonzero(c.labels == v))[:BALANCED_CAP]
                                    for v in sorted(set(c.labels))])) for _ in range(DRAWS)]


def balanced(c: Corpus, build: Callable[[np.ndarray], np.ndarray], draws: list[np.ndarray]) -> dict:
    """Per track, precision averaged over the draws it is in (fitted on the draw); mean hubness."""
    return _averaged(c, build, draws, fit_on_rest=False)


# --- the whole bench ------------------------------------------------------------------------------

def corpus_mfcc(c: Corpus, models_dir: Path, corpus: Path) -> np.ndarray | None:
    """MFCC means from a scan of the corpus by the real analyzer, by path: the preset-balanced scan
    bench/similarity_api.py keeps, for a corpus other than the dev one (it need not be analysed
    twice), else bench/quality.py's scan of the corpus and its versions (the dev corpus, as before)."""
    import quality
    from common import corpus_key
    from fit_shipped_projection import corpus_db_path

    db, versions = corpus_db_path(corpus), {}
    if corpus_key(corpus) == "corpus" or not db.exists():
        db, versions = quality.library_db(corpus, models_dir)
    lib = quality.Library(db, corpus, versions)
    try:
        by_path = {lib.path_of[t]: lib.mfcc_mean[t] for t in lib.path_of}
    finally:
        lib.close()
    if not all(p in by_path for p in c.paths):
        return None
    return np.stack([by_path[p] for p in c.paths]).astype(np.float64)


def _row(scores: st.Scores, today: st.Scores | None) -> dict:
    out = scores.summary()
    if today is not None and scores is not today:
        out["vs_today"] = st.compare(today, scores)
    return out


def _averaged_rows(results: dict[str, dict]) -> dict:
    base = results[TODAY]
    out = {}
    for name, b in results.items():
        row = {"p10": float(b["p10"].mean()), "p10_artist": float(b["p10_artist"].mean()),
               "hubness": b["hubness"], "max_n10": b["max_n10"], "queries": int(len(b["tracks"])),
               "sets": b["sets"]}
        if name != TODAY:
            row["vs_today"] = {"p10": st.paired_interval(base["p10"], b["p10"]),
                               "p10_artist": st.paired_interval(base["p10_artist"], b["p10_artist"])}
        out[name] = row
    return out


def measure(corpus: Path, models_dir: Path, quick: bool = False, log: Callable[..., None] = print) -> dict:
    c = Corpus(corpus, models_dir, log)
    reps = representations(c, corpus_mfcc(c, models_dir, corpus))
    rows = np.arange(c.n)
    out: dict = {"tracks": c.n, "labels": {str(k): int(v) for k, v in zip(*np.unique(c.labels, return_counts=True),
                                                                           strict=True)},
                 "artists": c.artist_source, "shrinkage": SHRINKAGE, "spread_rows": SPREAD_ROWS,
                 "balanced_cap": BALANCED_CAP, "draws": DRAWS, "variants": {}}
    scored = {name: full(c, build) for name, build in reps.items()}
    scored["random"] = st.random_scores(rows, rows, c.labels, c.artists)
    out["variants"]["full"] = {name: _row(s, scored[TODAY]) for name, s in scored.items()}
    splits, draws = held_out_splits(c), balanced_draws(c)
    out["variants"]["balanced"] = _averaged_rows({n: balanced(c, b, draws) for n, b in reps.items()})
    out["variants"]["held-out sources"] = _averaged_rows({n: held_out(c, b, splits) for n, b in reps.items()})
    today_full = scored[TODAY]
    sweep = {"full": {}, "held-out sources": {}}
    for name, build in sweep_representations(c).items():
        sweep["full"][name] = _row(full(c, build), today_full)
        if not quick:
            sweep["held-out sources"][name] = _averaged_rows(
                {TODAY: held_out(c, reps[TODAY], splits), name: held_out(c, build, splits)})[name]
    out["sweep"] = sweep
    for vname, table in out["variants"].items():
        log(f"similarity [{vname}] " + "; ".join(f"{n} {r['p10']:.3f}/{r['p10_artist']:.3f}"
                                                 for n, r in table.items()))
    return out


def print_table(result: dict) -> None:
    for vname, rows in result["variants"].items():
        print(f"\n## {vname}")
        print(f"{'representation':32s} {'P@10':>6s} {'artist-f.':>9s} {'hub':>5s} {'maxN10':>6s}   "
              "ΔP@10 [95 %]            Δartist-f. [95 %]")
        for name, r in rows.items():
            v = r.get("vs_today")
            delta = "" if not v else (f"{v['p10']['diff']:+.3f} [{v['p10']['lo']:+.3f}, {v['p10']['hi']:+.3f}]   "
                                      f"{v['p10_artist']['diff']:+.3f} [{v['p10_artist']['lo']:+.3f}, "
                                      f"{v['p10_artist']['hi']:+.3f}]")
            print(f"{name:32s} {r['p10']:6.3f} {r['p10_artist']:9.3f} {r['hubness']:5.2f} "
                  f"{r['max_n10']:6.0f}   {delta}")
    for vname, rows in result["sweep"].items():
        print(f"\n## sweep [{vname}]")
        for name, r in rows.items():
            v = r["vs_today"]
            if "hubness" not in r:
                r["hubness"] = float("nan")
            print(f"{name:40s} {r['p10']:6.3f} {r['p10_artist']:6.3f} hub {r['hubness']:5.2f}  "
                  f"Δartist-f. {v['p10_artist']['diff']:+.3f} [{v['p10_artist']['lo']:+.3f}, "
                  f"{v['p10_artist']['hi']:+.3f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--quick", action="store_true", help="leave the stride-1 forms out of the balanced draws")
    parser.add_argument("--json", help="write the full result here")
    args = parser.parse_args()
    result = measure(find_corpus(args.corpus), Path(args.models_dir).resolve(), args.quick,
                     log=lambda *a: print(*a, file=sys.stderr, flush=True))
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
