"""The typed analysis result: its fields, the analyzer's field lists and the stored columns agree
(the names are declared once, in core/storage/records.py), every field the analyzers return is
stored, and a result survives pickling (local and Dask workers ship it) and JSON (`analyze
--json`, export/import) unchanged. Real analyzers on generated audio, a real database."""

from __future__ import annotations

import json
import pickle
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from playlistgen.core.analysis.base import DSP_FIELDS, EXTRA_FIELDS, METADATA_FIELDS, ML_FIELDS, RESULT_FIELDS
from playlistgen.core.analysis.factory import create_analyzer, essentia_available
from playlistgen.core.analysis.result import AnalysisResult, StageTimings, WorkerStats
from playlistgen.core.storage.db import Database
from playlistgen.core.storage.jobs import Job, JobQueue
from playlistgen.core.storage.records import (
    ADAPTATION_FEATURES,
    FEATURES,
    METADATA,
    OPTIONAL_METADATA,
    SCALAR_FEATURES,
    VECTOR_FEATURES,
    get_track_features,
)
from tests import audio_fixtures as af
from tests.feature_data import fake_result

MODELS = Path(__file__).resolve().parents[1] / "models"
SR = 44100


def _backends() -> list[tuple[str, str]]:
    cases = [("librosa", "fast")]
    if essentia_available():
        cases.append(("essentia", "fast"))
        if all((MODELS / f"{name}.pb").is_file() for name in ("msd_musicnn", "mtt_musicnn")):
            cases.append(("essentia", "balanced"))
    return cases


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return af.write(tmp_path_factory.mktemp("tone") / "tone.wav", af.song(6.0, SR, 1, bpm=110, tonic=2), SR)


def _columns(db: Database, table: str) -> set[str]:
    return {row[1] for row in db.query(f"PRAGMA table_info({table})")}


def test_field_lists_derive_from_the_stored_fields() -> None:
    declared = [f.name for f in fields(AnalysisResult) if f.name != "worker"]
    assert len(declared) == len(set(declared)) == len(RESULT_FIELDS + EXTRA_FIELDS)
    assert set(declared) == set(RESULT_FIELDS) | set(EXTRA_FIELDS)
    assert set(DSP_FIELDS) | set(ML_FIELDS) == set(FEATURES) and not set(DSP_FIELDS) & set(ML_FIELDS)
    assert METADATA_FIELDS == METADATA


def test_every_declared_field_has_a_column(database: Database) -> None:
    assert set(SCALAR_FEATURES) | set(VECTOR_FEATURES) | set(ADAPTATION_FEATURES) <= _columns(database, "features")
    assert set(METADATA) | set(OPTIONAL_METADATA) <= _columns(database, "tracks")
    assert {"source", "label", "probability"} <= _columns(database, "tags")


@pytest.mark.parametrize(("backend", "preset"), _backends())
def test_every_returned_field_is_declared_and_stored(backend: str, preset: str, tone: Path,
                                                     database: Database) -> None:
    result = create_analyzer(backend, preset, MODELS).analyze(str(tone))
    assert isinstance(result, AnalysisResult)
    assert set(result.to_dict()) == set(RESULT_FIELDS) | set(EXTRA_FIELDS)
    assert all(type(v) is float for v in result.embedding or [])   # stored as float32, shipped as floats

    (file_id,) = database.write(lambda c: c.execute(
        "INSERT INTO files(path, size, mtime_ns, fingerprint, status) VALUES (?, 1, 1, 'fp', 'analysing') "
        "RETURNING id", (str(tone),)).fetchall()[0])
    JobQueue(database, result.analyzer_version).complete(Job(file_id, str(tone), "fp"), result).result(10)
    (track_id,) = database.query("SELECT track_id FROM files WHERE id = ?", (file_id,))[0]
    record = get_track_features(database, None, track_id)
    for name in SCALAR_FEATURES:
        assert record[name] == getattr(result, name), name
    for name in VECTOR_FEATURES:
        value = getattr(result, name)
        if value is None:
            assert record[name] is None, name
        else:
            assert np.array_equal(record[name], np.asarray(value, dtype=np.float32)), name
    assert record["tags"] == (result.tags or {})
    assert {name: record[name] for name in METADATA} == {name: result.metadata[name] for name in METADATA}
    assert (record["analyzer_version"], record["preset"]) == (result.analyzer_version, result.preset)

    # what a worker ships and `analyze --json` prints comes back unchanged
    result.worker = WorkerStats(pid=1, rss_mb=200.0, wall_s=0.5, cpu_s=0.4)
    assert pickle.loads(pickle.dumps(result)) == result
    assert AnalysisResult.from_dict(json.loads(json.dumps(result.to_dict(), allow_nan=False))) == result


def test_to_dict_keeps_field_order_and_from_dict_reads_partial_records() -> None:
    result = AnalysisResult.from_dict({**fake_result(3), "fingerprint": "fp", "path": "a/b.flac"})
    assert isinstance(result.timings, StageTimings) and isinstance(result.worker, WorkerStats)
    assert list(result.to_dict()) == [f.name for f in fields(AnalysisResult)]
    assert AnalysisResult.from_dict(result.to_dict()) == result
    partial = AnalysisResult.from_dict({"duration_s": 1.0, "analyzer_version": "x-1"})
    assert (partial.duration_s, partial.bpm, partial.metadata, partial.flags) == (1.0, None, {}, [])
    assert "worker" not in partial.to_dict()


def test_worker_stats_name_host_and_address_only_when_set() -> None:
    local = WorkerStats(pid=7, rss_mb=None, wall_s=0.2, cpu_s=0.1)
    assert local.to_dict() == {"pid": 7, "rss_mb": None, "wall_s": 0.2, "cpu_s": 0.1}
    remote = WorkerStats(pid=7, rss_mb=1.0, wall_s=0.2, cpu_s=0.1, host="h", address="tls://h:1")
    assert set(remote.to_dict()) == {"pid", "rss_mb", "wall_s", "cpu_s", "host", "address"}
    assert AnalysisResult(worker=remote, timings=StageTimings(total_s=1.0)).wall_s == 0.2
    assert AnalysisResult(timings=StageTimings(total_s=1.0)).wall_s == 1.0
