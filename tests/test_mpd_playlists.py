"""The README's MPD recipe (section "Using the playlists in Navidrome, Jellyfin and MPD"), run as
written against a real MPD (Debian's `mpd`, null output, loopback port) and Debian's `mpc`: the
config block and the commands are read from README.md; only the folders, the seed and the MPD
port change. MPD 0.23 lists only *.m3u files in its playlist_directory (issue 21.9)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from playlistgen.core.playlists import store
from playlistgen.core.playlists.export import PathOptions
from tests.conftest import REPO, child_env, library_settings, run_cli
from tests.mpd_server import Mpd
from tests.tagged_library import make_library

needs_mpd = [pytest.mark.skipif(not shutil.which("mpd"), reason="mpd is not installed (make mpd)"),
             pytest.mark.skipif(not shutil.which("mpc"), reason="mpc is not installed (make mpd installs it)")]

README_MUSIC, README_PLAYLISTS = "/srv/music", "/var/lib/mpd/playlists"
README_SEED, SEED = "Massive Attack - Teardrop", "Artist 1 - Song 1"


def readme_recipe() -> tuple[str, list[str]]:
    """(the YAML config, the command lines) of the README's MPD recipe."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("* **MPD**"):text.index("**Players in other containers**")]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", section, flags=re.S | re.M)
    assert [lang for lang, _ in blocks] == ["yaml", ""], "the README's MPD recipe: one yaml block, one command block"
    return blocks[0][1], [line for line in blocks[1][1].splitlines() if line.strip()]


@needs_mpd[0]
@needs_mpd[1]
def test_readme_mpd_recipe(tmp_path: Path) -> None:
    music = tmp_path / "srv" / "music"
    stored = tmp_path / "var" / "lib" / "mpd" / "playlists"
    stored.mkdir(parents=True)
    make_library(music, 12, formats=("flac", "ogg"))
    res = run_cli("scan", str(music), cwd=tmp_path, env={"PLAYLISTGEN_ANALYSIS__PRESET": "fast"}, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    config, commands = readme_recipe()
    config = config.replace(README_MUSIC, str(music)).replace(README_PLAYLISTS, str(stored))
    (tmp_path / "config.yaml").write_text(config)
    assert yaml.safe_load(config)["playlists"]["output_dir"] == str(stored)

    server = Mpd(tmp_path, music, stored)
    server.start()
    try:
        assert subprocess.run(["mpc", "--wait", "update"], env=server.mpc_env(), capture_output=True,
                              timeout=60).returncode == 0          # the user's MPD knows its music already
        for line in commands:
            command, _, comment = line.partition("#")
            argv = shlex.split(command.replace(README_SEED, SEED))
            if argv[0] == "playlistgen":
                argv[:1] = [sys.executable, "-m", "playlistgen"]
                env = child_env()
            else:
                env = server.mpc_env()
            done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (line, done.stdout, done.stderr)
            assert "error" not in done.stderr.lower(), (line, done.stderr)
            if comment.strip().startswith("prints:"):
                assert done.stdout.splitlines() == [comment.strip()[len("prints:"):].strip()], \
                    (line, done.stdout, sorted(p.name for p in stored.iterdir()))

        saved = [ln for ln in (stored / "Evening radio.m3u").read_text(encoding="utf-8").splitlines()
                 if ln and not ln.startswith("#")]
        assert len(saved) >= 6 and all(ln.startswith(str(music) + "/") for ln in saved)
        client = server.client()
        queue = [song["file"] for song in client.playlistinfo()]
        assert queue == [str(Path(ln).relative_to(music)) for ln in saved]   # every entry, in order
        assert client.status()["state"] == "play"
        client.close()
    finally:
        server.stop()


def test_file_extension_names_saved_files_and_a_refresh_follows_a_change(populated_library: tuple,
                                                                           tmp_path: Path) -> None:
    db, facts, root = populated_library
    settings = library_settings(root, file_extension="m3u")
    out = tmp_path / "mpd-playlists"
    ids = db.query("SELECT id FROM tracks ORDER BY id LIMIT 3")
    tracks = [{"id": i, "path": str(root / "library" / f"t{i}.flac"), "duration_s": 60.0} for (i,) in ids]
    body = {"playlist": {"name": "Evening radio", "strategy": "radio"}, "tracks": tracks}
    saved = store.save_playlist(db, out, body, paths=PathOptions.from_settings(settings))
    assert Path(saved["file"]).name == "Evening radio.m3u"
    assert Path(saved["file"]).read_text(encoding="utf-8").startswith("#EXTM3U\n")
    assert store.save_playlist(db, out, body)["file"].endswith("Evening radio.m3u8")   # the default is kept
    refreshed = store.replace_playlist(db, out, saved["id"], body, paths=PathOptions(file_extension="m3u8"))
    assert Path(refreshed["file"]).name == f"Evening radio ({saved['id']}).m3u8"   # the name was taken
    assert sorted(p.name for p in out.iterdir()) == [f"Evening radio ({saved['id']}).m3u8", "Evening radio.m3u8"]
    assert store.get_playlist(db, saved["id"])["playlist"]["file"] == refreshed["file"]
