-- The scheduler claims one pending file per content fingerprint (copies are analysed once);
-- this index keeps that claim query cheap on libraries with 100k+ pending files.
CREATE INDEX files_status_fingerprint ON files(status, fingerprint);
