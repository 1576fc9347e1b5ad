"""Transition costs and the orders smooth / energy_arc (pure functions, hand-made sets whose best
order is known)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from playlistgen.core.music import camelot_distance
from playlistgen.core.playlists.diversity import gaps_respected
from playlistgen.core.playlists.transitions import (
    Costs,
    TrackFeatures,
    cost_matrix,
    order,
    path_cost,
    solve_path,
)


def features(n: int, *, camelot=None, bpm=None, lufs=None, energy=None, vectors=None) -> TrackFeatures:
    return TrackFeatures(
        camelot=np.asarray(camelot if camelot is not None else np.full(n, 7), dtype=np.int64),
        bpm=np.asarray(bpm if bpm is not None else np.full(n, 120.0), dtype=np.float64),
        loudness=np.asarray(lufs if lufs is not None else np.full(n, -10.0), dtype=np.float64),
        energy=np.asarray(energy if energy is not None else np.full(n, 0.5), dtype=np.float64),
        vectors=None if vectors is None else np.asarray(vectors, dtype=np.float64))


def test_costs_parts_follow_music_rules() -> None:
    f = features(5, camelot=[7, 8, 19, 1, -1], bpm=[120, 60, 127, 180, np.nan])
    C = cost_matrix(f, {"camelot": 1, "tempo": 0, "loudness": 0, "energy": 0, "embedding": 0})
    assert C[0, 0] == 0
    assert C[0, 1] < 0.1 and C[0, 2] < 0.1          # ±1 on the wheel; relative major (8A → 8B)
    assert C[0, 3] == pytest.approx(1.0)            # a tritone away
    assert C[0, 4] == 0.5                           # unknown key: neutral
    T = cost_matrix(f, {"camelot": 0, "tempo": 1, "loudness": 0, "energy": 0, "embedding": 0})
    assert T[0, 1] == pytest.approx(0.0)            # half time is compatible
    assert 0.2 < T[0, 2] < 0.35                     # ~6 %
    assert T[0, 3] == pytest.approx(1.0)            # 3:2
    assert np.allclose(C, C.T) and np.allclose(T, T.T)


def test_camelot_cycle_is_walked_step_by_step() -> None:
    rng = np.random.default_rng(3)
    keys = np.concatenate([[0], rng.permutation(np.arange(1, 12))])  # 1A first (the seed), the rest shuffled
    f = features(12, camelot=keys, vectors=rng.normal(size=(12, 8)) * 0.01 + 1)
    p = order("smooth", Costs(f), fixed=1)
    assert p[0] == 0 and sorted(p) == list(range(12))
    steps = camelot_distance(keys[p[:-1]], keys[p[1:]])
    assert np.all(steps == 1), keys[p]


def test_tempo_ladder_is_climbed_in_order() -> None:
    rng = np.random.default_rng(5)
    ladder = 80 * 1.04 ** np.arange(10)
    shuffled = np.concatenate([[ladder[0]], rng.permutation(ladder[1:])])
    p = order("smooth", Costs(features(10, bpm=shuffled)), fixed=1)
    assert list(np.round(shuffled[p], 3)) == list(np.round(ladder, 3))


def test_free_start_finds_the_end_of_a_ladder() -> None:
    ladder = np.array([100.0, 104, 108, 112, 116, 120])
    rng = np.random.default_rng(1)
    shuffled = rng.permutation(ladder)
    p = order("smooth", Costs(features(6, bpm=shuffled)), fixed=0)
    got = list(shuffled[p])
    assert got in (list(ladder), list(ladder[::-1]))


def test_solver_matches_brute_force_on_small_sets() -> None:
    worse = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        f = features(8, camelot=rng.integers(0, 24, 8), bpm=rng.uniform(70, 170, 8),
                     lufs=rng.uniform(-20, -6, 8), energy=rng.uniform(0, 1, 8), vectors=rng.normal(size=(8, 16)))
        C = cost_matrix(f)
        best = min(path_cost(C, np.array((0, *perm))).sum() for perm in itertools.permutations(range(1, 8)))
        got = path_cost(C, solve_path(C, 1)).sum()
        assert got <= best * 1.08 + 1e-9
        worse.append(got > best + 1e-9)
    assert sum(worse) <= 3     # usually the optimum itself


def test_smooth_never_costs_more_than_the_given_order() -> None:
    rng = np.random.default_rng(11)
    n = 60
    f = features(n, camelot=rng.integers(0, 24, n), bpm=rng.uniform(70, 170, n), lufs=rng.uniform(-20, -6, n),
                 energy=rng.uniform(0, 1, n), vectors=rng.normal(size=(n, 16)))
    costs = Costs(f)
    p = order("smooth", costs, fixed=1)
    assert p[0] == 0 and sorted(p) == list(range(n))
    assert costs.steps(p).mean() < 0.6 * costs.steps(np.arange(n)).mean()


def test_fixed_prefix_stays_in_front() -> None:
    rng = np.random.default_rng(2)
    f = features(20, bpm=rng.uniform(70, 170, 20))
    for mode in ("smooth", "energy_arc"):
        p = order(mode, Costs(f), fixed=3, energy=rng.uniform(0, 1, 20))
        assert list(p[:3]) == [0, 1, 2] and sorted(p) == list(range(20))


def test_gaps_hold_after_reordering() -> None:
    # 10 artists x 3 tracks; an artist's tracks are identical, so a plain smooth order groups them
    n, per = 30, 3
    artist = np.repeat(np.arange(n // per), per)
    album = artist.copy()
    bpm = 90 + artist * 5.0
    rng = np.random.default_rng(4)
    perm = np.concatenate([[0], rng.permutation(np.arange(1, n))])
    costs = Costs(features(n, bpm=bpm[perm], energy=np.linspace(0, 1, n)[perm]))
    grouped = order("smooth", costs, fixed=1)
    assert not gaps_respected(list(artist[perm][grouped]), 2)
    for mode in ("smooth", "energy_arc"):
        p = order(mode, costs, fixed=1, energy=np.linspace(0, 1, n)[perm], artist=artist[perm], album=album[perm],
                  artist_gap=2, album_gap=1)
        assert p[0] == 0 and sorted(p) == list(range(n))
        assert gaps_respected(list(artist[perm][p]), 2)


def test_energy_arc_peaks_in_the_middle() -> None:
    rng = np.random.default_rng(8)
    n = 31
    energy = rng.uniform(0, 1, n)
    f = features(n, energy=energy, bpm=rng.uniform(90, 130, n))
    p = order("energy_arc", Costs(f), fixed=0, energy=energy)
    e = energy[p]
    third = n // 3
    assert third <= int(np.argmax(e)) < n - third
    assert e[third:n - third].mean() > e[:third].mean() + 0.2
    assert e[third:n - third].mean() > e[n - third:].mean() + 0.2


def test_long_lists_are_ordered_in_windows() -> None:
    from playlistgen.core.playlists import transitions

    rng = np.random.default_rng(9)
    n = 130
    f = features(n, bpm=rng.uniform(70, 170, n), energy=rng.uniform(0, 1, n))
    saved = transitions.WINDOW
    transitions.WINDOW = 50
    try:
        costs = Costs(f)
        assert costs.full is None
        p = order("smooth", costs, fixed=1)
        steps = costs.steps(p)
    finally:
        transitions.WINDOW = saved
    assert p[0] == 0 and sorted(p) == list(range(n))
    assert steps.shape == (n - 1,)
    assert np.allclose(steps, path_cost(cost_matrix(f), p))
    assert steps.mean() < 0.6 * path_cost(cost_matrix(f), np.arange(n)).mean()


def test_gaps_hold_when_albums_bind_across_artists() -> None:
    """Untagged tracks (artist -1) on three albums and one artist's two albums: the only orders
    that keep album gap 2 put the four tracks of album P at every third place. A plain smooth
    order wants the P tracks together; the gaps of the given (valid) order must survive."""
    #          X1 P  Q  R  P  Q  X2 P  Q  R  P      (artist X = 0; album codes Xa 0, Xb 1, P 2, Q 3, R 4)
    artist = np.array([0, -1, -1, -1, -1, -1, 0, -1, -1, -1, -1])
    album = np.array([0, 2, 3, 4, 2, 3, 1, 2, 3, 4, 2])
    assert gaps_respected(list(artist), 3) and gaps_respected(list(album), 2)
    style = {0: (100.0, 7, 0.5), 1: (100.0, 7, 0.5), 2: (140.0, 13, 0.9), 3: (120.0, 4, 0.7), 4: (110.0, 6, 0.6)}
    rng = np.random.default_rng(0)
    centre = {code: rng.normal(size=16) for code in style}
    f = features(11, bpm=[style[a][0] for a in album], camelot=[style[a][1] for a in album],
                 energy=[style[a][2] for a in album], vectors=[centre[a] + rng.normal(size=16) * 0.05 for a in album])
    for mode in ("smooth", "energy_arc"):
        notes: list[str] = []
        p = order(mode, Costs(f), fixed=1, energy=f.energy, artist=artist, album=album, artist_gap=3, album_gap=2,
                  notes=notes)
        assert p[0] == 0 and sorted(p) == list(range(11))
        assert gaps_respected(list(artist[p]), 3) and gaps_respected(list(album[p]), 2), (mode, album[p])
        assert notes == []


def test_gaps_hold_for_any_valid_list() -> None:
    """Random lists that keep artist gap 3 and album gap 2 (unknown artists, albums shared across
    artists): every order keeps both."""
    for seed in range(150):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(8, 40))
        artist, album = _valid_codes(rng, n, artists=int(rng.integers(4, 8)), albums=int(rng.integers(3, 8)))
        f = features(n, camelot=rng.integers(0, 24, n), bpm=rng.uniform(70, 160, n), lufs=rng.uniform(-20, -5, n),
                     energy=rng.uniform(0, 1, n), vectors=rng.normal(size=(n, 8)))
        for mode in ("smooth", "energy_arc"):
            p = order(mode, Costs(f), fixed=1, energy=f.energy, artist=artist, album=album, artist_gap=3, album_gap=2)
            assert sorted(p) == list(range(n)) and p[0] == 0
            assert gaps_respected(list(artist[p]), 3) and gaps_respected(list(album[p]), 2), (seed, mode)


def _valid_codes(rng: np.random.Generator, n: int, *, artists: int, albums: int) -> tuple[np.ndarray, np.ndarray]:
    """Artist codes (-1 = unknown, never clashes) keeping gap 3 and album codes keeping gap 2."""
    artist: list[int] = []
    album: list[int] = []
    for _ in range(n):
        free = [a for a in range(-1, artists) if a == -1 or a not in artist[-3:]]
        weights = np.array([0.3 if a == -1 else 1.0 / (a + 1.5) for a in free])
        artist.append(int(rng.choice(free, p=weights / weights.sum())))
        album.append(int(rng.choice([b for b in range(albums) if b not in album[-2:]])))
    return np.array(artist), np.array(album)


def test_tempo_compatibility_is_symmetric() -> None:
    """A harmonic mix's penalty matrix must be symmetric for the path solver: 100 → 106.1 BPM and
    106.1 → 100 BPM are the same transition."""
    from playlistgen.core.music import tempo_compatible

    rng = np.random.default_rng(0)
    a, b = rng.uniform(60, 180, 5000), rng.uniform(60, 180, 5000)
    assert np.array_equal(tempo_compatible(a, b, 0.06), tempo_compatible(b, a, 0.06))
    assert tempo_compatible(100.0, 106.0) and not tempo_compatible(100.0, 106.5)


def test_the_solver_stops_on_an_asymmetric_matrix() -> None:
    """Or-opt assumes a symmetric matrix; given an asymmetric one (the harmonic mix's used to be)
    it looped forever. Run in a child process so a regression fails instead of hanging."""
    import subprocess
    import sys

    code = ("import numpy as np\n"
            "from playlistgen.core.playlists.transitions import improve\n"
            "for s in range(20):\n"
            "    rng = np.random.default_rng(s)\n"
            "    C = rng.uniform(0, 1, (12, 12)) + 13 * (rng.random((12, 12)) < 0.3)\n"
            "    np.fill_diagonal(C, 0)\n"
            "    p = improve(C, np.arange(12), 1)\n"
            "    assert sorted(p) == list(range(12)) and p[0] == 0\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
