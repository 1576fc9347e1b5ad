-- Reconcile runs, so status can show the current scan's progress and history survives restarts.
CREATE TABLE scan_runs (
    id            INTEGER PRIMARY KEY,
    trigger       TEXT NOT NULL,            -- 'startup', 'api', 'cli', 'periodic'
    started_at    REAL NOT NULL DEFAULT (unixepoch('subsec')),
    finished_at   REAL,
    files_seen    INTEGER NOT NULL DEFAULT 0,
    files_queued  INTEGER NOT NULL DEFAULT 0,
    files_missing INTEGER NOT NULL DEFAULT 0,
    error         TEXT
);
