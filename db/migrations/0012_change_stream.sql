-- Version 12: the change stream (events/), its tables. The change log also says what happened
-- (kind) and, for a step, its name and order (version 13's triggers write them); the folder turns
-- each batch into numbered events, kept for a retention period, which the service streams
-- (GET /api/v1/events) and pages (GET /api/v1/changes). No lock on an engine table here: the log's
-- new columns take the log's own lock, in a transaction of their own, so that it is never held
-- while waiting for an engine table (engines' statements reach the log through the triggers).
-- Idempotent (the baseline and every later version are reapplied to repair damage); runs in one
-- transaction with a short lock_timeout, retried (db/migrate.py).

ALTER TABLE migration_api_changes
    ADD COLUMN IF NOT EXISTS kind TEXT,
    ADD COLUMN IF NOT EXISTS name TEXT,
    ADD COLUMN IF NOT EXISTS step_order INTEGER;

-- Event ids: a logged sequence, so that an id is never handed out twice, even after a crash
-- empties the (unlogged) events table; a client resuming from an id the service no longer holds
-- is told to reload (events/).
CREATE SEQUENCE IF NOT EXISTS migration_api_event_ids;

-- The events, newest last. Unlogged, like everything derived from the change log: a crash of the
-- server empties it, the folder rebuilds and records a `reset` event.
CREATE UNLOGGED TABLE IF NOT EXISTS migration_api_events (
    id BIGINT PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    run_id UUID,
    kind TEXT NOT NULL,
    status TEXT,
    record_type TEXT,
    name TEXT,
    step_order INTEGER);
-- Only the primary key: every read goes by id (a run's own stream resumes by walking the ids
-- after the client's, pruning walks the oldest ids), and each index would cost every fold.

-- Events up to this id may be missing (pruned, or lost with a rebuild): a client resuming from
-- below it is told to reload.
ALTER TABLE migration_api_machinery ADD COLUMN IF NOT EXISTS events_floor BIGINT NOT NULL DEFAULT 0;
