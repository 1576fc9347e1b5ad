"""Make the shipped similarity projections (playlistgen/core/similarity/shipped/msd.npz and
msd_mtt.npz), the ones small libraries use until they have ``similarity.min_tracks`` tracks of
their own: ``msd+mtt`` when every track has the MTT embedding (preset balanced, the default, and
accurate), ``msd`` otherwise.

Reproducible: the dev corpus (freely licensed Debian game soundtracks, licences in
``$PLAYLISTGEN_CORPUS/LICENSES``) is scanned with the real analyzer, preset balanced (MSD + MTT at
stride 3), into a cached database; the library fits of both representations
(core/similarity/fit.fit_library, the same code a library runs) are made from the stored spreads
and written as float32 package data.

    PLAYLISTGEN_CORPUS=/work/corpus python bench/fit_shipped_projection.py            # scan once, fit, write
    PLAYLISTGEN_CORPUS=/work/corpus python bench/fit_shipped_projection.py --curve    # + min_tracks measurement

``--curve`` measures what ``similarity.min_tracks`` should be: the packages are split in two
halves; on libraries of N tracks drawn from one half, P@10 (same package among the 10 nearest,
cosine) with a fit on those N tracks versus a fit on the other half (music the library never
saw, as the shipped projection is), and the raw embedding.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, cache_dir, corpus_key, corpus_tracks, find_corpus  # noqa: E402
from playlistgen.core.similarity.fit import accumulate, fit_library  # noqa: E402
from playlistgen.core.similarity.lda import Moments, fit_moments  # noqa: E402
from playlistgen.core.storage.db import Database  # noqa: E402

OUT = REPO / "playlistgen" / "core" / "similarity" / "shipped"
FILES = {"msd": "msd.npz", "msd+mtt": "msd_mtt.npz"}     # as core/similarity/space.SHIPPED


def corpus_db_path(corpus: Path) -> Path:
    """The cached preset-balanced analysis of ``corpus`` (one file per corpus)."""
    return cache_dir() / "shipped-projection" / f"{corpus_key(corpus)}-balanced.db"


def scan(corpus: Path, db_path: Path) -> None:
    """Analyse the corpus with preset balanced (the default); a finished database is reused."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PLAYLISTGEN_ANALYSIS__MODELS_DIR": str(REPO / "models")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "playlistgen", "scan", str(corpus), "--preset", "balanced",
                    "--workers", "1", "--db", str(db_path)], check=True, cwd=REPO, env=env)
    print(f"scan: {time.perf_counter() - started:.0f} s", file=sys.stderr)


def rows(db: Database) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(path, MSD mean [200], MSD spread [r, 200]) of every analysed track with a spread (the MSD
    columns of an MSD‖MTT spread)."""
    out = []
    for path, emb, mtt, spread in db.query(
            "SELECT fl.path, f.embedding, f.embedding_mtt, f.embedding_spread FROM files fl JOIN features f ON "
            "f.id = (SELECT max(id) FROM features WHERE track_id = fl.track_id) "
            "WHERE fl.status = 'done' AND f.embedding IS NOT NULL AND length(f.embedding_spread) > 0"):
        s = np.frombuffer(spread, dtype="<f2").astype(np.float64).reshape(-1, 400 if mtt is not None else 200)
        out.append((path, np.frombuffer(emb, dtype="<f4").astype(np.float64), s[:, :200]))
    return out


def precision_at_10(vectors: np.ndarray, labels: np.ndarray) -> float:
    v = vectors - vectors.mean(axis=0)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    k = min(10, len(v) - 1)
    top = np.argsort(-sims, axis=1)[:, :k]
    return float((labels[top] == labels[:, None]).mean())


def fit_on(means: np.ndarray, spreads: list[np.ndarray]):  # type: ignore[no-untyped-def]
    m = Moments(200)
    m.add(means, spreads)
    return fit_moments(m)


def curve(data: list[tuple[str, np.ndarray, np.ndarray]], labels_of: dict[str, str], repeats: int = 20) -> None:
    labels = np.array([labels_of[p] for p, _, _ in data])
    means = np.stack([m for _, m, _ in data])
    spreads = [s for _, _, s in data]
    packages = sorted(set(labels))
    rng = np.random.default_rng(22)
    print("\nN tracks | raw P@10 | other-music fit | own fit   (mean over splits and draws)")
    sizes = [15, 20, 30, 40, 50]
    results: dict[int, list[tuple[float, float, float]]] = {n: [] for n in sizes}
    for _ in range(repeats):
        order = rng.permutation(packages)
        half = set(order[: len(order) // 2])
        a = np.array([lab not in half for lab in labels])   # the "other music"
        b_idx = np.flatnonzero(~a)
        other = fit_on(means[a], [spreads[i] for i in np.flatnonzero(a)])
        for n in sizes:
            if n > len(b_idx):
                continue
            pick = rng.choice(b_idx, n, replace=False)
            own = fit_on(means[pick], [spreads[i] for i in pick])
            results[n].append((precision_at_10(means[pick], labels[pick]),
                               precision_at_10(other.apply(means[pick]).astype(np.float64), labels[pick]),
                               precision_at_10(own.apply(means[pick]).astype(np.float64), labels[pick])))
    for n, vals in results.items():
        if vals:
            raw, other_fit, own_fit = np.mean(vals, axis=0)
            print(f"{n:8d} | {raw:8.3f} | {other_fit:15.3f} | {own_fit:7.3f}   ({len(vals)} draws)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="the dev corpus (default $PLAYLISTGEN_CORPUS)")
    parser.add_argument("--db", type=Path, default=None, help="cached analysis database")
    parser.add_argument("--out", type=Path, default=OUT, help="folder the .npz files are written to")
    parser.add_argument("--curve", action="store_true", help="measure library fit vs other-music fit by size")
    args = parser.parse_args()
    corpus = find_corpus(args.corpus)
    db_path = args.db or corpus_db_path(corpus)
    scan(corpus, db_path)
    db = Database(db_path, pool_min=1, pool_max=2)
    try:
        packages = sorted({t.label for t in corpus_tracks(corpus)})
        args.out.mkdir(parents=True, exist_ok=True)
        for representation, name in FILES.items():
            started = time.perf_counter()
            moments = accumulate(db, representation)
            read_s = time.perf_counter() - started
            fitted = fit_library(db, representation, save=False)
            print(f"fit {representation}: {fitted.tracks} tracks, read+accumulate {read_s:.2f} s, "
                  f"whole fit {fitted.fit_s:.2f} s")
            assert moments.tracks == fitted.tracks
            p = fitted.projection
            out = args.out / name
            np.savez(out, center=p.center.astype("<f4"), matrix=p.matrix.astype("<f4"),
                     tracks=np.int64(fitted.tracks), eigenvalues=p.eigenvalues.astype("<f4"),
                     music=np.array("Debian game soundtracks (freely licensed): " + ", ".join(packages)),
                     made_by=np.array(f"bench/fit_shipped_projection.py, preset balanced (MSD + MTT, every 3rd "
                                      f"patch), {representation}, track-identity LDA shrinkage 0.1"))
            print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")
        if args.curve:
            by_path = {t.path: t.label for t in corpus_tracks(corpus)}
            curve(rows(db), by_path)
    finally:
        db.close()


if __name__ == "__main__":
    main()
