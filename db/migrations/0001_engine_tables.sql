-- Version 1: engine tables and their indexes.
-- Released history, kept as it ran; never edited. Version 9 supersedes versions 1-8:
-- a database below version 9 is brought to it by 0009 alone (see db/migrations/README.md).
-- history

CREATE TABLE IF NOT EXISTS migration_runs (
        id UUID PRIMARY KEY,
        file_path VARCHAR(500) NOT NULL,
        record_type VARCHAR(100) NOT NULL,
        status VARCHAR(50) NOT NULL DEFAULT 'running',
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        completed_at TIMESTAMPTZ,
        total_duration DOUBLE PRECISION,
        success BOOLEAN,
        error_message TEXT);

CREATE TABLE IF NOT EXISTS workflow_states (
        id UUID PRIMARY KEY,
        run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE,
        step_name VARCHAR(100) NOT NULL,
        state_data JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        step_order INTEGER NOT NULL,
        metadata JSONB);

CREATE TABLE IF NOT EXISTS workflow_checkpoints (
        id UUID PRIMARY KEY,
        run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE,
        checkpoint_name VARCHAR(100) NOT NULL,
        state_data JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        metadata JSONB);

CREATE INDEX IF NOT EXISTS migration_runs_status_idx ON migration_runs USING btree (status);

CREATE INDEX IF NOT EXISTS migration_runs_created_at_idx ON migration_runs USING btree (created_at);

CREATE INDEX IF NOT EXISTS migration_runs_file_path_idx ON migration_runs USING btree (file_path);

CREATE INDEX IF NOT EXISTS migration_runs_record_type_idx ON migration_runs USING btree (record_type);

CREATE INDEX IF NOT EXISTS workflow_states_run_id_idx ON workflow_states USING btree (run_id);

CREATE INDEX IF NOT EXISTS workflow_checkpoints_run_id_idx ON workflow_checkpoints USING btree (run_id);
