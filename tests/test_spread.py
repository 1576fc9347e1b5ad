"""Issue 22 point 1: the analysis stores each track's patch-embedding spread (and the MTT
embedding where the preset runs MTT), small, and export/import carry it. Real audio through the
real decoder and the real MusiCNN models, a real database."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from playlistgen.core.analysis.factory import create_analyzer, essentia_available
from playlistgen.core.analysis.musicnn import MAX_KEPT_PATCHES, MusicnnState, MusicnnStream
from playlistgen.core.analysis.presets import get_preset
from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.core.library import export_format
from playlistgen.core.storage.db import Database
from playlistgen.core.storage.jobs import Job, JobQueue
from playlistgen.core.storage.records import get_adaptation, spread_from_blob

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
REAL = ROOT / ".cache" / "real-audio" / "xmoto"
SHORT = REAL / "MadeiraStew.ogg"      # 71 s: few patches at balanced (rank ≤ 6: exact)
LONG = REAL / "batcave.ogg"           # 161 s: more patches at balanced (rank 6 kept)

needs_models = pytest.mark.skipif(
    not (essentia_available() and (MODELS / "msd_musicnn.onnx").is_file() and SHORT.is_file()),
    reason="needs Essentia, the MusiCNN models (`playlistgen models install`) and .cache/real-audio")


class Recording:
    """A real loaded model whose per-patch embeddings are kept, to check the spread against."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self.model, self.name, self.labels = model, model.name, model.labels
        self.embeddings: list[np.ndarray] = []

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tags, emb = self.model.predict(patches)
        self.embeddings.append(np.asarray(emb, dtype=np.float64))
        return tags, emb


def _analyse(preset: str, path: Path) -> tuple[AnalysisResult, list[Recording]]:
    analyzer = create_analyzer("essentia", preset, MODELS)
    stream = getattr(analyzer, "_musicnn", None)
    recorders = []
    if stream is not None:
        recorders = [Recording(m) for m in stream.models]
        stream.models = recorders
    return analyzer.analyze(str(path)), recorders


def _store(db: Database, result: AnalysisResult, path: Path, fp: str = "fp") -> int:
    (file_id,) = db.write(lambda c: c.execute(
        "INSERT INTO files(path, size, mtime_ns, fingerprint, status) VALUES (?, 1, 1, ?, 'analysing') "
        "RETURNING id", (str(path), fp)).fetchall()[0])
    JobQueue(db, result.analyzer_version).complete(Job(file_id, str(path), fp), result).result(30)
    return db.query("SELECT track_id FROM files WHERE id = ?", (file_id,))[0][0]


def _rank_k(covariance: np.ndarray, k: int) -> np.ndarray:
    values, vectors = np.linalg.eigh(covariance)
    top = np.argsort(values)[::-1][:k]
    return (vectors[:, top] * values[top]) @ vectors[:, top].T


@needs_models
@pytest.mark.parametrize("path", [SHORT, LONG])
def test_balanced_stores_mtt_and_a_joint_spread_whose_gram_is_the_patch_covariance(path: Path,
                                                                                   database: Database) -> None:
    """Balanced runs MSD + MTT (issue 22 point 3): the spread is of the joint MSD‖MTT patch
    embeddings, 6 rows of 400 — exact when the patches span at most 6 dimensions, else the best
    rank-6 approximation."""
    result, (msd, mtt) = _analyse("balanced", path)
    joint = np.hstack([np.concatenate(msd.embeddings), np.concatenate(mtt.embeddings)])
    assert result.embedding_patches == len(joint) and len(joint) >= 2
    assert np.allclose(result.embedding_mtt, joint[:, 200:].mean(axis=0), atol=1e-4)
    spread = np.asarray(result.embedding_spread)
    assert spread.shape == (min(6, len(joint)), 400)

    track_id = _store(database, result, path)
    stored = get_adaptation(database, [track_id])[track_id]
    assert stored["embedding_patches"] == len(joint) and stored["embedding_mtt"].shape == (200,)
    # the result's values are float16 values printed short: stored bit for bit
    assert np.array_equal(stored["embedding_spread"], spread.astype(np.float16).astype(np.float32))
    blob = database.query("SELECT embedding_spread FROM features WHERE track_id = ?", (track_id,))[0][0]
    assert len(blob) == spread.size * 2 <= 4800

    covariance = np.cov(joint, rowvar=False, bias=True)
    gram = stored["embedding_spread"].astype(np.float64).T @ stored["embedding_spread"]
    expected = _rank_k(covariance, 6)      # = the covariance itself when len(joint) <= 7
    assert np.allclose(gram, expected, rtol=1e-3, atol=2e-3 * np.abs(expected).max())
    assert np.trace(gram) >= (0.999 if len(joint) <= 7 else 0.5) * np.trace(covariance)
    # the embedding is the mean of the very same patches
    assert np.allclose(result.embedding, joint[:, :200].mean(axis=0), atol=1e-4)


@needs_models
def test_fast_has_no_spread(database: Database) -> None:
    result, _ = _analyse("fast", SHORT)
    assert (result.embedding_spread, result.embedding_patches, result.embedding_mtt) == (None, None, None)
    track_id = _store(database, result, SHORT)
    assert database.query("SELECT embedding_spread, embedding_patches, embedding_mtt FROM features "
                          "WHERE track_id = ?", (track_id,)) == [(None, None, None)]


