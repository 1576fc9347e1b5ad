-- The link to a Subsonic/OpenSubsonic media server (issue 11): the server's songs and which
-- playlistgen track each one is, the server playlists playlistgen created, and link state.

CREATE TABLE mediaserver_songs (
    server_id         TEXT PRIMARY KEY,            -- the server's song id
    track_id          INTEGER REFERENCES tracks(id) ON DELETE SET NULL,
    method            TEXT CHECK (method IN ('path', 'suffix', 'mbid', 'tags') OR method IS NULL),
    unmatched_reason  TEXT,                        -- why no track matched (NULL when matched)
    path              TEXT,                        -- as the server reports it
    artist            TEXT,
    album             TEXT,
    title             TEXT,
    duration_s        REAL,
    play_count        INTEGER NOT NULL DEFAULT 0,
    last_played       REAL,                        -- unix time
    starred           REAL,                        -- unix time the user starred it
    seen_at           REAL NOT NULL,               -- the link run that last saw it
    child             TEXT                         -- the server's Child JSON
);
CREATE INDEX mediaserver_songs_track ON mediaserver_songs(track_id);

CREATE TABLE mediaserver_playlists (
    playlist_id         INTEGER PRIMARY KEY REFERENCES playlists(id) ON DELETE CASCADE,
    server_playlist_id  TEXT NOT NULL,
    name                TEXT NOT NULL,
    created_by_us       INTEGER NOT NULL DEFAULT 1,
    pushed_at           REAL,
    songs_pushed        INTEGER,
    songs_left_out      INTEGER
);

CREATE TABLE mediaserver_state (
    key    TEXT PRIMARY KEY,
    value  TEXT
);

ALTER TABLE tracks ADD COLUMN musicbrainz_trackid TEXT;
