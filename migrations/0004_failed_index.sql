-- Issue 10 (hardening): unreadable files are now listed as failed too, and the dashboard asks
-- for the most recent failures every few seconds (`WHERE status = 'failed' ORDER BY updated_at
-- DESC LIMIT n`): an index answers that without sorting every failed row.
CREATE INDEX files_status_updated ON files(status, updated_at);
