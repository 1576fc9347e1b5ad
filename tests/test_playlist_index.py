"""The similarity index follows the library: built once, rebuilt when tracks change, never per
request; a file that goes missing disappears from results at once."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from playlistgen.config import Settings
from playlistgen.core.playlists.diversity import Diversity
from playlistgen.core.playlists.service import PlaylistRequest, PlaylistService, library_index
from playlistgen.core.storage.db import Database
from tests.playlist_fixtures import add_track, make_result, populate, style_centres


def test_index_rebuilds_on_library_change_only(database: Database, tmp_path: Path) -> None:
    facts = populate(database, tmp_path / "library", artists=10, per_artist=3)
    settings = Settings()
    settings.playlists.index_check_s = 0.0  # check the library state on every request
    # min_rebuild_s: a library change noticed by a request never rebuilds in the background here
    service = PlaylistService(database, settings, index=library_index(database, settings, min_rebuild_s=3600))
    first = service.catalog()
    for _ in range(5):
        service.generate(PlaylistRequest.of("radio", settings, seeds=[facts["Teardrop"]], size=5))
    assert service.index.builds == 1 and service.catalog() is first  # nothing changed: no rebuild
    rng = np.random.default_rng(3)
    result = make_result(rng, "jazz", style_centres(rng), artist="New Artist", album="New", title="Fresh",
                         track_number=1)
    new_id = add_track(database, tmp_path / "library", result, fingerprint="fp-new")
    # a seed analysed after the last build is found at once (synchronous refresh)
    body = service.generate(PlaylistRequest.of("radio", settings, seeds=["New Artist - Fresh"], size=3))
    assert body["tracks"][0]["id"] == new_id and service.index.builds == 2
    assert new_id in service.catalog().track_ids
    # a file that goes missing is never returned, even before the index is rebuilt
    database.write(lambda c: c.execute("UPDATE files SET status = 'missing', updated_at = unixepoch('subsec') "
                                       "WHERE track_id = ?", (new_id,)))
    everything = service.generate(PlaylistRequest.of("all", settings, diversity=Diversity.off()))
    assert new_id not in {t["id"] for t in everything["tracks"]}


def test_background_rebuild_keeps_serving_the_old_catalog(database: Database, tmp_path: Path) -> None:
    populate(database, tmp_path / "library", artists=5, per_artist=2)
    settings = Settings()
    settings.playlists.index_check_s = 0.0
    service = PlaylistService(database, settings, index=library_index(database, settings, min_rebuild_s=0.0))
    old = service.catalog()
    rng = np.random.default_rng(4)
    add_track(database, tmp_path / "library", make_result(rng, "rock", style_centres(rng), artist="X", album="Y",
                                                          title="Z", track_number=1), fingerprint="fp-z")
    assert service.catalog() is old  # the request that notices the change is not kept waiting
    deadline = time.monotonic() + 10
    while service.catalog() is old and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.catalog().size == old.size + 1
