-- Version 2: ordered-read indexes: newest first with a stable tiebreak, steps by order.
-- Released history, kept as it ran; never edited. Version 9 supersedes versions 1-8:
-- a database below version 9 is brought to it by 0009 alone (see db/migrations/README.md).
-- history

CREATE INDEX IF NOT EXISTS migration_runs_created_at_id_idx ON migration_runs USING btree (created_at, id);

CREATE INDEX IF NOT EXISTS migration_runs_status_created_at_id_idx ON migration_runs USING btree (status, created_at, id);

CREATE INDEX IF NOT EXISTS migration_runs_record_type_created_at_id_idx ON migration_runs USING btree (record_type, created_at, id);

CREATE INDEX IF NOT EXISTS workflow_states_run_id_step_order_idx ON workflow_states USING btree (run_id, step_order);

CREATE INDEX IF NOT EXISTS workflow_checkpoints_run_id_created_at_idx ON workflow_checkpoints USING btree (run_id, created_at);
