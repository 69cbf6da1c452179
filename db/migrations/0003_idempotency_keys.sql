-- Version 3: idempotency keys: the first response to each keyed POST, until it expires.
-- Released history, kept as it ran; never edited. Version 9 supersedes versions 1-8:
-- a database below version 9 is brought to it by 0009 alone (see db/migrations/README.md).
-- history

CREATE TABLE IF NOT EXISTS migration_api_idempotency_keys (
                key TEXT NOT NULL,
                scope TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                status_code INTEGER NOT NULL,
                response_body BYTEA NOT NULL,
                headers JSONB NOT NULL DEFAULT '{}',
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                expires_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (key, scope));

CREATE INDEX IF NOT EXISTS migration_api_idempotency_keys_expires_at_idx ON migration_api_idempotency_keys USING btree (expires_at);
