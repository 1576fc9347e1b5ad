"""Exported playlists that resolve elsewhere: playlists.path_map / relative_paths (unit and in a
real MPD), and the MixRamp fade hints (pure functions, the analysis envelope, XSPF/JSON)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from playlistgen.core.analysis.mixramp import mixramp_points, parse_ramp, ramp_seconds
from playlistgen.core.playlists.export import PathOptions, map_path, to_m3u8, to_xspf
from tests.conftest import run_cli

XSPF = "{http://xspf.org/ns/0/}"


def test_map_path_takes_the_longest_whole_component_prefix() -> None:
    mapping = {"/srv/music": "/music", "/srv/music/Classical": "/classical/", "/data": ""}
    assert map_path("/srv/music/a/b.flac", mapping) == "/music/a/b.flac"
    assert map_path("/srv/music/Classical/x.flac", mapping) == "/classical/x.flac"
    assert map_path("/srv/musicals/x.flac", mapping) == "/srv/musicals/x.flac"
    assert map_path("/data/a/b.ogg", mapping) == "a/b.ogg"           # relative to the player's root (MPD)
    assert map_path("/x/y.mp3", {}) == "/x/y.mp3"


def test_relative_paths_policy(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    opts = PathOptions({str(lib): "/music"}, "auto", (str(lib),))
    assert opts.base_for(lib / "Playlists") == lib / "Playlists"        # inside the library: relative
    assert opts.base_for(tmp_path / "elsewhere") is None
    assert PathOptions({}, "always", ()).base_for(tmp_path / "x") == tmp_path / "x"
    assert PathOptions({}, "never", (str(lib),)).base_for(lib / "Playlists") is None
    tracks = [{"id": 1, "path": str(lib / "A" / "s.flac"), "artist": "A", "title": "S", "duration_s": 61.2,
               "mixramp": {"start": "-30.00 0.20;-20.00 1.10", "end": "-30.00 2.00;-20.00 0.90"}}]
    assert to_m3u8(tracks, opts.base_for(lib / "Playlists"), paths=opts).splitlines()[-1] == "../A/s.flac"
    assert to_m3u8(tracks, None, paths=opts).splitlines()[-1] == "/music/A/s.flac"
    root = ET.fromstring(to_xspf(tracks, paths=opts).split("\n", 1)[1])
    node = root.find(f"{XSPF}trackList/{XSPF}track")
    assert node.find(f"{XSPF}location").text == "file:///music/A/s.flac"
    metas = {m.get("rel").rsplit("-", 1)[1]: m.text for m in node.findall(f"{XSPF}meta")}
    assert metas == {"start": "-30.00 0.20;-20.00 1.10", "end": "-30.00 2.00;-20.00 0.90"}


def test_mixramp_points_follow_the_envelope() -> None:
    hop = 0.1
    t = np.arange(0, 60, hop)
    env = np.full(t.shape, -8.0)
    env[t < 4] = -60 + 13 * t[t < 4]               # fade in: -60 → -8 dB over 4 s
    env[t > 50] = -8 - 5 * (t[t > 50] - 50)        # fade out: -8 → -58 dB over the last 10 s
    start, end = mixramp_points(env, hop)
    s, e = parse_ramp(start), parse_ramp(end)
    assert [db for db, _ in s] == sorted(db for db, _ in s) and s[-1][0] <= -8    # never above the peak
    assert ramp_seconds(start, -21) == pytest.approx(3.0, abs=0.15)              # -21 dB reached at 3 s
    assert ramp_seconds(end, -18) == pytest.approx(8.0, abs=0.15)                # last at -18 dB 8 s before the end
    assert ramp_seconds(start, -2) is None                                        # never that loud: no overlap
    assert all(b >= a for (_, a), (_, b) in zip(e, e[1:], strict=False))          # louder = further from the end
    assert mixramp_points(np.full(10, -90.0), hop) == (None, None)


def test_analysis_stores_mixramp_hints(tmp_path: Path) -> None:
    from playlistgen.core.analysis.loudness import LoudnessMeter

    sr = 22050
    t = np.arange(int(sr * 6)) / sr
    gain = np.clip(t / 2, 0, 1) * np.clip((6 - t) / 2, 0, 1)                        # 2 s ramps
    meter = LoudnessMeter(sr, 1)
    meter.push((0.5 * gain * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None])
    result = meter.result()
    start, end = parse_ramp(result.mixramp_start), parse_ramp(result.mixramp_end)
    assert len(start) >= 5 and start[-1][1] < 2.5 and end[-1][1] < 2.5
    assert all(b >= a for (_, a), (_, b) in zip(start, start[1:], strict=False))


@pytest.mark.skipif(not shutil.which("mpd"), reason="mpd is not installed (make mpd)")
def test_path_mapped_m3u8_resolves_in_mpd(tmp_path: Path) -> None:
    """MPD sees the library under another root (a symlink standing in for a container mount):
    the saved M3U8 with path_map resolves; without it, MPD refuses the absolute paths."""
    from tests.helpers import wait_for
    from tests.mpd_server import Mpd
    from tests.tagged_library import make_library

    lib = tmp_path / "library"
    make_library(lib, 8, formats=("flac", "ogg"))
    res = run_cli("scan", str(lib), cwd=tmp_path, env={"PLAYLISTGEN_ANALYSIS__PRESET": "fast"}, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (tmp_path / "mpdroot").mkdir()
    mounted = tmp_path / "mpdroot" / "music"
    mounted.symlink_to(lib, target_is_directory=True)
    server = Mpd(tmp_path / "mpdroot", mounted)
    accepted = {}
    for name, path_map in (("Mapped", {str(lib): str(mounted)}), ("Unmapped", {})):
        (tmp_path / "config.yaml").write_text(yaml.safe_dump({
            "library": {"paths": [str(lib)]},
            "playlists": {"output_dir": str(lib / "Playlists"), "relative_paths": "never", "path_map": path_map}}))
        res = run_cli("playlist", "random", "--size", "8", "--save", "--name", name, "--format", "m3u8",
                      cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        first = (lib / "Playlists" / f"{name}.m3u8").read_text(encoding="utf-8").splitlines()[3]
        assert first.startswith(str(mounted) if path_map else str(lib))
    server.start()
    try:
        client = server.client()
        client.update()
        wait_for(lambda: len([e for e in client.listall() if "file" in e]) >= 8, 30, "mpd to index the library")
        for name in ("Mapped", "Unmapped"):
            client.clear()
            try:
                client.load(f"Playlists/{name}.m3u8")
            except Exception:  # noqa: BLE001 - MPD refuses a playlist whose every entry is unknown
                pass
            accepted[name] = len(client.playlistinfo())
        client.close()
    finally:
        server.stop()
    assert accepted["Mapped"] == 8, accepted
    assert accepted["Unmapped"] == 0, accepted
