"""`playlistgen export` / `import` through the real CLI: export → delete the database → import →
every track back, nothing analysed, the same playlists; other analyzer versions are refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from playlistgen.core.storage.db import connect
from tests.conftest import run_cli
from tests.tagged_library import make_library, set_tags

ENV = {"PLAYLISTGEN_ANALYSIS__PRESET": "fast", "PLAYLISTGEN_ANALYSIS__WORKERS": "2"}


def _playlists(tmp_path: Path) -> list[list[str]]:
    out = []
    for args in (("radio", "--seed", "Artist 1 - Song 1", "--size", "8"),
                 ("radio", "--seed", "Artist 2 - Song 2", "--seed", "Artist 3 - Song 8", "--size", "6"),
                 ("harmonic", "--seed", "Artist 0 - Song 5", "--size", "6")):
        res = run_cli("playlist", *args, cwd=tmp_path, env=ENV)
        assert res.returncode == 0, res.stderr
        out.append([(t["path"], t["title"], t["bpm"], t["key"]) for t in json.loads(res.stdout)["tracks"]])
    return out


def _analysis(db_path: Path) -> list[tuple]:
    return connect(db_path).execute(
        "SELECT fl.path, t.artist, t.title, t.audio_fingerprint, f.analyzer_version, f.preset, f.bpm, f.key, "
        "f.loudness_lufs, f.mfcc_mean, f.chroma, f.embedding, "
        "(SELECT group_concat(label || '=' || probability) FROM tags g WHERE g.track_id = t.id) "
        "FROM files fl JOIN tracks t ON t.id = fl.track_id JOIN features f ON f.track_id = t.id ORDER BY fl.path"
    ).fetchall()


def test_export_delete_import_gives_everything_back(tmp_path: Path) -> None:
    library = tmp_path / "library"
    paths = make_library(library, 12)
    res = run_cli("scan", str(library), cwd=tmp_path, env=ENV, timeout=300)
    assert res.returncode == 0 and "analysed 12," in res.stdout, res.stdout + res.stderr
    db_path = tmp_path / "playlistgen.db"
    before, playlists = _analysis(db_path), _playlists(tmp_path)
    assert len(before) == 12

    res = run_cli("export", "analysis.jsonl.gz", cwd=tmp_path, env=ENV)
    assert res.returncode == 0 and "exported 12 analysed file(s)" in res.stdout, res.stderr
    with gzip.open(tmp_path / "analysis.jsonl.gz", "rt") as fh:
        records = [json.loads(line) for line in fh]
    assert len(records) == 12 and all(r["audio_fingerprint"].startswith("a1:") for r in records)
    assert {"bpm", "key", "camelot", "mfcc_mean", "chroma", "tags", "metadata", "preset"} <= set(records[0])

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    set_tags(paths[4], title="Renamed in Picard")       # retagged meanwhile: found by its audio
    res = run_cli("import", "analysis.jsonl.gz", "--library", str(library), cwd=tmp_path, env=ENV)
    assert res.returncode == 0, res.stderr
    assert "imported 12 file(s)" in res.stdout and "1 by audio fingerprint" in res.stdout, res.stdout
    assert "0 file(s) still to analyse" in res.stdout

    after = _analysis(db_path)
    renamed = [row for row in after if row[0] == str(paths[4])][0]
    assert renamed[2] == "Renamed in Picard"
    assert [r[:2] + r[3:] for r in after] == [r[:2] + r[3:] for r in before]   # all but that title
    res = run_cli("scan", str(library), cwd=tmp_path, env=ENV, timeout=300)
    assert res.returncode == 0 and "analysed 0," in res.stdout, res.stdout   # nothing left to analyse
    set_tags(paths[4], title="Song 4")
    res = run_cli("scan", str(library), cwd=tmp_path, env=ENV, timeout=300)
    assert "analysed 0," in res.stdout
    assert _playlists(tmp_path) == playlists


def test_other_analyzer_version_is_refused(tmp_path: Path) -> None:
    library = tmp_path / "library"
    make_library(library, 2)
    export = tmp_path / "old.jsonl"
    export.write_text(json.dumps({"fingerprint": "x", "audio_fingerprint": "a1:y", "analyzer_version": "essentia-0.1",
                                  "preset": "fast", "bpm": 120.0}) + "\n")
    res = run_cli("import", str(export), "--library", str(library), cwd=tmp_path, env=ENV)
    assert res.returncode != 0
    assert "essentia-0.1 (1 record)" in res.stderr and "import refused, nothing was changed" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "playlistgen.db").exists() or connect(tmp_path / "playlistgen.db").execute(
        "SELECT count(*) FROM files").fetchall()[0][0] == 0

    export.write_text("not json\n")
    res = run_cli("import", str(export), "--library", str(library), cwd=tmp_path, env=ENV)
    assert res.returncode != 0 and "line 1: not JSON" in res.stderr
    assert "old.jsonl: 1 invalid record(s) of 1, nothing was imported" in res.stderr
