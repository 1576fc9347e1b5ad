-- The audio fingerprint (core/audio_fingerprint.py): a hash of the coded audio that ignores tags,
-- so a retagged file keeps its analysis and an export matches on another machine. NULL for
-- tracks analysed before this migration (they get one the next time they are analysed).
ALTER TABLE tracks ADD COLUMN audio_fingerprint TEXT;
CREATE INDEX tracks_audio_fingerprint ON tracks(audio_fingerprint);
