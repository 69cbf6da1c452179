-- Retention: what `python -m db.retention` runs (loaded by name, db/sqlfile.py). Finished runs
-- older than a cutoff go with their states and checkpoints, a batch per transaction. Each delete
-- goes through the engines' tables like any engine write, so the change log's triggers keep the
-- roll-ups, search documents, caches and the event stream exact (one run_deleted event per run).

-- name: count
-- How many runs the cutoff selects (for --dry-run and the progress line).
SELECT count(*) FROM migration_runs
 WHERE created_at < %(cutoff)s AND status NOT IN ('running', 'pending', 'paused');

-- name: pick
-- The next batch, oldest first; rows an engine holds locked now are skipped (taken next time).
SELECT id FROM migration_runs
 WHERE created_at < %(cutoff)s AND status NOT IN ('running', 'pending', 'paused')
 ORDER BY created_at
 LIMIT %(batch)s
   FOR UPDATE SKIP LOCKED;

-- name: archive
-- The batch's runs as JSON lines, each with its states and checkpoints.
SELECT json_build_object(
         'run', to_jsonb(r),
         'states', coalesce((SELECT jsonb_agg(to_jsonb(s) ORDER BY s.step_order, s.created_at)
                               FROM workflow_states s WHERE s.run_id = r.id), '[]'::jsonb),
         'checkpoints', coalesce((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.created_at)
                                    FROM workflow_checkpoints c WHERE c.run_id = r.id), '[]'::jsonb))::text
  FROM migration_runs r
 WHERE r.id = ANY(%(ids)s);

-- name: delete_states
DELETE FROM workflow_states WHERE run_id = ANY(%(ids)s);

-- name: delete_checkpoints
DELETE FROM workflow_checkpoints WHERE run_id = ANY(%(ids)s);

-- name: delete_runs
DELETE FROM migration_runs WHERE id = ANY(%(ids)s);
