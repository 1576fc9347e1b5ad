-- Skips and full plays as feedback for radio (issue 23, core/feedback): from MPD radio, from
-- clients' "now playing" reports through the /rest proxy, and from OpenSubsonic playbackReport.
CREATE TABLE listening_events (
    id          INTEGER PRIMARY KEY,
    track_id    INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('skip', 'play')),
    source      TEXT NOT NULL,                     -- 'mpd', 'subsonic', 'playback_report'
    user        TEXT,                              -- the server's user name; NULL = MPD / the linked user
    position_s  REAL,                              -- where the skip happened, when known
    at          REAL NOT NULL DEFAULT (unixepoch('subsec'))
);
CREATE INDEX listening_events_track ON listening_events(track_id, at);
CREATE INDEX listening_events_kind_at ON listening_events(kind, at);
