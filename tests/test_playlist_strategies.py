"""Strategies as pure functions over synthetic feature arrays where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from playlistgen.config import Settings
from playlistgen.core.music import camelot_compatible, tempo_compatible
from playlistgen.core.music import camelot_index as camelot_code
from playlistgen.core.playlists.catalog import Catalog, build_catalog
from playlistgen.core.playlists.diversity import Diversity, gaps_respected, normalise_title, song_key
from playlistgen.core.playlists.groups import kmeans
from playlistgen.core.playlists.index import distances, query_of
from playlistgen.core.playlists.names import UnknownNameError
from playlistgen.core.playlists.registry import STRATEGIES, run
from playlistgen.core.playlists.service import PlaylistRequest
from playlistgen.core.playlists.strategies import coerce_params
from playlistgen.errors import BadRequestError

CODES = [f"{n}{letter}" for n in range(1, 13) for letter in "AB"]
KEYS = {"A": "minor", "B": "major"}
WEIGHTS = {"scalars": 1.0, "mfcc": 1.0, "chroma": 0.5, "embedding": 2.0}


def synthetic(n: int = 400, *, seed: int = 0, embedding: np.ndarray | None = None, bpm: np.ndarray | None = None,
              camelot: list | None = None, artists: list | None = None, titles: list | None = None,
              albums: list | None = None, tags: dict[str, np.ndarray] | None = None,
              duration: np.ndarray | None = None, energy: np.ndarray | None = None,
              has_embedding: np.ndarray | None = None, weights: dict | None = None) -> Catalog:
    rng = np.random.default_rng(seed)
    emb = embedding if embedding is not None else rng.normal(0, 1, (n, 200)).astype(np.float32)
    bpm = bpm if bpm is not None else rng.uniform(70, 150, n)
    energy = energy if energy is not None else rng.uniform(0, 1, n)
    scalars = {name: rng.normal(0, 1, n).astype(np.float32) for name in
               ("danceability", "loudness_lufs", "loudness_range", "dynamic_complexity", "spectral_centroid",
                "spectral_rolloff", "spectral_flatness", "zcr", "valence", "acousticness", "instrumentalness",
                "key_strength")}
    scalars["spectral_centroid"] = np.abs(scalars["spectral_centroid"]) * 1000 + 500
    scalars["spectral_rolloff"] = np.abs(scalars["spectral_rolloff"]) * 2000 + 1000
    scalars["bpm"] = np.asarray(bpm, dtype=np.float32)
    scalars["energy"] = np.asarray(energy, dtype=np.float32)
    camelot = camelot if camelot is not None else [CODES[i] for i in rng.integers(0, 24, n)]
    labels = sorted(tags) if tags else []
    tag_matrix = np.column_stack([tags[label] for label in labels]) if tags else np.zeros((n, 0), np.float32)
    has_emb = has_embedding if has_embedding is not None else np.ones(n, dtype=bool)
    return build_catalog(
        key=("test",), track_ids=np.arange(1, n + 1), weights=weights or WEIGHTS,
        meta={"artist": artists or [f"Artist {i}" for i in range(n)],
              "album": albums or [f"Album {i}" for i in range(n)],
              "title": titles or [f"Title {i}" for i in range(n)], "genre": [None] * n, "year": [2000] * n,
              "track_number": [1] * n,
              "duration_s": list(duration if duration is not None else rng.uniform(150, 400, n))},
        scalars=scalars,
        vectors={"mfcc": (rng.normal(0, 1, (n, 26)).astype(np.float32) * 0.1, np.ones(n, bool)),
                 "chroma": (rng.uniform(0, 1, (n, 12)).astype(np.float32), np.ones(n, bool)),
                 "embedding": (np.asarray(emb, dtype=np.float32), has_emb)},
        keys={"camelot": camelot, "key": ["C"] * n, "scale": [KEYS[c[-1]] if c else None for c in camelot]},
        tags=tag_matrix, tag_labels=labels)


def dist_from(cat: Catalog, row: int) -> np.ndarray:
    return distances(cat, *query_of(cat, [row]))[0]


def test_every_strategy_is_listed_with_parameters() -> None:
    expected = {"radio", "path", "mood", "filter", "harmonic", "clusters", "kmeans", "similarity", "random",
                "time_based", "tag_based", "feature_group", "mixed", "all", "for_you", "artist_radio"}
    assert set(STRATEGIES) == expected
    for strategy in STRATEGIES.values():
        info = strategy.to_dict()
        assert info["description"] and isinstance(info["parameters"], list)


def test_radio_results_are_closer_than_the_library_median() -> None:
    cat = synthetic()
    ctx = run(cat, "radio", seeds=[5], size=20, rules=Diversity.off(), order="as_is")
    rows = ctx.picker.rows
    assert rows[0] == 5 and len(rows) == 20
    d = dist_from(cat, 5)
    assert np.all(d[rows[1:]] < np.median(d))
    assert list(d[rows[1:]]) == sorted(d[rows[1:]])  # ordered by closeness


def test_radio_with_several_seeds_takes_neighbours_of_each() -> None:
    rng = np.random.default_rng(1)
    emb = np.vstack([rng.normal(0, 1, (200, 200)) + 4, rng.normal(0, 1, (200, 200)) - 4])
    cat = synthetic(400, embedding=emb)
    ctx = run(cat, "radio", seeds=[0, 300], size=20, rules=Diversity.off())
    rows = ctx.picker.rows[2:]
    near_first = set(np.argsort(dist_from(cat, 0))[1:30].tolist())
    near_second = set(np.argsort(dist_from(cat, 300))[1:30].tolist())
    assert len(near_first & set(rows)) >= 5 and len(near_second & set(rows)) >= 5
    mean_ctx = run(cat, "radio", seeds=[0, 300], size=10, params={"blend": "mean"}, rules=Diversity.off())
    assert len(mean_ctx.picker.rows) == 10


def test_tracks_without_embedding_take_part() -> None:
    has = np.ones(300, dtype=bool)
    has[::3] = False
    cat = synthetic(300, has_embedding=has)
    d = dist_from(cat, 1)
    assert np.isfinite(d).all()
    ctx = run(cat, "radio", seeds=[0], size=30, rules=Diversity.off())  # the seed itself has no embedding
    assert len(ctx.picker.rows) == 30


def test_path_moves_towards_the_destination_without_big_jumps() -> None:
    rng = np.random.default_rng(2)
    n = 500
    t = rng.uniform(0, 1, n)
    t[0], t[1] = 0.0, 1.0
    direction = rng.normal(0, 1, 200)
    emb = t[:, None] * direction * 3 + rng.normal(0, 0.05, (n, 200))
    # only the embedding counts, so the tracks really lie on a line from A to B
    cat = synthetic(n, embedding=emb, seed=3, weights={"scalars": 0, "mfcc": 0, "chroma": 0, "embedding": 1})
    size = 12
    ctx = run(cat, "path", seeds=[0, 1], size=size, rules=Diversity.off())
    rows = ctx.picker.rows
    assert rows[0] == 0 and rows[-1] == 1 and len(rows) == size
    to_b = dist_from(cat, 1)[rows]
    assert all(later < earlier for earlier, later in zip(to_b, to_b[1:], strict=False))
    steps = [float(dist_from(cat, a)[b]) for a, b in zip(rows, rows[1:], strict=False)]
    ideal = float(dist_from(cat, 0)[1]) / (size - 1)
    assert max(steps) <= 2.0 * ideal
    assert ctx.info["path"]["ideal_step"] > 0


def test_harmonic_neighbours_are_camelot_compatible_within_six_percent() -> None:
    cat = synthetic(600, seed=4)
    ctx = run(cat, "harmonic", seeds=[3], size=25, rules=Diversity.off())
    rows = ctx.picker.rows
    assert len(rows) == 25
    for a, b in zip(rows, rows[1:], strict=False):
        assert camelot_compatible(int(cat.camelot[a]), int(cat.camelot[b]))
        assert tempo_compatible(float(cat.num["bpm"][a]), float(cat.num["bpm"][b]), 0.06)


def test_camelot_and_tempo_rules() -> None:
    assert camelot_compatible(camelot_code("8A"), camelot_code("9A"))
    assert camelot_compatible(camelot_code("12A"), camelot_code("1A"))
    assert camelot_compatible(camelot_code("8A"), camelot_code("8B"))
    assert not camelot_compatible(camelot_code("8A"), camelot_code("9B"))
    assert not camelot_compatible(camelot_code("8A"), camelot_code("10A"))
    assert tempo_compatible(120, 126) and tempo_compatible(120, 62) and tempo_compatible(70, 139)
    assert not tempo_compatible(120, 130)


def test_filter_results_stay_inside_the_ranges() -> None:
    cat = synthetic(500, seed=5)
    filters = {"bpm": [90, 120], "energy": [0.5, None], "key": ["8A", "9A"]}
    ctx = run(cat, "filter", size=100, filters=filters, rules=Diversity.off(), random_seed=1)
    rows = ctx.picker.rows
    assert rows
    assert all(90 <= cat.num["bpm"][r] <= 120 and cat.num["energy"][r] >= 0.5 for r in rows)
    assert {int(cat.camelot[r]) for r in rows} <= {camelot_code("8A"), camelot_code("9A")}
    with pytest.raises(UnknownNameError) as err:
        run(cat, "filter", filters={"bmp": [90, 120]})
    assert "bpm" in err.value.candidates


def test_mood_uses_tag_probability() -> None:
    rng = np.random.default_rng(6)
    chill = rng.uniform(0, 0.6, 300).astype(np.float32)
    cat = synthetic(300, tags={"chill": chill, "rock": rng.uniform(0, 0.6, 300).astype(np.float32)})
    ctx = run(cat, "mood", size=30, params={"tags": ["chill"], "min_probability": 0.4}, rules=Diversity.off())
    assert ctx.picker.rows and all(chill[r] >= 0.4 for r in ctx.picker.rows)
    with pytest.raises(UnknownNameError) as err:
        run(cat, "mood", params={"tags": ["chil"]})
    assert "chill" in err.value.candidates


def test_diversity_gaps_and_cap_are_respected() -> None:
    n = 300
    artists = [f"Artist {i % 10}" for i in range(n)]
    albums = [f"Album {i % 20}" for i in range(n)]
    cat = synthetic(n, artists=artists, albums=albums, seed=7)
    rules = Diversity(artist_gap=3, album_gap=5, max_per_artist=3, dedupe=True)
    ctx = run(cat, "radio", seeds=[0], size=25, rules=rules)
    names = [artists[r] for r in ctx.picker.rows]
    assert gaps_respected(names, 3)
    assert gaps_respected([albums[r] for r in ctx.picker.rows], 5)
    assert max(names.count(a) for a in set(names)) <= 3
    assert len(names) == 25  # 10 artists × cap 3 leaves enough room


def test_a_continuation_keeps_the_gaps_from_what_came_before() -> None:
    """``after`` (e.g. MPD's queue): never repeated, and the gaps run on across the join, in every order."""
    n = 200
    artists = [f"Artist {i % 8}" for i in range(n)]
    cat = synthetic(n, artists=artists, seed=21)
    before = [40, 1, 2, 3]                      # artists 0, 1, 2, 3; the radio's seed is queued already
    rules = Diversity(artist_gap=3, album_gap=0, max_per_artist=0, dedupe=False)
    for order in ("as_is", "smooth", "energy_arc"):
        ctx = run(cat, "radio", seeds=[40], size=12, rules=rules, order=order, after=before)
        rows = ctx.picker.rows
        assert len(rows) == 12 and not set(rows) & set(before), order
        assert gaps_respected([artists[r] for r in [*before, *rows]], 3), order
        assert len(ctx.transition_costs) == 11, order   # costs within the playlist only
    alone = run(cat, "radio", seeds=[40], size=12, rules=rules, order="as_is").picker.rows
    assert alone[0] == 40 and artists[alone[1]] != "Artist 0"


def test_a_request_from_python_gets_the_same_defaults_as_a_parsed_one() -> None:
    settings = Settings()
    for body, typed in [({"strategy": "radio", "seeds": [3]}, PlaylistRequest.of("radio", settings, seeds=[3])),
                        ({"strategy": "all"}, PlaylistRequest.of("all", settings)),
                        ({"strategy": "mood", "tags": ["chill"], "duration_min": 30},
                         PlaylistRequest.of("mood", settings, params={"tags": ["chill"]}, duration_s=1800.0)),
                        ({"strategy": "filter", "sort": "bpm", "diversity": False},
                         PlaylistRequest.of("filter", settings, params={"sort": "bpm"}, diversity=Diversity.off()))]:
        assert PlaylistRequest.parse(body, settings) == typed, body


def test_dedupe_merges_versions_but_keeps_different_songs() -> None:
    assert song_key("Queen", "Song (Remastered 2011)") == song_key("Queen", "Song")
    assert normalise_title("Song - Live at Wembley") == normalise_title("Song [Radio Edit]") == "song"
    assert song_key("Queen", "Song Part 2") != song_key("Queen", "Song")
    assert song_key("Queen", "Song") != song_key("Other", "Song")
    n = 50
    titles = [f"Other {i}" for i in range(n)]
    titles[:4] = ["Song", "Song (Remastered 2011)", "Song Part 2", "Song - Live"]
    artists = ["Queen"] * 4 + [f"A{i}" for i in range(n - 4)]
    emb = np.random.default_rng(8).normal(0, 1, (n, 200))
    emb[1:4] = emb[0] + 0.01  # all four sound alike
    durations = np.linspace(150, 400, n)
    durations[2] = 300.0  # Part 2 is another length
    cat = synthetic(n, titles=titles, artists=artists, embedding=emb, duration=durations, seed=8)
    ctx = run(cat, "all", size=n, rules=Diversity(0, 0, 0, True), diversity_explicit=True)
    kept = {titles[r] for r in ctx.picker.rows}
    assert "Song" in kept and "Song Part 2" in kept
    assert "Song (Remastered 2011)" not in kept and "Song - Live" not in kept


def test_near_identical_embedding_and_duration_is_a_duplicate() -> None:
    n = 40
    emb = np.random.default_rng(9).normal(0, 1, (n, 200))
    emb[1] = emb[0]
    durations = np.linspace(150, 400, n)
    durations[1] = durations[0] + 1.0
    cat = synthetic(n, embedding=emb, duration=durations, titles=[None] * n, seed=9)  # untagged copies
    ctx = run(cat, "radio", seeds=[0], size=10, rules=Diversity(0, 0, 0, True))
    assert 1 not in ctx.picker.rows
    ctx = run(cat, "radio", seeds=[0], size=10, rules=Diversity.off())
    assert 1 in ctx.picker.rows


def test_clusters_are_named_from_their_members() -> None:
    rng = np.random.default_rng(10)
    n = 300
    group = np.repeat([0, 1, 2], 100)
    centres = rng.normal(0, 1, (3, 200)) * 3
    emb = centres[group] + rng.normal(0, 0.3, (n, 200))
    bpm = np.array([90.0, 128.0, 70.0])[group] + rng.normal(0, 1, n)
    tags = {label: np.where(group == g, 0.6, 0.05).astype(np.float32) + rng.uniform(0, 0.02, n).astype(np.float32)
            for g, label in enumerate(("chill", "party", "ambient"))}
    cat = synthetic(n, embedding=emb, bpm=bpm, tags=tags, seed=10)
    ctx = run(cat, "clusters", size=10, params={"k": 3}, random_seed=0)
    names = sorted(c["name"] for c in ctx.info["clusters"])
    assert names == ["Ambient · 70 BPM", "Chill · 90 BPM", "Party · 128 BPM"]
    assert all(c["size"] == 100 for c in ctx.info["clusters"])
    seeded = run(cat, "clusters", seeds=[250], size=10, params={"k": 3}, random_seed=0)
    assert seeded.name.startswith("Ambient") and all(group[r] == 2 for r in seeded.picker.rows)
    labels, _ = kmeans(cat, np.arange(n), 3, np.random.default_rng(0), np.ones(4, np.float32))
    assert len({(labels[group == g]).tolist().count(labels[group == g][0]) for g in range(3)}) == 1


def test_grouping_strategies_respect_their_bands() -> None:
    cat = synthetic(600, seed=11)
    ctx = run(cat, "feature_group", size=40, params={"tempo": "slow", "energy": "low"}, rules=Diversity.off())
    assert ctx.picker.rows and all(cat.num["bpm"][r] < 90 and cat.num["energy"][r] < 0.4 for r in ctx.picker.rows)
    night = run(cat, "time_based", size=20, params={"time_of_day": "night"}, rules=Diversity.off())
    assert night.picker.rows and all(cat.num["bpm"][r] <= 100 * 1.45 for r in night.picker.rows)
    for name in ("random", "kmeans", "mixed", "all", "similarity"):
        seeds = [0] if name == "similarity" else []
        got = run(cat, name, seeds=seeds, size=15, random_seed=1)
        assert len(got.picker.rows) == 15, name


def test_tag_based_artist_keeps_album_order_and_skips_gaps() -> None:
    n = 60
    artists = ["Air" if i % 6 == 0 else f"A{i}" for i in range(n)]
    cat = synthetic(n, artists=artists, seed=12)
    ctx = run(cat, "tag_based", size=50, params={"field": "artist", "value": "air"})
    assert len(ctx.picker.rows) == 10 and all(artists[r] == "Air" for r in ctx.picker.rows)
    with pytest.raises(UnknownNameError):
        run(cat, "tag_based", params={"field": "artist", "value": "Zzyzx Band"})


def test_duration_budget_and_bad_parameters() -> None:
    cat = synthetic(300, duration=np.full(300, 240.0), seed=13)
    ctx = run(cat, "random", size=1000, duration_s=30 * 60, rules=Diversity.off(), random_seed=0)
    assert len(ctx.picker.rows) == 8  # 8 × 4 min ≥ 30 min
    with pytest.raises(UnknownNameError):  # raw parameters are checked once, where they come in
        run(cat, "clusters", params=coerce_params(STRATEGIES["clusters"], {"kk": 3}))
    with pytest.raises(BadRequestError):
        run(cat, "clusters", params=coerce_params(STRATEGIES["clusters"], {"k": 1000}))
