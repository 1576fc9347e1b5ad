"""Weights of the similarity groups with the projected embedding (issue 22, point 5), measured
with the daemon's own catalog: the corpus scan of bench/quality.py read by
``playlists.features.load_catalog``, with the ``embedding`` group replaced by the library's LDA
projection of each track's MSD mean (fitted on the corpus' own patch spreads, as the daemon fits
it) and passed to ``playlists.catalog.build_catalog``; distances by ``playlists.index.distances``.

Criterion: artist-filtered precision@10 by source (similarity_artists.py for the artist keys).
The grid is small (scalars × MFCC × chroma, embedding fixed: with the cosine metric only the
ratios count) and the pick is *robust*: the setting whose grid neighbourhood (itself and the
settings one step away in one weight) has the best mean, not the single best cell, which on ~100
queries is partly noise. The chosen point is compared with today's defaults (paired bootstrap).

    .venv/bin/python bench/similarity_weights.py [--corpus DIR]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import similarity_stats as st  # noqa: E402
from common import REPO, find_corpus  # noqa: E402

GRID = {"scalars": (0.0, 0.25, 0.5, 1.0), "mfcc": (0.0, 0.25, 0.5, 1.0), "chroma": (0.0, 0.25, 0.5)}
EMBEDDING_WEIGHT = 3.0
# name → (representation, output dims, kept as one block)
EMBEDDINGS = {"MSD mean (today)": None, "MSD + LDA, z-scored per dim": ("msd", None, False),
              "MSD + LDA, 64 dims, z-scored per dim": ("msd", 64, False),
              "MSD + LDA, one block": ("msd", None, True), "MSD‖MTT mean, one block": ("msd+mtt", 0, True),
              "MSD‖MTT + LDA, one block": ("msd+mtt", None, True)}


class CatalogBench:
    """The scanned corpus as the daemon's catalog, with a chosen embedding group."""

    def __init__(self, corpus: Path, models_dir: Path, c) -> None:  # type: ignore[no-untyped-def]
        import quality

        from playlistgen.core.playlists import features

        db, versions = quality.library_db(corpus, models_dir)
        lib = quality.Library(db, corpus, versions)
        captured: dict = {}
        try:   # the loader's exact inputs to build_catalog, read once
            build = features.build_catalog

            def capture(**kw: object) -> object:
                captured.update(kw)
                return build(**kw)

            with mock.patch.object(features, "build_catalog", capture):
                # the raw embedding (projection off): the bench puts each representation in itself
                features.load_catalog(lib.db, ("similarity-weights",), {}, "cosine",
                                      choose=features.space_chooser(lib.db, mode="off"))
            origin = [lib.origin[int(t)] for t in captured["track_ids"]]
            self.original = np.array([lib.origin[int(t)] == lib.path_of[int(t)] for t in captured["track_ids"]])
        finally:
            lib.close()
        self.inputs = captured
        index = {p: i for i, p in enumerate(c.paths)}
        self.corpus_row = np.array([index[p] for p in origin])   # a version maps to its original
        self.labels = c.labels[self.corpus_row]
        self.artists = c.artists[self.corpus_row]
        self.rows = np.flatnonzero(self.original)

    def scores(self, embedding: np.ndarray | None, weights: dict[str, float], metric: str = "cosine",
               group_scaled: bool = False) -> st.Scores:
        from playlistgen.core.playlists.catalog import GROUPS, build_catalog
        from playlistgen.core.playlists.index import distances

        kw = dict(self.inputs, weights=weights, metric=metric, isotropic=set())   # group_scaled does it
        if embedding is not None:
            values = embedding[self.corpus_row].astype(np.float32)
            kw["vectors"] = dict(kw["vectors"], embedding=(values, np.ones(len(values), bool)))
        cat = build_catalog(**kw)
        if embedding is not None and group_scaled:
            # the projection kept as one block: centred and scaled as a whole (its expected squared
            # norm that of a z-scored group), not per dimension — which would undo the projection
            sl = cat.slices["embedding"]
            block = values - values[self.rows].mean(axis=0)
            scale = np.sqrt(np.mean(np.einsum("ij,ij->i", block[self.rows], block[self.rows])))
            cat.X[:, sl] = block * (weights.get("embedding", 1.0) / max(scale, 1e-12))
            cat.sqnorm[:, GROUPS.index("embedding")] = np.einsum("ij,ij->i", cat.X[:, sl], cat.X[:, sl])
        D = distances(cat, cat.X, cat.present).astype(np.float64)
        return st.score(D, self.rows, self.rows, self.labels, self.artists)


