"""The one longest-prefix path map (core/library/paths.map_prefix) behind mediaserver.path_map,
playlists.path_map and analysis.dask_path_map."""

from __future__ import annotations

from playlistgen.core.library.paths import map_prefix
from playlistgen.core.playlists.export import map_path


def test_longest_whole_component_prefix_wins() -> None:
    mapping = {"/srv/music": "/music", "/srv/music/Classical": "/classical/", "/data": ""}
    assert map_prefix("/srv/music/a/b.flac", mapping) == "/music/a/b.flac"
    assert map_prefix("/srv/music/Classical/x.flac", mapping) == "/classical/x.flac"
    assert map_prefix("/srv/musicals/x.flac", mapping) is None
    assert map_prefix("/data/a/b.ogg", mapping) == "a/b.ogg"          # relative to the target's root
    assert map_prefix("/srv/music", mapping) == "/music"                # the prefix itself
    assert map_prefix("/srv/music/x.flac", {"/srv/music/": "/mnt/"}) == "/mnt/x.flac"   # trailing slashes
    assert map_prefix("/x/y.mp3", {}) is None


def test_empty_or_root_prefix_matches_everything() -> None:
    assert map_prefix("A/x.mp3", {"": "/root"}) == "/root/A/x.mp3"
    assert map_prefix("/a/x.mp3", {"/": "/mnt"}) == "/mnt/a/x.mp3"
    assert map_prefix("/a/x.mp3", {"/": "/mnt", "/a": "/b"}) == "/b/x.mp3"


def test_playlist_export_keeps_unmapped_paths() -> None:
    assert map_path("/x/y.mp3", {"/srv": "/music"}) == "/x/y.mp3"
    assert map_path("/srv/y.mp3", {"/srv": "/music"}) == "/music/y.mp3"
    assert map_path("/srv/y.mp3", None) == "/srv/y.mp3"