@needs_models
def test_accurate_stores_the_mtt_embedding_and_the_joint_spread(database: Database) -> None:
    result, (msd, mtt) = _analyse("accurate", SHORT)
    joint = np.hstack([np.concatenate(msd.embeddings), np.concatenate(mtt.embeddings)])
    assert np.allclose(result.embedding_mtt, joint[:, 200:].mean(axis=0), atol=1e-4)
    spread = np.asarray(result.embedding_spread)
    assert spread.shape == (6, 400)
    track_id = _store(database, result, SHORT)
    stored = get_adaptation(database, [track_id])[track_id]
    assert stored["embedding_spread"].shape == (6, 400) and stored["embedding_mtt"].shape == (200,)
    gram = stored["embedding_spread"].astype(np.float64).T @ stored["embedding_spread"]
    expected = _rank_k(np.cov(joint, rowvar=False, bias=True), 6)
    assert np.allclose(gram, expected, rtol=1e-3, atol=2e-3 * np.abs(expected).max())


def test_the_kept_patch_sample_stays_bounded_and_uniform() -> None:
    """A very long file keeps at most MAX_KEPT_PATCHES patch vectors, spread evenly over it."""
    stream = MusicnnStream.__new__(MusicnnStream)
    stream._mtt = None
    state = MusicnnState(framer=None)   # type: ignore[arg-type]
    total = 3 * MAX_KEPT_PATCHES + 17
    for first in range(0, total, 50):
        block = np.arange(first, min(first + 50, total), dtype=np.float32)[:, None].repeat(2, axis=1)
        stream._keep(state, block, first)
    kept = np.concatenate(state.kept)[:, 0]
    assert len(kept) <= MAX_KEPT_PATCHES and len(kept) >= MAX_KEPT_PATCHES // 2
    assert np.all(np.diff(kept) == state.keep_every) and kept[0] == 0 and kept[-1] > total - 2 * state.keep_every


def test_spread_blob_codec_reads_both_widths() -> None:
    assert spread_from_blob(None, 200) is None
    assert spread_from_blob(b"", 200).shape == (0, 200)
    assert spread_from_blob(np.ones((6, 400), "<f2").tobytes(), 400).shape == (6, 400)


@needs_models
def test_export_import_round_trip_keeps_the_spread(tmp_path: Path) -> None:
    """export → import into a fresh database: the spread, patch count and MTT blob come back bit
    for bit; an export line without them (an older export) still imports."""
    from playlistgen.core.library.transfer import export_records

    result, _ = _analyse("accurate", SHORT)
    src = Database(tmp_path / "a.db")
    try:
        track_id = _store(src, result, SHORT)
        before = src.query("SELECT embedding_spread, embedding_patches, embedding_mtt FROM features "
                           "WHERE track_id = ?", (track_id,))[0]
        src.write(lambda c: c.execute("UPDATE files SET status = 'done'"))
        records = list(export_records(src, [str(SHORT.parent)]))
    finally:
        src.close()
    assert len(records) == 1
    line = json.dumps(records[0], separators=(",", ":"))
    assert len(line) < 64 * 1024
    checked = export_format.check_record(json.loads(line))
    dst = Database(tmp_path / "b.db")
    try:
        back = _store(dst, AnalysisResult.from_dict(checked), SHORT)
        after = dst.query("SELECT embedding_spread, embedding_patches, embedding_mtt FROM features "
                          "WHERE track_id = ?", (back,))[0]
        assert after == before
        old = {k: v for k, v in json.loads(line).items()
               if k not in ("embedding_spread", "embedding_patches", "embedding_mtt")}
        old_id = _store(dst, AnalysisResult.from_dict(export_format.check_record({**old, "fingerprint": "fp2"})),
                        SHORT.with_name("copy.ogg"), fp="fp2")
        assert dst.query("SELECT embedding_spread, embedding IS NOT NULL FROM features WHERE track_id = ?",
                         (old_id,)) == [(None, 1)]
    finally:
        dst.close()


def test_export_refuses_a_spread_of_the_wrong_shape() -> None:
    from tests.feature_data import fake_result

    record = {**fake_result(1), "fingerprint": "fp", "audio_fingerprint": "afp"}
    export_format.check_record({**record, "embedding_spread": [[0.0] * 200] * 12})
    with pytest.raises(export_format.BadRecord, match="13 rows, at most 12"):
        export_format.check_record({**record, "embedding_spread": [[0.0] * 200] * 13})
    with pytest.raises(export_format.BadRecord, match=r"embedding_spread\[0\]: 200 values, expected 400"):
        export_format.check_record({**record, "embedding_mtt": [0.0] * 200, "embedding_spread": [[0.0] * 200]})
    assert get_preset("balanced").uses_ml


def test_a_dask_worker_payload_carries_the_spread() -> None:
    """What a Dask worker sends back (checked JSON, never a pickle) keeps the new fields."""
    from playlistgen.core.analysis.result import WorkerStats
    from playlistgen.core.execution.dask import payload
    from tests.feature_data import fake_result

    rng = np.random.default_rng(3)
    result = AnalysisResult.from_dict({**fake_result(2), "embedding_patches": 9, "embedding_mtt": [0.5] * 200,
                                       "embedding_spread": rng.normal(size=(6, 400)).round(3).tolist()})
    back = payload.decode(payload.encode(result, None, WorkerStats(pid=1)))
    assert back.result == result
    bad = json.loads(payload.encode(result, None, WorkerStats(pid=1)))
    bad["result"]["embedding_spread"] = [["x"]]
    with pytest.raises(payload.MalformedResult, match="embedding_spread"):
        payload.decode(json.dumps(bad))