def embeddings(c) -> dict[str, tuple[np.ndarray | None, bool]]:  # type: ignore[no-untyped-def]
    """name → (track vectors in corpus order, or None for the scanned embedding; one block?)."""
    from similarity import lda_vectors

    rows = np.arange(c.n)
    out: dict[str, tuple[np.ndarray | None, bool]] = {}
    for name, spec in EMBEDDINGS.items():
        if spec is None:
            out[name] = (None, False)
        elif spec[1] == 0:
            out[name] = (c.means(spec[0], 3), spec[2])
        else:
            out[name] = (lda_vectors(c, spec[0], 3, rows, dims=spec[1]), spec[2])
    return out


def _neighbours(values: tuple[float, ...]) -> list[tuple[float, ...]]:
    out = [values]
    for g, axis in enumerate(GRID.values()):
        i = axis.index(values[g])
        for j in (i - 1, i + 1):
            if 0 <= j < len(axis):
                out.append(values[:g] + (axis[j],) + values[g + 1:])
    return out


def tune(bench: CatalogBench, embedding: np.ndarray | None, today: st.Scores, block: bool) -> dict:
    cells = {}
    for values in itertools.product(*GRID.values()):
        w = dict(zip(GRID, values, strict=True), embedding=EMBEDDING_WEIGHT)
        s = bench.scores(embedding, w, group_scaled=block)
        cells[values] = (s, s.summary())
    smoothed = {v: float(np.mean([cells[u][1]["p10_artist"] for u in _neighbours(v)])) for v in cells}
    pick = max(smoothed, key=lambda v: (round(smoothed[v], 6), -sum(v)))
    best = max(cells, key=lambda v: cells[v][1]["p10_artist"])
    grid = [{"weights": dict(zip(GRID, v, strict=True)), **cells[v][1], "neighbourhood": smoothed[v]}
            for v in cells]
    return {"grid": grid, "pick": dict(zip(GRID, pick, strict=True)), "pick_scores": cells[pick][1],
            "pick_vs_today": st.compare(today, cells[pick][0]),
            "best_cell": dict(zip(GRID, best, strict=True)), "best_cell_scores": cells[best][1]}


def measure(corpus: Path, models_dir: Path, c, current: dict[str, float], log=print) -> dict:  # type: ignore[no-untyped-def]
    bench = CatalogBench(corpus, models_dir, c)
    today = bench.scores(None, current)
    out: dict = {"current_weights": current, "today": today.summary(), "grid_axes": GRID,
                 "embedding_weight": EMBEDDING_WEIGHT, "embeddings": {}}
    for name, (emb, block) in embeddings(c).items():
        same = bench.scores(emb, current, group_scaled=block)
        entry = {"current_weights": same.summary(), "current_vs_today": st.compare(today, same),
                 **tune(bench, emb, today, block)}
        out["embeddings"][name] = entry
        log(f"weights [{name}]: current {entry['current_weights']['p10_artist']:.3f}, pick {entry['pick']} "
            f"{entry['pick_scores']['p10_artist']:.3f} (best cell {entry['best_cell']} "
            f"{entry['best_cell_scores']['p10_artist']:.3f})")
    return out


def main() -> None:
    from similarity import Corpus

    from playlistgen.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    args = parser.parse_args()
    corpus, models_dir = find_corpus(args.corpus), Path(args.models_dir).resolve()
    p = Settings().playlists
    current = {"scalars": p.weight_scalars, "mfcc": p.weight_mfcc, "chroma": p.weight_chroma,
               "embedding": p.weight_embedding}
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    result = measure(corpus, models_dir, Corpus(corpus, models_dir, log), current, log)
    print(f"today (defaults {current}, MSD mean): {result['today']}")
    for name, e in result["embeddings"].items():
        v = e["pick_vs_today"]["p10_artist"]
        print(f"{name:22s} current weights {e['current_weights']['p10_artist']:.3f}  pick {e['pick']} "
              f"{e['pick_scores']['p10_artist']:.3f} (P@10 {e['pick_scores']['p10']:.3f}, hubness "
              f"{e['pick_scores']['hubness']:.2f})  Δ vs today {v['diff']:+.3f} [{v['lo']:+.3f}, {v['hi']:+.3f}]")
        for g in sorted(e["grid"], key=lambda g: -g["p10_artist"])[:6]:
            print(f"    {g['weights']}  artist-f. {g['p10_artist']:.3f}  neighbourhood {g['neighbourhood']:.3f}  "
                  f"P@10 {g['p10']:.3f}  hubness {g['hubness']:.2f}")


if __name__ == "__main__":
    main()
