"""Issue 22 point 2: the library's projection — fitted from the stored spreads, stored, refitted
in the background, and used by the catalog (so by /tracks/<id>/similar and everything else).

The libraries here are real SQLite files written through the real write path (tests/feature_data);
each track's patch embeddings are drawn around its mean with a within-track scatter that is large
in a few directions (as a song's sections vary), and its mean and spread are stored as the
analysis stores them (``features.embedding``, ``embedding_spread`` float16 [rows, 200])."""

from __future__ import annotations

import numpy as np
import pytest

from playlistgen.config import Settings
from playlistgen.core.playlists.service import PlaylistService, library_index
from playlistgen.core.similarity import fit as simfit
from playlistgen.core.similarity import store
from playlistgen.core.similarity.lda import fit_projection, spread_of
from playlistgen.core.similarity.refit import Refitter, status
from playlistgen.core.similarity.space import select
from playlistgen.core.storage.db import Database
from tests.feature_data import populate

D = 200
SOURCES = 6


def _patches(rng: np.random.Generator, n: int, start: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Patch embeddings of ``n`` tracks ([p, 200] each, p <= 13 so the stored spread is exact)
    and each track's source: a source's tracks share a centre; the within-track scatter is large
    along the first 20 dimensions, which raw cosine cannot tell from a difference between songs."""
    centres = np.random.default_rng(99).normal(0, 0.15, (SOURCES, D))
    within_std = np.full(D, 0.2)
    within_std[:20] = 3.0
    sources = (np.arange(start, start + n) % SOURCES)
    patches = []
    for s in sources:
        mean = centres[s] + rng.normal(0, 0.15, D)
        patches.append(mean + rng.normal(0, 1, (int(rng.integers(8, 14)), D)) * within_std)
    return patches, sources


def store_tracks(db: Database, patches: list[np.ndarray], start: int = 0, *, with_spread: bool = True) -> list[int]:
    """Analysed tracks whose embedding is the mean of ``patches`` and whose spread is stored."""
    ids = populate(db, len(patches), start=start)

    def write(conn) -> None:  # type: ignore[no-untyped-def]
        for track_id, p in zip(ids, patches, strict=True):
            spread = spread_of(p, 12).astype("<f2").tobytes() if with_spread else None
            conn.execute("UPDATE features SET embedding = ?, embedding_spread = ?, embedding_patches = ? "
                         "WHERE track_id = ?", (p.mean(axis=0).astype("<f4").tobytes(), spread, len(p), track_id))

    db.write(write)
    return ids


@pytest.fixture
def library(database: Database) -> tuple[Database, list[np.ndarray], list[int], np.ndarray]:
    patches, sources = _patches(np.random.default_rng(1), 60)
    return database, patches, store_tracks(database, patches), sources


def _settings(min_tracks: int = 20, **similarity: object) -> Settings:
    settings = Settings()
    settings.similarity.min_tracks = min_tracks
    for key, value in similarity.items():
        setattr(settings.similarity, key, value)
    return settings


def _pairwise(vectors: np.ndarray) -> np.ndarray:
    return np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=2)


def test_fit_from_stored_spreads_equals_the_fit_from_the_patches(library):
    db, patches, _, _ = library
    fitted = simfit.fit_library(db, "msd", min_tracks=20)
    means = np.stack([p.mean(axis=0) for p in patches])
    reference = fit_projection(means, np.mean([np.cov(p, rowvar=False, bias=True) for p in patches], axis=0))
    assert fitted.tracks == 60 and fitted.id > 0 and fitted.fit_s is not None
    loaded = store.newest(db, "msd")
    assert loaded is not None and loaded.id == fitted.id and loaded.tracks == 60
    # eigenvectors are defined up to sign (and rotation within equal eigenvalues): compare the
    # geometry the projection gives the tracks, not its columns
    ours, theirs = _pairwise(loaded.projection.apply(means)), _pairwise(reference.apply(means))
    assert np.allclose(ours, theirs, rtol=2e-2, atol=1e-3 * theirs.max())


def test_newest_few_are_kept_and_a_damaged_row_is_skipped(library):
    db, *_ = library
    ids = [simfit.fit_library(db, "msd", min_tracks=20).id for _ in range(store.KEEP + 2)]
    kept = [r[0] for r in db.query("SELECT id FROM similarity_projections ORDER BY id")]
    assert kept == ids[-store.KEEP:]
    db.write(lambda c: c.execute("UPDATE similarity_projections SET matrix = x'00' WHERE id = ?", (ids[-1],)))
    assert store.newest(db, "msd").id == ids[-2]          # the one before it


def test_too_few_tracks_is_one_clear_error(database):
    store_tracks(database, _patches(np.random.default_rng(2), 5)[0])
    with pytest.raises(simfit.NotEnoughTracks, match="5 tracks have a stored patch-embedding spread"):
        simfit.fit_library(database, "msd", min_tracks=20)


def test_refit_follows_the_share_of_change_and_not_before(library):
    db, *_ = library
    refitter = Refitter(db, _settings(min_tracks=20, refit_change=0.1).similarity)
    assert [p.tracks for p in refitter.check()] == [60]
    assert refitter.check() == []                          # nothing changed
    more, _ = _patches(np.random.default_rng(3), 5, start=60)
    store_tracks(db, more, start=60)                       # +5 of 60: 8 %, under the share
    assert refitter.check() == []
    store_tracks(db, _patches(np.random.default_rng(4), 1, start=65)[0], start=65)   # +6: 10 %
    assert [p.tracks for p in refitter.check()] == [66]
    assert refitter.fits == 2


def test_refit_waits_for_min_tracks(database):
    store_tracks(database, _patches(np.random.default_rng(5), 15)[0])
    refitter = Refitter(database, _settings(min_tracks=20).similarity)
    assert refitter.check() == []
    assert store.fitted_on(database, "msd") is None


def test_the_refit_loop_fits_on_its_own_thread(library):
    db, *_ = library
    refitter = Refitter(db, _settings(min_tracks=20).similarity)
    refitter.start()
    try:
        for _ in range(600):                               # a condition, bounded: up to 60 s
            if refitter.fits:
                break
            refitter.loop.sleep(0.1)
        assert refitter.fits == 1 and refitter.loop.errors == 0
    finally:
        refitter.stop()
    assert not refitter.loop.is_alive
    assert refitter.health()["last_fit"]["tracks"] == 60


def _precision_at(vectors: np.ndarray, sources: np.ndarray, k: int = 5) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :k]
    return float((sources[top] == sources[:, None]).mean())


def test_catalog_key_changes_on_refit_and_similar_answers_from_the_projected_vectors(library, make_app):
    db, patches, ids, sources = library
    settings = _settings(min_tracks=20)
    for group in ("scalars", "mfcc", "chroma"):             # the embedding alone: distances are checkable by hand
        setattr(settings.playlists, f"weight_{group}", 0.0)
    service = PlaylistService(db, settings, index=library_index(db, settings, min_rebuild_s=0.0))
    app = make_app(settings, db, playlists=service)
    client = app.api.test_client()

    raw = service.index.refresh()
    assert raw.space.projection is None and "no shipped projection" in raw.space.reason or \
        raw.space.projection.source == "shipped"
    fitted = simfit.fit_library(db, "msd", min_tracks=20)
    cat = service.index.refresh()
    assert cat.key != raw.key and cat.space.projection.id == fitted.id
    assert service.index.refresh() is cat                  # built once per projection
    body = client.get("/api/v1/library/status").get_json()["similarity"]
    assert body["in_use"] == "library fit of 60 tracks (msd)" and body["index"] == body["in_use"]

    # by hand: project the stored means, centre, one common scale, cosine
    means = np.stack([p.mean(axis=0).astype(np.float32) for p in patches])
    projected = store.newest(db, "msd").projection.apply(means).astype(np.float64)
    projected -= projected.mean(axis=0)
    unit = projected / np.linalg.norm(projected, axis=1, keepdims=True)
    seed = ids[0]
    answer = client.get(f"/api/v1/tracks/{seed}/similar?n=8").get_json()
    assert answer["metric"] == "cosine" and len(answer["similar"]) == 8
    for item in answer["similar"]:
        i = ids.index(item["id"])
        assert item["distance"] == pytest.approx(1.0 - unit[0] @ unit[i], abs=2e-3)
    # and the projection is why: the within-track noise no longer hides the sources
    assert _precision_at(projected, sources) > _precision_at(means - means.mean(axis=0), sources) + 0.2


def test_off_and_dsp_only_libraries_use_the_raw_embedding_visibly(database):
    populate(database, 30, preset="fast")
    settings = _settings(min_tracks=20)
    body = status(database, settings.similarity)
    assert body["source"] == "none" and "preset fast" in body["in_use"]
    cat = library_index(database, settings).refresh()
    assert cat.space.projection is None and not cat.present[:, -1].any()
    assert select(database, mode="off", embedded=30).describe() == \
        "none: raw MusiCNN embedding (similarity.projection is off)"


def test_cli_fit_prints_the_figures_and_status_shows_the_projection_in_use(library):
    from tests.conftest import run_cli

    db, *_ = library
    path = db.path
    env = {"PLAYLISTGEN_SIMILARITY__MIN_TRACKS": "20"}
    fitted = run_cli("similarity", "fit", "--db", str(path), env=env)
    assert fitted.returncode == 0, fitted.stderr
    assert "fitted the msd projection on 60 tracks in" in fitted.stdout
    shown = run_cli("similarity", "status", "--db", str(path), env=env)
    assert shown.returncode == 0 and "in use: library fit of 60 tracks (msd)" in shown.stdout
    refused = run_cli("similarity", "fit", "--db", str(path), env={"PLAYLISTGEN_SIMILARITY__MIN_TRACKS": "500"})
    assert refused.returncode != 0
    assert "60 tracks have a stored patch-embedding spread for msd; a library fit needs at least 500" in refused.stderr
    assert "lower similarity.min_tracks" in refused.stderr


def test_a_small_library_uses_the_shipped_projection(database):
    from playlistgen.core.similarity.space import shipped

    projection = shipped("msd")
    assert projection is not None, "playlistgen/core/similarity/shipped/msd.npz is missing: " \
        "run bench/fit_shipped_projection.py"
    assert projection.projection.matrix.shape == (200, 200) and projection.tracks >= 50
    store_tracks(database, _patches(np.random.default_rng(6), 12)[0])
    body = status(database, _settings(min_tracks=20).similarity)
    assert body["source"] == "shipped" and body["in_use"].startswith("shipped projection (msd, fitted on")
    cat = library_index(database, _settings(min_tracks=20)).refresh()
    assert cat.space.projection is projection and cat.present[:, -1].all()


def test_a_small_library_whose_tracks_all_have_mtt_uses_the_shipped_msd_mtt_projection(database):
    """The default preset (balanced) runs MTT: a small library of it uses the shipped msd+mtt
    projection; one embedded track without MTT (an older analysis) keeps the whole catalog on msd."""
    from playlistgen.core.similarity.space import shipped

    joint = shipped("msd+mtt")
    assert joint is not None, "playlistgen/core/similarity/shipped/msd_mtt.npz is missing: " \
        "run bench/fit_shipped_projection.py"
    assert joint.projection.matrix.shape == (400, 400) and joint.tracks >= 50
    assert select(database, min_tracks=20, embedded=12, all_mtt=True).projection is joint
    assert select(database, min_tracks=20, embedded=12, all_mtt=False).projection is shipped("msd")
    # the library's own msd fit (enough tracks) beats any shipped one until it has an msd+mtt fit
    store_tracks(database, _patches(np.random.default_rng(7), 24)[0])
    own = simfit.fit_library(database, "msd", min_tracks=20)
    assert select(database, min_tracks=20, embedded=24, all_mtt=True).projection.id == own.id
