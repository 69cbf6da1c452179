-- Version 14: API keys. Each key is a name, its scopes and a keyed hash of its token (HMAC-SHA256
-- with API_KEY_PEPPER, auth/tokens.py); the token itself is shown once when the key is made and
-- never stored. A revoked key keeps its row (revoked_at set) so `python -m auth list` can show it.
-- Only the service reads and writes this table; no engine statement touches it.

CREATE TABLE IF NOT EXISTS migration_api_keys (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    scopes TEXT[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'admin']::TEXT[]),
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ);

-- One active key per name, so `revoke NAME` means one key.
CREATE UNIQUE INDEX IF NOT EXISTS migration_api_keys_active_name_idx
    ON migration_api_keys USING btree (name) WHERE revoked_at IS NULL;
