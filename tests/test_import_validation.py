"""Issue 20, points 14-16: `playlistgen import` checks every record of the file against the export
schema before it writes anything (types, finite numbers in range, vector lengths, string lengths,
the analyzer version), lists bad lines as ``line N: <what>`` and imports nothing then; lines are
read with a bound, so a gzip bomb of one endless line fails that line in bounded memory.

Through the real CLI on a real library of real audio files; the records are built from the
files' own fingerprints (what `export` would write), so the valid ones really match."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from playlistgen.config import Settings
from playlistgen.core.analysis.factory import analyzer_version
from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.core.audio.fingerprint import audio_fingerprint
from playlistgen.core.library import export_format
from playlistgen.core.library.export_format import entries, open_export
from playlistgen.core.library.reconcile import fingerprint
from playlistgen.core.library.transfer import export_file
from playlistgen.core.storage.db import Database, connect
from playlistgen.core.storage.records import METADATA, OPTIONAL_METADATA, SCALAR_FEATURES, VECTOR_FEATURES
from tests.conftest import child_env, run_cli
from tests.feature_data import VERSION, fake_result, populate
from tests.tagged_library import make_library

ENV = {"PLAYLISTGEN_ANALYSIS__PRESET": "fast"}
EXPORT_KEYS = ("timings", "cpu_s", "worker", "flags", "source")   # in fake_result, not in an export
MIB = 1 << 20


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[dict]]]:
    """Three real songs and a valid export record for each."""
    root = tmp_path_factory.mktemp("importcheck")
    paths = make_library(root / "library", 3, seconds=2.0)
    settings = Settings()
    settings.analysis.preset = "fast"
    version = analyzer_version(settings)
    records = []
    for i, path in enumerate(paths):
        record = {k: v for k, v in fake_result(i).items() if k not in EXPORT_KEYS}
        record.update(fingerprint=fingerprint(str(path), path.stat().st_size),
                      audio_fingerprint=audio_fingerprint(path), analyzer_version=version, path=path.name)
        records.append(record)
    yield root / "library", records


def _import(workdir: Path, library: Path, export: Path) -> subprocess.CompletedProcess:
    return run_cli("import", str(export), "--library", str(library), "--db", str(workdir / "x.db"),
                   cwd=workdir, env=ENV)


def _done(workdir: Path) -> int:
    db = workdir / "x.db"
    if not db.exists():
        return 0
    return connect(db).execute("SELECT count(*) FROM files WHERE status = 'done'").fetchall()[0][0]


def _line(record: dict, **changes: object) -> bytes:
    return json.dumps({**record, **changes}).encode() + b"\n"


def test_malformed_records_are_listed_by_line_and_nothing_is_imported(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    folder, records = library
    good = records[0]
    nested = b'{"fingerprint": "x", "deep": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n"
    bad = {   # line number → (the line, what the report must say about it)
        2: (_line(good, tags="notadict"), "line 2: tags: expected an object"),
        3: (_line(good, bpm="fast"), "line 3: bpm: expected a number, got a string"),
        4: (_line(good, energy=True), "line 4: energy: expected a number, got true"),
        5: (nested, "line 5: JSON nested too deeply"),
        6: (b"\xff\xfe\x00\x89PNG garbage\n", "line 6: not UTF-8 text"),
        7: (_line(good, energy=float("inf")), "line 7: energy: inf is not a finite number"),
        8: (_line(good, bpm=1e308), "line 8: bpm: 1e+308 is out of range"),
        9: (_line(good, loudness_lufs=float("nan")), "line 9: loudness_lufs: nan is not a finite number"),
        10: (_line(good, metadata={**good["metadata"], "title": "n" * 100_000}),
             "line 10: metadata.title: 100000 characters, at most"),
        11: (_line(good, embedding=good["embedding"][:199]), "line 11: embedding: 199 values, expected 200"),
        12: (_line(good, camelot="<script>"), "line 12: camelot: '<script>' is not a Camelot code"),
        13: (_line(good, camelot="3A"), "line 13: camelot: '3A' does not match the key A minor (8A)"),
        14: (_line(good, preset="turbo"), "line 14: preset: 'turbo' is not one of"),
        15: (_line(good, analyzer_version=12), "line 15: analyzer_version: expected a string, got a number"),
        16: (b"[1, 2]\n", "line 16: not an analysis record"),
        17: (b'{"year": ' + b"1" * 5000 + b"}\n", "line 17: not JSON"),
        18: (_line(good, mfcc_mean=[1e39] + good["mfcc_mean"][1:]), "line 18: mfcc_mean[0]: 1e+39 is out of range"),
        19: (_line(good, tags={"msd": {"rock": 1.5}}), "line 19: tags.msd.rock: 1.5 is out of range (0 to 1)"),
        20: (_line(good, metadata=[1]), "line 20: metadata: expected an object, got a list"),
    }
    export = tmp_path / "bad.jsonl"
    export.write_bytes(_line(good) + b"".join(line for line, _ in bad.values()))
    res = _import(tmp_path, folder, export)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    for _, expected in bad.values():
        assert expected in res.stderr, (expected, res.stderr[-3000:])
    assert f"{len(bad)} invalid record(s) of {len(bad) + 1}, nothing was imported" in res.stderr
    assert len(res.stderr) < 5000   # each bad value is named, not echoed
    assert _done(tmp_path) == 0     # all or nothing: not even the valid first record


def test_the_list_of_bad_lines_is_bounded(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    folder, records = library
    export = tmp_path / "many.jsonl"
    export.write_bytes(b"".join(_line(records[0], energy=2.0) for _ in range(100)))
    res = _import(tmp_path, folder, export)
    assert res.returncode != 0 and "line 20: energy: 2.0 is out of range (0 to 1)" in res.stderr
    assert "line 21:" not in res.stderr and "and 80 more" in res.stderr
    assert _done(tmp_path) == 0


def test_valid_records_import_every_value(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    folder, records = library
    export = tmp_path / "good.jsonl"
    export.write_bytes(b"".join(_line(r) for r in records))
    res = _import(tmp_path, folder, export)
    assert res.returncode == 0 and "imported 3 file(s) from 3 record(s)" in res.stdout, res.stdout + res.stderr
    rows = connect(tmp_path / "x.db").execute(
        "SELECT t.audio_fingerprint, f.energy, f.camelot, length(f.embedding) FROM tracks t "
        "JOIN features f ON f.track_id = t.id").fetchall()
    assert sorted(rows) == sorted((r["audio_fingerprint"], r["energy"], r["camelot"], 800) for r in records)


# The CLI is forked from a small launcher, not straight from pytest: a child exec'd from pytest's
# vfork inherits pytest's own RSS high-water mark (Linux records the old mm's peak at exec), so
# wait4 would report pytest's size (seen: 601 MB), not the import's.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "playlistgen", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _peak_rss_mb(args: list[str], cwd: Path) -> tuple[int, str, float]:
    """Run the CLI; (exit code, stderr, that child's own peak RSS in MB, by wait4 in the launcher)."""
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, *args], cwd=cwd, env=child_env(ENV),
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr, int(proc.stdout.split()[-1]) / 1024


