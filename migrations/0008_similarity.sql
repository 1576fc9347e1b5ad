-- The library-adaptive "sounds like" projection (issue 22, core/similarity).
-- Per features row: the spread of the track's MusiCNN patch embeddings around their mean
-- (float16 little endian [rows, dims], rows <= 12, see core/similarity/lda.spread_of), how many
-- patches the embedding averaged, and the MTT embedding mean where the preset runs MTT.
-- NULL for tracks analysed before this migration: they are upgraded in the background.
ALTER TABLE features ADD COLUMN embedding_spread BLOB;
ALTER TABLE features ADD COLUMN embedding_patches INTEGER;
ALTER TABLE features ADD COLUMN embedding_mtt BLOB;
-- Why the background upgrade (core/library/upgrade.py) could not add the spread to an older row
-- (the file vanished, no longer decodes...): it is not tried again until the file is analysed
-- again or `scan --upgrade` retries it. NULL otherwise.
ALTER TABLE features ADD COLUMN spread_error TEXT;
-- The rows the upgrade still has to visit (or could not): small once the library is upgraded, so
-- finding the next ones and counting them for /library/status stays cheap on 200,000 tracks.
CREATE INDEX features_spread_missing ON features(track_id)
    WHERE embedding_spread IS NULL AND embedding IS NOT NULL;
-- Rows with an MSD embedding and no MTT one: the similarity index checks there is none left among
-- the live tracks' newest rows (core/similarity/fit.mtt_missing) at every index check.
CREATE INDEX features_mtt_missing ON features(track_id)
    WHERE embedding IS NOT NULL AND embedding_mtt IS NULL;

-- Fitted projections, newest per representation wins; 'shipped' ones come with the models.
CREATE TABLE similarity_projections (
    id              INTEGER PRIMARY KEY,
    representation  TEXT NOT NULL,                 -- 'msd' or 'msd+mtt'
    version         INTEGER NOT NULL,              -- the fit's algorithm version
    source          TEXT NOT NULL CHECK (source IN ('library', 'shipped')),
    tracks          INTEGER NOT NULL,              -- tracks the fit saw
    dims_in         INTEGER NOT NULL,
    dims_out        INTEGER NOT NULL,
    center          BLOB NOT NULL,                 -- float32[dims_in]
    matrix          BLOB NOT NULL,                 -- float32[dims_in, dims_out]
    created_at      REAL NOT NULL DEFAULT (unixepoch('subsec'))
);
