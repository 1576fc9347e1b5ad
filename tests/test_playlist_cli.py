"""`playlistgen playlist` through the real entry point, reading a database file directly."""

from __future__ import annotations

import json
from pathlib import Path

from playlistgen.core.storage.db import Database
from tests.conftest import run_cli
from tests.playlist_fixtures import populate


def test_playlist_command(tmp_path: Path) -> None:
    db = Database(tmp_path / "lib.db")
    facts = populate(db, tmp_path / "library", artists=10, per_artist=4)
    db.close()
    out = tmp_path / "out" / "radio.m3u8"
    r = run_cli("playlist", "radio", "--db", str(tmp_path / "lib.db"), "--seed", "Massive Attack - Teardrop",
                "--size", "6", "--format", "m3u8", "-o", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U" and lines[2].startswith("#EXTINF:") and lines[2].endswith("Massive Attack - Teardrop")
    assert lines[3].startswith(str(tmp_path / "library"))  # its folder is not inside the library: absolute
    inside = tmp_path / "library" / "Playlists" / "radio.m3u8"   # inside: relative (playlists.relative_paths auto)
    r = run_cli("playlist", "radio", "--db", str(tmp_path / "lib.db"), "--seed", "Massive Attack - Teardrop",
                "--size", "6", "--format", "m3u8", "-o", str(inside), "--order", "energy_arc", cwd=tmp_path,
                env={"PLAYLISTGEN_LIBRARY__PATHS": json.dumps([str(tmp_path / "library")])})
    assert r.returncode == 0, r.stderr
    assert inside.read_text(encoding="utf-8").splitlines()[3].startswith("../Massive Attack/")
    r = run_cli("playlist", "filter", "--db", str(tmp_path / "lib.db"), "--filter", "bpm=100..140",
                "--param", "sort=bpm", "--size", "5", "--artist-gap", "0", "--album-gap", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    bpms = [t["bpm"] for t in body["tracks"]]
    assert bpms == sorted(bpms) and all(100 <= b <= 140 for b in bpms)
    assert facts["Teardrop"]
    bad = run_cli("playlist", "radoi", "--db", str(tmp_path / "lib.db"), cwd=tmp_path)
    assert bad.returncode != 0 and "did you mean 'radio'" in bad.stderr and "Traceback" not in bad.stderr
    missing = run_cli("playlist", "radio", "--db", str(tmp_path / "nope.db"), "--seed", "1", cwd=tmp_path)
    assert missing.returncode != 0 and "no database" in missing.stderr
    listing = run_cli("playlist", "--list", cwd=tmp_path)
    assert listing.returncode == 0 and "harmonic" in listing.stdout