def test_an_endless_line_fails_that_line_in_bounded_memory(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    folder, records = library
    export = tmp_path / "bomb.jsonl.gz"
    with gzip.open(export, "wb", compresslevel=9) as fh:   # 256 MiB without a newline: 250 KB on disk
        fh.write(_line(records[0]))
        block = b"[" * MIB
        for _ in range(256):
            fh.write(block)
    code, stderr, peak_mb = _peak_rss_mb(["import", str(export), "--library", str(folder), "--db",
                                          str(tmp_path / "x.db")], tmp_path)
    assert code != 0 and "Traceback" not in stderr, stderr[-2000:]
    assert "line 2: longer than 1 MiB" in stderr, stderr[-2000:]
    # the CLI alone is ~45 MB; reading the line whole took 557 MB (bench/import_bomb.py measures it)
    assert peak_mb < 250, peak_mb
    assert _done(tmp_path) == 0


def test_export_writes_only_what_import_accepts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A database filled before these checks may hold inf: that record is left out (and analysed
    again on the other side), the rest is strict JSON that import accepts."""
    db = Database(tmp_path / "old.db", pool_min=1, pool_max=2)
    try:
        ids = populate(db, 4)
        db.write(lambda c: c.execute("UPDATE tracks SET audio_fingerprint = 'a1:' || id"))
        db.write(lambda c: c.execute("UPDATE features SET energy = ? WHERE track_id = ?", (float("inf"), ids[1])))
        with caplog.at_level(logging.WARNING, logger="playlistgen.core.library.transfer"):
            count = export_file(db, tmp_path / "out.jsonl", ["/music"])
    finally:
        db.close()
    assert count == 3
    assert "left out /music/000001.flac: energy: inf is not a finite number" in caplog.text
    text = (tmp_path / "out.jsonl").read_text()
    records = [json.loads(line, parse_constant=_refuse) for line in text.splitlines()]
    assert [r["path"] for r in records] == ["000000.flac", "000002.flac", "000003.flac"]
    with open_export(tmp_path / "out.jsonl") as fh:
        assert [isinstance(entry, dict) for _, entry in entries(fh, VERSION)] == [True] * 3


def _refuse(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def test_the_schema_covers_the_analysis_contract() -> None:
    """A field added to the contract (core/storage/records.py) must be added to the export schema."""
    assert set(export_format.FIELDS) - {"path"} == set(SCALAR_FEATURES)
    assert set(export_format.VECTORS) == set(VECTOR_FEATURES)
    assert set(export_format.METADATA_FIELDS) == {*METADATA, *OPTIONAL_METADATA}
    assert {*export_format.HEADER, *export_format.FIELDS, *export_format.VECTORS, "tags", "metadata"} <= \
        {f.name for f in dataclasses.fields(AnalysisResult)} | {"fingerprint", "path"}


def test_a_truncated_gzip_is_one_line_and_imports_nothing(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    folder, records = library
    whole = gzip.compress(b"".join(_line(r) for r in records))
    export = tmp_path / "cut.jsonl.gz"
    export.write_bytes(whole[:len(whole) // 2])
    res = _import(tmp_path, folder, export)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert f"cannot read {export}" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert _done(tmp_path) == 0
    plain = tmp_path / "plain.jsonl.gz"     # gzip or not is read from the file, not its name
    plain.write_bytes(b"".join(_line(r) for r in records))
    res = _import(tmp_path, folder, plain)
    assert res.returncode == 0 and "imported 3 file(s)" in res.stdout, res.stdout + res.stderr
