-- Initial schema. The files table is the persistent job queue; tracks hold one analysed
-- piece of content (several file paths may point at the same track when copies exist).

CREATE TABLE tracks (
    id            INTEGER PRIMARY KEY,
    fingerprint   TEXT NOT NULL UNIQUE,      -- size + content hash of the audio file
    artist        TEXT,
    album         TEXT,
    title         TEXT,
    genre         TEXT,
    year          INTEGER,
    track_number  INTEGER,
    duration_s    REAL,
    created_at    REAL NOT NULL DEFAULT (unixepoch('subsec')),
    updated_at    REAL NOT NULL DEFAULT (unixepoch('subsec'))
);

CREATE TABLE files (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL UNIQUE,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    fingerprint  TEXT,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'analysing', 'done', 'failed', 'missing')),
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    track_id     INTEGER REFERENCES tracks(id) ON DELETE SET NULL,
    created_at   REAL NOT NULL DEFAULT (unixepoch('subsec')),
    updated_at   REAL NOT NULL DEFAULT (unixepoch('subsec')),
    analysed_at  REAL
);
CREATE INDEX files_status ON files(status);
CREATE INDEX files_fingerprint ON files(size, fingerprint);
CREATE INDEX files_track ON files(track_id);

CREATE TABLE features (
    id                  INTEGER PRIMARY KEY,
    track_id            INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    analyzer_version    TEXT NOT NULL,
    preset              TEXT NOT NULL,
    duration_s          REAL,
    bpm                 REAL,
    bpm_confidence      REAL,
    key                 TEXT,
    scale               TEXT,
    key_strength        REAL,
    camelot             TEXT,
    loudness_lufs       REAL,
    loudness_range      REAL,
    dynamic_complexity  REAL,
    danceability        REAL,
    energy              REAL,
    spectral_centroid   REAL,
    spectral_rolloff    REAL,
    spectral_flatness   REAL,
    zcr                 REAL,
    valence             REAL,
    acousticness        REAL,
    instrumentalness    REAL,
    mfcc_mean           BLOB,   -- float32[13], little endian
    mfcc_std            BLOB,   -- float32[13]
    chroma              BLOB,   -- float32[12]
    embedding           BLOB,   -- float32[200], NULL for DSP-only presets
    cpu_s               REAL,   -- CPU seconds the analysis cost
    created_at          REAL NOT NULL DEFAULT (unixepoch('subsec')),
    UNIQUE (track_id, analyzer_version)
);
CREATE INDEX features_bpm ON features(bpm);

CREATE TABLE tags (
    track_id     INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    source       TEXT NOT NULL,      -- 'msd' or 'mtt'
    label        TEXT NOT NULL,
    probability  REAL NOT NULL,
    PRIMARY KEY (track_id, source, label)
) WITHOUT ROWID;
CREATE INDEX tags_label ON tags(label, probability);

CREATE TABLE playlists (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    strategy    TEXT NOT NULL,
    params      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    created_at  REAL NOT NULL DEFAULT (unixepoch('subsec'))
);

CREATE TABLE playlist_items (
    playlist_id  INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    track_id     INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    PRIMARY KEY (playlist_id, position)
) WITHOUT ROWID;

-- Full-text search over artist/title/album, kept in step with tracks by triggers.
CREATE VIRTUAL TABLE tracks_fts USING fts5(
    artist, title, album, content='tracks', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER tracks_fts_insert AFTER INSERT ON tracks BEGIN
    INSERT INTO tracks_fts(rowid, artist, title, album) VALUES (new.id, new.artist, new.title, new.album);
END;
CREATE TRIGGER tracks_fts_delete AFTER DELETE ON tracks BEGIN
    INSERT INTO tracks_fts(tracks_fts, rowid, artist, title, album)
    VALUES ('delete', old.id, old.artist, old.title, old.album);
END;
CREATE TRIGGER tracks_fts_update AFTER UPDATE OF artist, title, album ON tracks BEGIN
    INSERT INTO tracks_fts(tracks_fts, rowid, artist, title, album)
    VALUES ('delete', old.id, old.artist, old.title, old.album);
    INSERT INTO tracks_fts(rowid, artist, title, album) VALUES (new.id, new.artist, new.title, new.album);
END;
