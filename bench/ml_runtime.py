"""Issue 15: is playlist quality the same whichever runtime runs MusiCNN? The dev corpus is
scanned once per `analysis.ml_runtime` (`onnx`, `essentia`; cached like bench/quality.py's
library), and the project's neighbour precision@10 (plain and artist-filtered) and hubness are
computed in each library with the current similarity settings, side by side in one run (with the
analysis CPU each scan's workers reported).

The differences are set beside their noise: the standard error of precision@10 is the spread of
the per-query precision divided by √queries, that of a skewness (hubness) √(6/n).

    .venv/bin/python bench/ml_runtime.py [--corpus DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quality  # noqa: E402
from common import REPO, find_corpus  # noqa: E402


def _scores(lib: quality.Library, weights: dict[str, float], metric: str) -> dict:
    cat = lib.catalog(weights, metric)
    ids = [int(t) for t in cat.track_ids]
    labels = np.array([lib.label_of[t] or "?" for t in ids])
    rows = np.flatnonzero([lib.origin[t] == lib.path_of[t] for t in ids])
    D, artists = quality.all_distances(cat), quality._artist_keys(cat)
    out = quality.neighbour_scores(D, rows, labels, artists, cat.size)
    per_query = [np.mean(labels[lst] == labels[row]) if len(lst) else 0.0
                 for row, lst in zip(rows, quality.knn_lists(D, rows, artists, False), strict=True)]
    out["tracks"] = int(len(rows))
    out["analysis_cpu_s"] = float(lib.db.query("SELECT sum(cpu_s) FROM features")[0][0] or 0.0)
    out["p10_se"] = float(np.std(per_query) / np.sqrt(len(rows)))
    return out


def compare(corpus: Path, models_dir: Path, runtimes: tuple[str, ...] = ("onnx", "essentia"),
            log=quality._log) -> dict:  # type: ignore[no-untyped-def]
    weights, metric = quality.space_settings()
    out: dict = {"weights": weights, "metric": metric, "runtimes": {}}
    for runtime in runtimes:
        db, versions = quality.library_db(corpus, models_dir, runtime)
        lib = quality.Library(db, corpus, versions)
        try:
            r = out["runtimes"][runtime] = _scores(lib, weights, metric)
        finally:
            lib.close()
        log(f"ml_runtime {runtime}: {r['tracks']} tracks, P@10 {r['p10']:.3f} (± {r['p10_se']:.3f}), "
            f"artist-filtered {r['p10_artist']:.3f}, hubness {r['hubness']:.2f}; the scan's analysis CPU "
            f"{r['analysis_cpu_s']:.0f} s")
    first, second = (out["runtimes"][r] for r in runtimes[:2])
    out["noise"] = {"p10": max(first["p10_se"], second["p10_se"]), "hubness": (6 / first["tracks"]) ** 0.5}
    out["difference"] = {k: first[k] - second[k] for k in ("p10", "p10_artist", "hubness")}
    out["within_noise"] = bool(abs(out["difference"]["p10"]) <= out["noise"]["p10"]
                               and abs(out["difference"]["p10_artist"]) <= out["noise"]["p10"]
                               and abs(out["difference"]["hubness"]) <= out["noise"]["hubness"])
    log(f"{runtimes[0]} − {runtimes[1]}: P@10 {out['difference']['p10']:+.3f}, artist-filtered "
        f"{out['difference']['p10_artist']:+.3f}, hubness {out['difference']['hubness']:+.2f} → "
        + ("within noise" if out["within_noise"] else "NOT within noise"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    args = parser.parse_args()
    compare(find_corpus(args.corpus), Path(args.models_dir), log=print)


if __name__ == "__main__":
    main()
