"""Artist similarity figures on a synthetic library (issue 23): artist profiles' build time per
catalog snapshot, the latency of one similar-artists call (uncached and from the cache), of an
artist_radio playlist, and how often an artist's top-5 similar artists share its style (artists
play one of 40 styles; their track counts follow a long tail, 1 to 60).

    .venv/bin/python bench/artist_similarity.py [--tracks 200000] [--queries 100]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.playlists import build, percentiles, synthetic_columns, time_calls  # noqa: E402
from playlistgen.core.playlists.artists.profiles import profiles_of  # noqa: E402
from playlistgen.core.playlists.artists.similar import ArtistSimilarity, rank, scores  # noqa: E402
from playlistgen.core.playlists.diversity import Diversity  # noqa: E402
from playlistgen.core.playlists.registry import run  # noqa: E402
from playlistgen.core.threads import single_threaded_blas  # noqa: E402

STYLES = 40


def artist_columns(n: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """The bench library's columns with artists that each play one style; (columns, style per artist)."""
    sizes = np.minimum(rng.zipf(1.6, n), 60)                 # long tail: many artists with 1-3 tracks
    owner = np.repeat(np.arange(sizes.size), sizes)[:n]
    artists = int(owner.max()) + 1
    artist_style = rng.integers(0, STYLES, artists)
    cols = synthetic_columns(n, rng, styles=STYLES)
    style = artist_style[owner]
    centres = rng.normal(0, 1, (STYLES, 200)).astype(np.float32)
    cols["emb"] = centres[style] + rng.normal(0, 0.6, (n, 200)).astype(np.float32)
    cols["artists"] = [f"Artist {a}" for a in owner]
    return cols, artist_style


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    single_threaded_blas()
    rng = np.random.default_rng(0)
    cols, artist_style = artist_columns(args.tracks, rng)
    cat = build(args.tracks, cols)
    started = time.perf_counter()
    prof = profiles_of(cat)
    print(f"catalog {cat.size:,} tracks, {prof.size:,} artists: profiles built in "
          f"{time.perf_counter() - started:.2f} s ({prof.X.nbytes / 1e6:.0f} MB), once per catalog snapshot")
    style_of = np.array([artist_style[int(name.split()[1])] for name in prof.names])
    asked = rng.choice(np.flatnonzero(prof.tracks >= 5), args.queries)
    service = ArtistSimilarity(lambda: cat)
    uncached = time_calls(lambda i: rank(prof, *scores(cat, prof, int(asked[i])), 20), args.queries)
    print(f"  similar artists (20), uncached  {percentiles(uncached)}")
    for i in range(args.queries):
        service.similar(cat, prof, int(asked[i]), 20)
    cached = time_calls(lambda i: service.similar(cat, prof, int(asked[i]), 20), args.queries)
    print(f"  similar artists (20), cached    {percentiles(cached)}")
    rules = Diversity(3, 2, 0, True)
    radio = time_calls(lambda i: run(cat, "artist_radio", size=30, rules=rules,
                                     params={"artist": prof.names[int(asked[i])]}), max(args.queries // 4, 10))
    print(f"  artist_radio (30 tracks)        {percentiles(radio)}")
    for label, pool in (("artists with >= 5 tracks", asked),
                        ("artists with 1 track", rng.choice(np.flatnonzero(prof.tracks == 1), args.queries))):
        same = [np.mean(style_of[[s.code for s in rank(prof, *scores(cat, prof, int(a)), 5)]] == style_of[a])
                for a in pool]
        print(f"  top-5 similar artists of the same style, {label}: {100 * np.mean(same):.0f} %")
    one_track = np.mean([np.mean(prof.tracks[[s.code for s in rank(prof, *scores(cat, prof, int(a)), 20)]] == 1)
                         for a in asked])
    print(f"  share of 1-track artists among the top 20: {100 * one_track:.0f} % "
          f"(in the library: {100 * np.mean(prof.tracks == 1):.0f} % of the artists)")


if __name__ == "__main__":
    main()
