"""Issue 22 end to end on real music: real audio through the real decoder and the real MusiCNN
models at the default preset (balanced = MSD + MTT), `similarity fit` fitting the ``msd+mtt``
projection from the stored spreads, the catalog using it (``similarity status`` and
``/api/v1/library/status`` say so), and ``/api/v1/tracks/<id>/similar`` answering with the distances
the projected vectors give by hand. Then a library analysed before MTT was stored keeps the
``msd`` space until ``scan --upgrade`` fills it, and switches with one index rebuild."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from playlistgen.config import Settings
from playlistgen.core.analysis.factory import essentia_available
from playlistgen.core.playlists.service import PlaylistService, library_index
from playlistgen.core.similarity import store
from playlistgen.core.similarity.refit import Refitter
from playlistgen.core.similarity.space import shipped
from playlistgen.core.storage.db import Database
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
REAL = ROOT / ".cache" / "real-audio" / "xmoto"
# the 7 real xmoto-data tracks `make realaudio` fetches (71–200 s), as on a fresh machine
FILES = ["MadeiraStew.ogg", "foxrun.ogg", "legolodio.ogg", "menu.ogg", "ridealong.ogg", "speeditup.ogg",
         "batcave.ogg"]
N = len(FILES)
FIT_MIN = 5        # min_tracks low enough for a library fit of N tracks
NEAREST = N - 2    # neighbours asked for (all but the seed and one)

pytestmark = pytest.mark.skipif(
    not (essentia_available() and (MODELS / "mtt_musicnn.onnx").is_file() and all((REAL / f).is_file() for f in FILES)),
    reason="needs Essentia, the MusiCNN models (`playlistgen models install`) and .cache/real-audio (make realaudio)")


def _env(db: Path, min_tracks: int) -> dict:
    return {"PLAYLISTGEN_DATABASE__PATH": str(db), "PLAYLISTGEN_ANALYSIS__MODELS_DIR": str(MODELS),
            "PLAYLISTGEN_SIMILARITY__MIN_TRACKS": str(min_tracks)}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of the N real tracks analysed by `scan` at preset balanced (the default)."""
    root = tmp_path_factory.mktemp("real-library")
    for name in FILES:
        (root / "music" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL / name, root / "music" / name)
    db = root / "library.db"
    proc = run_cli("scan", str(root / "music"), "--workers", "1", env=_env(db, 30), cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return db


def _copy(db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy.db"
    shutil.copyfile(db, out)
    return out


def _settings(db: Path, min_tracks: int, *, embedding_only: bool = False) -> Settings:
    settings = Settings()
    settings.database.path = str(db)
    settings.similarity.min_tracks = min_tracks
    if embedding_only:   # the embedding alone: distances are checkable by hand
        for group in ("scalars", "mfcc", "chroma"):
            setattr(settings.playlists, f"weight_{group}", 0.0)
    return settings


def _joint_rows(db: Database) -> tuple[list[int], np.ndarray]:
    """(track ids, [n, 400] MSD‖MTT means) as the analysis stored them."""
    rows = db.query("SELECT f.track_id, f.embedding, f.embedding_mtt FROM features f ORDER BY f.track_id")
    ids = [r[0] for r in rows]
    return ids, np.stack([np.concatenate([np.frombuffer(e, "<f4"), np.frombuffer(m, "<f4")]) for _, e, m in rows])


def test_balanced_analysis_stores_mtt_and_the_joint_spread(analysed):
    db = Database(analysed)
    try:
        rows = db.query("SELECT preset, length(embedding_mtt), length(embedding_spread), embedding_patches "
                        "FROM features")
    finally:
        db.close()
    assert len(rows) == len(FILES)
    for preset, mtt, spread, patches in rows:
        # MSD‖MTT spread: float16 rows of 400 (6 rows at most), from the every-third-patch plan
        assert preset == "balanced" and mtt == 800 and spread % 800 == 0 and 0 < spread <= 6 * 800 and patches >= 2


def test_fit_status_and_similar_answer_from_the_msd_mtt_projection(analysed, tmp_path, make_app):
    path = _copy(analysed, tmp_path)
    env = _env(path, FIT_MIN)
    before = json.loads(run_cli("similarity", "status", "--json", env=env).stdout)
    assert before["source"] == "shipped" and before["representation"] == "msd+mtt"

    fitted = run_cli("similarity", "fit", env=env)
    assert fitted.returncode == 0, fitted.stderr
    assert f"fitted the msd projection on {N} tracks" in fitted.stdout
    assert f"fitted the msd+mtt projection on {N} tracks" in fitted.stdout
    shown = run_cli("similarity", "status", env=env)
    assert f"in use: library fit of {N} tracks (msd+mtt)" in shown.stdout, shown.stdout

    settings = _settings(path, FIT_MIN, embedding_only=True)
    db = Database(path)
    service = PlaylistService(db, settings, index=library_index(db, settings, min_rebuild_s=0.0))
    client = make_app(settings, db, playlists=service).api.test_client()
    assert service.index.refresh().space.projection.representation == "msd+mtt"
    body = client.get("/api/v1/library/status").get_json()["similarity"]
    assert body["in_use"] == f"library fit of {N} tracks (msd+mtt)" and body["representation"] == "msd+mtt"
    assert body["index"] == body["in_use"]

    # by hand: project the stored MSD‖MTT means, centre, one common scale, cosine
    ids, joint = _joint_rows(db)
    projection = store.newest(db, "msd+mtt")
    assert projection.projection.matrix.shape == (400, 400)
    projected = projection.projection.apply(joint).astype(np.float64)
    projected -= projected.mean(axis=0)
    unit = projected / np.linalg.norm(projected, axis=1, keepdims=True)
    for seed in (ids[0], ids[-1]):
        answer = client.get(f"/api/v1/tracks/{seed}/similar?count={NEAREST}").get_json()
        assert answer["metric"] == "cosine" and len(answer["similar"]) == NEAREST
        by_hand = sorted(1.0 - unit[ids.index(seed)] @ unit[i] for i, t in enumerate(ids) if t != seed)
        # the nearest by hand, in order (compared by distance: ties may swap two ids)
        assert [item["distance"] for item in answer["similar"]] == pytest.approx(by_hand[:NEAREST], abs=2e-3)
        for item in answer["similar"]:
            i = ids.index(item["id"])
            assert item["distance"] == pytest.approx(1.0 - unit[ids.index(seed)] @ unit[i], abs=2e-3)


def test_tracks_without_mtt_keep_msd_until_the_upgrade_fills_it_then_one_rebuild(analysed, tmp_path):
    path = _copy(analysed, tmp_path)
    db = Database(path)
    try:
        # what an older balanced analysis left: the MSD mean only (no MTT, no spread)
        original = {r[0]: (r[1], r[2], r[3]) for r in db.query(
            "SELECT id, embedding_mtt, embedding_spread, embedding_patches FROM features")}
        db.write(lambda c: c.execute("UPDATE features SET embedding_mtt = NULL, embedding_spread = NULL, "
                                     "embedding_patches = NULL"))
        settings = _settings(path, 100)                      # too small for a fit of its own: shipped
        index = library_index(db, settings, min_rebuild_s=0.0)
        old = index.refresh()
        assert old.space.projection is shipped("msd") and index.builds == 1

        # all but one track upgraded: one embedded track without MTT keeps the whole catalog on msd
        first = min(original)
        db.write(lambda c: c.executemany(
            "UPDATE features SET embedding_mtt = ?, embedding_spread = ?, embedding_patches = ? WHERE id = ?",
            [(*v, k) for k, v in original.items() if k != first]))
        assert index.refresh().space.projection is shipped("msd")
        db.write(lambda c: c.execute("UPDATE features SET embedding_mtt = NULL, embedding_spread = NULL, "
                                     "embedding_patches = NULL"))

        proc = run_cli("scan", str(analysed.parent / "music"), "--upgrade", "--workers", "1", env=_env(path, 100),
                       cwd=tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert db.query("SELECT count(*) FROM features WHERE embedding_mtt IS NULL OR embedding_spread IS NULL") \
            == [(0,)]
        builds = index.builds
        new = index.refresh()
        assert new.space.projection is shipped("msd+mtt") and index.builds == builds + 1
        assert index.refresh() is new and index.builds == builds + 1        # once

        # and once the library may fit its own (min_tracks FIT_MIN), the refit gives it msd+mtt
        settings.similarity.min_tracks = FIT_MIN
        fits = Refitter(db, settings.similarity).check()
        assert sorted(f.representation for f in fits) == ["msd", "msd+mtt"]
    finally:
        db.close()
