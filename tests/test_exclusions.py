"""Exclusions, `order` and harmonic chains through the HTTP API, on a real SQLite library written
through the analysis result path (tests/playlist_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from playlistgen.app import App
from playlistgen.config import load_settings
from playlistgen.core.music import camelot_compatible, camelot_index, tempo_compatible
from playlistgen.core.playlists.diversity import gaps_respected
from playlistgen.core.playlists.exclusions import ExcludeRules, effective_rules, parse_rules, path_excluded
from playlistgen.core.playlists.service import PlaylistRequest
from playlistgen.core.storage.db import Database
from tests.conftest import library_settings
from tests.playlist_fixtures import add_track, make_result, style_centres


def client_for(populated_library: tuple, exclude: dict | None = None):  # type: ignore[no-untyped-def]
    db, _, root = populated_library
    settings = library_settings(root) if exclude is None else library_settings(root, exclude=exclude)
    return App.for_api(settings, db).api.test_client()


def post(client, body: dict, status: int = 200) -> dict:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/playlists", json=body)
    assert r.status_code == status, r.get_json()
    return r.get_json()


# --- pure rules -----------------------------------------------------------------------------------------

def test_rules_parse_merge_and_match() -> None:
    configured = parse_rules({"genres": ["christmas"], "max_duration_min": 20})
    assert effective_rules(configured, None, False) == configured
    assert effective_rules(configured, None, True).empty
    both = effective_rules(configured, {"paths": ["*/Podcasts/*"], "max_duration_min": 8}, False)
    assert both.genres == ("christmas",) and both.paths == ("*/Podcasts/*",) and both.max_duration_min == 8
    assert effective_rules(configured, {"genres": ["rock"]}, False).max_duration_min == 20
    assert ExcludeRules().empty and not configured.empty
    assert path_excluded("/srv/Music/Podcasts/ep1.mp3", ["*/podcasts/*"], [])
    assert path_excluded("/srv/Music/book.M4B", ["*.m4b"], [])
    assert path_excluded("/srv/Music/Audiobooks/x/1.mp3", [], ["/srv/Music/Audiobooks/"])
    assert not path_excluded("/srv/Music/AudiobooksNot/1.mp3", [], ["/srv/Music/Audiobooks/"])
    with pytest.raises(Exception, match="did you mean|unknown exclude rule"):
        parse_rules({"genre": ["x"]})
    with pytest.raises(Exception, match="probability"):
        parse_rules({"tags": {"jazz": 2}})


def test_a_request_exclude_keeps_the_configured_duration_limit() -> None:
    """A request's own ``exclude`` without ``max_duration_min`` adds to the configured rules; it
    used to reset the configured limit to 0 (the parsed rules always carried the key)."""
    settings = load_settings(overrides={"playlists": {"exclude": {"max_duration_min": 20}}})
    request = PlaylistRequest.parse({"strategy": "random", "exclude": {"genres": ["rock"]}}, settings)
    configured = parse_rules(settings.playlists.exclude)
    assert effective_rules(configured, request.exclude, False).max_duration_min == 20
    request = PlaylistRequest.parse({"strategy": "random", "exclude": {"max_duration_min": 8}}, settings)
    assert effective_rules(configured, request.exclude, False).max_duration_min == 8


# --- through the API ------------------------------------------------------------------------------------

def genres_of(body: dict) -> set[str]:
    return {t.get("genre") or "" for t in body["tracks"]}


def test_configured_exclusions_apply_unless_include_excluded(populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, _ = populated_library
    client = client_for(populated_library, {"genres": ["jazz"], "max_duration_min": 20})
    jazz = post(client, {"strategy": "filter", "filters": {"genre": "jazz"}, "size": 50})
    assert jazz["tracks"] == [] and jazz["playlist"]["excluded"] > 0
    assert len(post(client, {"strategy": "filter", "filters": {"genre": "jazz"}, "size": 50,
                             "include_excluded": True})["tracks"]) > 10
    radio = post(client, {"strategy": "radio", "seeds": [facts["by_style"]["jazz"][0]], "size": 20})
    assert radio["tracks"][0]["id"] == facts["by_style"]["jazz"][0]          # a seed is never excluded
    assert all(t["genre"] != "Jazz" for t in radio["tracks"][1:])
    status = client.get("/api/v1/library/status").get_json()
    assert status["excluded"]["tracks"] == len(facts["by_style"]["jazz"])
    assert status["excluded"]["rules"]["genres"] == ["jazz"]
    assert post(client, {"strategy": "random", "size": 5, "include_excluded": "yes"}, 400)


def test_request_level_exclusions(populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, root = populated_library
    client = client_for(populated_library)
    body = post(client, {"strategy": "random", "size": 200, "random_seed": 1,
                         "exclude": {"genres": ["rock"], "paths": ["*/Artist 00 */*"], "folders": ["Artist 02 Jazz"],
                                     "max_duration_min": 5}})
    tracks = body["tracks"]
    assert tracks and "Rock" not in genres_of(body)
    assert all(t["duration_s"] <= 300 for t in tracks)
    assert not any(t["artist"] in ("Artist 00 Chill", "Artist 02 Jazz") for t in tracks)
    assert body["playlist"]["params"]["exclude"]["genres"] == ["rock"]
    by_tag = post(client, {"strategy": "random", "size": 200, "exclude": {"tags": {"jazz": 0.5}}})
    assert by_tag["playlist"]["excluded"] > 20
    assert all(not t["tags"] for t in by_tag["tracks"] if t["genre"] == "Jazz")   # only untagged (preset fast) left
    bad = client.post("/api/v1/playlists", json={"strategy": "random", "exclude": {"tags": {"jaz": 0.5}}})
    assert bad.status_code == 400 and "jazz" in bad.get_json()["error"]["did_you_mean"]
    bad = client.post("/api/v1/playlists", json={"strategy": "random", "exclude": {"genre": ["x"]}})
    assert bad.status_code == 400 and "genres" in bad.get_json()["error"]["did_you_mean"]


def test_order_smooth_reports_costs_and_keeps_the_seed_first(populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, _ = populated_library
    client = client_for(populated_library)
    seed = facts["Teardrop"]
    smooth = post(client, {"strategy": "radio", "seeds": [seed], "size": 25})
    as_is = post(client, {"strategy": "radio", "seeds": [seed], "size": 25, "order": "as_is"})
    meta = smooth["playlist"]
    assert meta["order"] == "smooth" and as_is["playlist"]["order"] == "as_is"
    assert smooth["tracks"][0]["id"] == seed and smooth["tracks"][0]["transition_cost"] is None
    costs = [t["transition_cost"] for t in smooth["tracks"][1:]]
    assert all(isinstance(c, float) for c in costs)
    assert meta["transitions"]["mean"] == pytest.approx(np.mean(costs), abs=1e-3)
    assert meta["transitions"]["worst"] == pytest.approx(max(costs), abs=1e-4)
    assert {t["id"] for t in smooth["tracks"]} == {t["id"] for t in as_is["tracks"]}   # same members
    assert meta["transitions"]["mean"] < as_is["playlist"]["transitions"]["mean"]
    assert gaps_respected([t["artist"] for t in smooth["tracks"]], 3)                # default artist_gap
    arc = post(client, {"strategy": "mood", "tags": ["chill"], "size": 30, "order": "energy_arc", "diversity": False})
    energy = [t["energy"] for t in arc["tracks"]]
    third = len(energy) // 3
    assert np.mean(energy[third:-third]) > max(np.mean(energy[:third]), np.mean(energy[-third:]))
    path = post(client, {"strategy": "path", "seeds": [facts["Teardrop"], facts["Jóga"]], "size": 8})
    assert path["playlist"]["order"] == "as_is" and path["tracks"][-1]["id"] == facts["Jóga"]
    bad = client.post("/api/v1/playlists", json={"strategy": "radio", "seeds": [seed], "order": "smoth"})
    assert bad.status_code == 400 and bad.get_json()["error"]["did_you_mean"] == ["smooth"]
    strategies = {s["name"]: s for s in client.get("/api/v1/playlists/strategies").get_json()["strategies"]}
    assert strategies["radio"]["default_order"] == "smooth" and strategies["path"]["default_order"] == "as_is"


@pytest.fixture(scope="module")
def chain_library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, dict, Path]]:
    """A chain of 10 key/tempo-compatible house tracks (7A-9B around 120 BPM, one at half time)
    among 20 incompatible ones of the same style (far keys, or 150 BPM)."""
    root = tmp_path_factory.mktemp("chain")
    (root / "library").mkdir()
    db = Database(root / "test.db", pool_min=1, pool_max=4)
    rng = np.random.default_rng(21)
    centres = style_centres(rng)
    chain_keys = ["8A", "8A", "9A", "9B", "8B", "8B", "7A", "8A", "9A", "9A"]
    chain_bpm = [120, 121, 119, 122, 120, 60.5, 121, 118, 120, 119]
    ids = []
    for i, (code, bpm) in enumerate(zip(chain_keys, chain_bpm, strict=True)):
        result = make_result(rng, "house", centres, artist=f"Chain {i}", album=f"C{i}", title=f"Link {i}",
                             track_number=1, camelot=code, bpm=bpm)
        ids.append(add_track(db, root / "library", result, fingerprint=f"chain-{i}"))
    for i in range(20):
        code, bpm = (["5A", "11B", "3A"][i % 3], 120.0) if i % 2 else ("8A", 150.0)
        result = make_result(rng, "house", centres, artist=f"Other {i}", album=f"O{i}", title=f"Other {i}",
                             track_number=1, camelot=code, bpm=bpm)
        add_track(db, root / "library", result, fingerprint=f"other-{i}")
    yield db, {"chain": ids}, root
    db.close()


def test_harmonic_follows_a_long_compatible_chain(chain_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, _ = chain_library
    client = client_for(chain_library)
    for size in (8, 10):
        body = post(client, {"strategy": "harmonic", "seeds": [facts["chain"][0]], "size": size})
        tracks = body["tracks"]
        assert len(tracks) == size and tracks[0]["id"] == facts["chain"][0]
        assert {t["id"] for t in tracks} <= set(facts["chain"])
        for a, b in zip(tracks, tracks[1:], strict=False):
            assert camelot_compatible(camelot_index(a["camelot"]), camelot_index(b["camelot"]))
            assert tempo_compatible(a["bpm"], b["bpm"], 0.06)
        assert body["playlist"]["compatible_transitions"] == size - 1
    # past the compatible chain the mix relaxes transitions to reach its size, and says how many (issue 21.6)
    longer = post(client, {"strategy": "harmonic", "seeds": [facts["chain"][0]], "size": 14})
    assert len(longer["tracks"]) == 14 and set(facts["chain"]) <= {t["id"] for t in longer["tracks"]}
    strict = longer["playlist"]["compatible_transitions"]
    assert strict >= 9 and any(n.startswith(f"harmonic: {13 - strict} of 13 transitions relaxed")
                               for n in longer["playlist"]["notes"]), longer["playlist"]
