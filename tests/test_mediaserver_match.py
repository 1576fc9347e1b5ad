"""The matcher's rules on hand-made data (no server needed): path map, path suffix, MusicBrainz
id, artist + title + duration, and the reasons of songs that match nothing."""

from __future__ import annotations

from playlistgen.core.integrations.mediaserver.link import LibraryIndex, Matcher, map_prefix


def _matcher(path_map: dict | None = None) -> Matcher:
    index = LibraryIndex(["/music"])
    index.add([("/music/A/Album/01 One.mp3", 1), ("/music/B/Album/01 One.mp3", 2), ("/music/C/X/solo.flac", 3),
               ("/music/D/Y/02 Two.ogg", 4)],
              [(1, "A", "One", 200.0, None), (2, "B", "One", 180.0, None), (3, "C", "Solo", 300.0, None),
               (4, "The Dee (feat. E)", "Two (Remastered 2011)", 240.0, "AAAA-1111")])
    return Matcher(index, path_map or {})


def test_map_prefix_whole_components_longest_wins() -> None:
    m = {"/data": "/music", "/data/extra": "/other", "": "/root"}
    assert map_prefix("/data/A/x.mp3", m) == "/music/A/x.mp3"
    assert map_prefix("/data/extra/x.mp3", m) == "/other/x.mp3"
    assert map_prefix("/database/x.mp3", {"/data": "/music"}) is None
    assert map_prefix("A/x.mp3", m) == "/root/A/x.mp3"


def test_each_method_in_order() -> None:
    m = _matcher({"/srv/media": "/music"})
    assert m.match({"id": "1", "path": "/srv/media/A/Album/01 One.mp3"})[:2] == (1, "path")
    assert m.match({"id": "1", "path": "A/Album/01 One.mp3"})[:2] == (1, "path")  # relative to a library root
    assert m.match({"id": "2", "path": "/elsewhere/B/Album/01 One.mp3"})[:2] == (2, "suffix")
    # file name only: accepted when the durations agree, refused when they do not
    assert m.match({"id": "3", "path": "Z/solo.flac", "duration": 301})[:2] == (3, "suffix")
    track, method, reason = m.match({"id": "3", "path": "Z/solo.flac", "duration": 100, "title": "Other"})
    assert track is None and "only the file name matches" in reason
    assert m.match({"id": "4", "path": "fake/path.mp3", "musicBrainzId": "aaaa-1111"})[:2] == (4, "mbid")
    # tags: featured artists, a leading "the" and version words are ignored; duration within 2 s
    assert m.match({"id": "4", "artist": "Dee", "title": "Two", "duration": 241.5})[:2] == (4, "tags")
    track, method, reason = m.match({"id": "4", "artist": "Dee", "title": "Two", "duration": 250})
    assert track is None and "differs in duration" in reason and "the server reports no path" in reason


def test_ambiguous_suffix_falls_through_to_tags() -> None:
    m = _matcher()
    # two library files end in Album/01 One.mp3: the suffix cannot decide, the tags can
    assert m.match({"id": "x", "path": "Other/Album/01 One.mp3", "artist": "B", "title": "One",
                    "duration": 181})[:2] == (2, "tags")
    track, _, reason = m.match({"id": "y", "path": "Other/Album/01 One.mp3", "title": "Nope"})
    assert track is None and "2 library files share its last 2 path component(s)" in reason
