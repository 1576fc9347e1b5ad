"""The representation bench's measures (bench/similarity_stats.py, bench/similarity_artists.py):
per-query precision with the artist filter, hubness, the paired bootstrap, and the artist fallback
for untagged corpus files. Small made-up spaces whose right answers are known by construction."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        import similarity_artists
        import similarity_stats
    finally:
        sys.path.remove(str(BENCH))
    return similarity_stats, similarity_artists


def _two_clusters(n: int = 24, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array(["a"] * (n // 2) + ["b"] * (n // 2))
    centres = {"a": np.array([1.0, 0.0, 0.0]), "b": np.array([0.0, 1.0, 0.0])}
    vectors = np.stack([centres[x] for x in labels]) + noise * rng.standard_normal((n, 3))
    return vectors, labels


def test_separable_space_scores_one_and_random_about_chance(bench) -> None:  # type: ignore[no-untyped-def]
    st, _ = bench
    vectors, labels = _two_clusters()
    rows = np.arange(len(labels))
    artists = np.full(len(labels), -1)
    good = st.score(st.cosine_distances(vectors), rows, rows, labels, artists)
    assert good.p10.mean() == 1.0 and good.p10_artist.mean() == 1.0
    rand = st.random_scores(rows, rows, labels, artists)
    assert 0.25 < rand.p10.mean() < 0.7     # chance is 11/23 ≈ 0.48


def test_artist_filter_skips_the_querys_artist(bench) -> None:  # type: ignore[no-untyped-def]
    st, _ = bench
    vectors, labels = _two_clusters(n=24)
    # in cluster a, tracks 0–9 share one artist: their filtered lists can hold only 1 track of a
    artists = np.array([0] * 10 + [-1] * 14)
    rows = np.arange(24)
    s = st.score(st.cosine_distances(vectors), rows, rows, labels, artists)
    assert s.p10[:10].tolist() == [1.0] * 10
    assert np.allclose(s.p10_artist[:10], 0.2)   # the 2 tracks of a by nobody known, then 8 of b
    assert s.p10_artist[12:].tolist() == [1.0] * 12


def test_hubness_is_high_when_one_track_is_everyones_neighbour(bench) -> None:  # type: ignore[no-untyped-def]
    st, _ = bench
    lists = [np.array([0, i % 5 + 1]) for i in range(40)]
    counts = st.occurrences(lists, 41)
    assert counts[0] == 40
    assert st.skewness(counts) > 3
    assert st.skewness(np.ones(10)) == 0.0


def test_paired_bootstrap_sees_a_consistent_gain_and_not_noise(bench) -> None:  # type: ignore[no-untyped-def]
    st, _ = bench
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, 100)
    gain = st.paired_interval(a, a + 0.05 + rng.normal(0, 0.02, 100))
    assert gain["lo"] > 0 and gain["lo"] <= gain["diff"] <= gain["hi"]
    noise = st.paired_interval(a, a + rng.normal(0, 0.2, 100))
    assert noise["lo"] < 0 < noise["hi"]


def test_compare_refuses_different_queries(bench) -> None:  # type: ignore[no-untyped-def]
    st, _ = bench
    vectors, labels = _two_clusters()
    D = st.cosine_distances(vectors)
    artists = np.full(len(labels), -1)
    one = st.score(D, np.arange(10), np.arange(24), labels, artists)
    other = st.score(D, np.arange(1, 11), np.arange(24), labels, artists)
    with pytest.raises(ValueError, match="same queries"):
        st.compare(one, other)
    same = st.compare(one, st.score(D, np.arange(10), np.arange(24), labels, artists))
    assert same["p10"]["diff"] == 0.0 and same["hubness"]["diff"] == 0.0


@pytest.mark.parametrize(("stem", "artist"), [
    ("01 - pronobozo - lincity", "pronobozo"),
    ("03 - Robert van Herk - Architectural Contemplations", "robert van herk"),
    ("calmrace-ks", "ks"), ("start1-jt", "jt"),
    ("hr-domina-hunting", "domina"),
    ("PsymongN1", "psymong"), ("MarineAlienRaid", "marine"), ("David03", "david"),
    ("Crystan-Battlescape01", "crystan"), ("van_mission3", "van"),
])
def test_file_name_fallback_names_the_composer(bench, stem: str, artist: str) -> None:  # type: ignore[no-untyped-def]
    _, sa = bench
    assert sa.artist_from_name(stem) == artist


def test_tagged_artists_win_and_crystan_aliases_fold(bench) -> None:  # type: ignore[no-untyped-def]
    _, sa = bench
    assert sa.fold_artist('Christian "Crystan" Hoffmann') == sa.fold_artist("www.indiedb.com/members/crystan")
    assert sa.fold_artist("<Unknown>") is None and sa.fold_artist("") is None
    assert sa.fold_artist("Jens Erler") == "jens erler"


def test_file_name_artists_stay_in_their_package_unless_a_tag_names_them(bench) -> None:  # type: ignore[no-untyped-def]
    _, sa = bench
    paths = ["/c/drascula-music/track1.ogg", "/c/drascula-music/track2.ogg", "/c/warzone2100-music/track9.opus",
             "/c/xmoto-data/Crystan-Battlescape01.ogg", "/c/ufoai-music/a.ogg"]
    tags = [None, None, None, None, "Christian Crystan Hoffmann"]
    names, rules = sa.artist_names(paths, tags, {})
    assert names[0] == names[1] == "drascula-music/track"      # one composer within a package …
    assert names[2] == "warzone2100-music/track"               # … a different one in another
    assert names[3] == names[4] == "crystan"                   # a tagged name joins across packages
    assert rules == ["file_name"] * 4 + ["tag"]


def test_credits_name_untagged_files_and_fold_like_tags(bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, sa = bench
    (tmp_path / "artists.tsv").write_text("path\tartist\nhedgewars-data/City.ogg\tHSR\n"
                                          "hedgewars-data/Rock.ogg\t  hsr \n", encoding="utf-8")
    credits = sa.corpus_credits(tmp_path)
    paths = [str(tmp_path / "hedgewars-data" / n) for n in ("City.ogg", "Rock.ogg", "Art.ogg", "Beach.ogg")]
    names, rules = sa.artist_names(paths, [None, None, None, "Tiyuri"], credits)
    assert names[0] == names[1] == "hsr" and rules[:2] == ["credits", "credits"]
    assert names[2] == "hedgewars-data/art" and names[3] == "tiyuri"
    assert sa.corpus_credits(tmp_path / "no-such-corpus") == {}


def test_corpus_cache_keys_keep_corpora_apart(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from common import corpus_key
    finally:
        sys.path.remove(str(BENCH))
    dev, held, other = tmp_path / "corpus", tmp_path / "heldout", tmp_path / "x" / "heldout"
    for folder, text in ((dev, "a"), (held, "b"), (other, "c")):
        folder.mkdir(parents=True)
        (folder / "manifest.tsv").write_text(f"path\tpackage\tbytes\n{text}\tp\t1\n")
    assert corpus_key(dev) == "corpus"                       # the dev corpus keeps its cache names
    assert corpus_key(held).startswith("heldout-") and corpus_key(held) != corpus_key(other)


def test_default_preset_runs_msd_and_mtt_on_every_third_patch() -> None:
    """Issue 22 point 3: MSD + MTT at stride 3 measured 0.157× MusicExtractor's CPU (budget 0.18×) and
    raised artist-filtered P@10 in every corpus variant (docs/similarity.md), so balanced runs both."""
    from playlistgen.config import Settings
    from playlistgen.core.analysis.presets import MUSICNN_PATCH_FRAMES, get_preset

    balanced = get_preset(Settings().analysis.preset)
    assert balanced.name == "balanced"
    assert balanced.models == ("msd_musicnn", "mtt_musicnn")
    assert (balanced.patch_hop, balanced.patch_stride) == (MUSICNN_PATCH_FRAMES, 3)
