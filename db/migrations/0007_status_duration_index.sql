-- Version 7: sorting one status by duration (failed runs, slowest first) without scanning unfinished runs.
-- Released history, kept as it ran; never edited. Version 9 supersedes versions 1-8:
-- a database below version 9 is brought to it by 0009 alone (see db/migrations/README.md).
-- history

CREATE INDEX IF NOT EXISTS migration_runs_status_total_duration_id_idx ON migration_runs USING btree (status, total_duration, id);
