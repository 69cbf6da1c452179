-- The change stream: events made from the change log, read by the stream and the changes feed.
-- Loaded by name (db/sqlfile.py). The folder (changelog/folder.py) runs `fold` in each batch's
-- transaction, `reset` in each rebuild's and `prune` now and then; events/hub.py reads `after`.
-- Tables: db/migrations/0012_change_stream.sql.

-- name: fold
-- The batch's changes as events, in the order they were made: a run created, updated (its new
-- row) or deleted, a state or checkpoint appended. A run's event keeps the run's status and
-- record type after the change; a step's has none stored (`after` reads the run's). The batch's
-- highest id is announced to every instance's stream, as `schema:id`: every schema's service in
-- the database listens on the same channel, and ids of another schema's sequence are not ours.
WITH made AS (
    INSERT INTO migration_api_events (id, at, run_id, kind, status, record_type, name, step_order)
    SELECT nextval('migration_api_event_ids'), logged_at, run_id, kind, status, record_type, name, step_order
      FROM (SELECT logged_at, run_id, kind, status, record_type, name, step_order
              FROM migration_api_fold_batch
             WHERE run_id IS NOT NULL
               AND (kind IN ('run_created', 'run_updated', 'state_appended', 'checkpoint_appended') AND s >= 0
                    OR kind = 'run_deleted')
             ORDER BY logged_at, s) AS changes
    RETURNING id)
SELECT pg_notify('migration_api_events', current_schema() || ':' || max(id)) FROM made HAVING count(*) > 0;

-- name: reset
-- After a rebuild: what the log held is gone unstreamed, so a `reset` event tells every client
-- to reload, and a client resuming from before it is told the same. Announced like a fold's.
WITH made AS (
    INSERT INTO migration_api_events (id, at, kind, name)
    VALUES (nextval('migration_api_event_ids'), clock_timestamp(), 'reset', %(reason)s)
    RETURNING id)
UPDATE migration_api_machinery SET events_floor = greatest(events_floor, (SELECT id - 1 FROM made))
RETURNING pg_notify('migration_api_events', current_schema() || ':' || (events_floor + 1));

-- name: prune
-- Events older than the retention go: of the %(limit)s oldest ids, those past it, in one short
-- statement per call. A client resuming from one of them is told to reload.
WITH gone AS (
    DELETE FROM migration_api_events
     WHERE id = ANY (ARRAY (SELECT id FROM (SELECT id, at FROM migration_api_events ORDER BY id LIMIT %(limit)s) o
                             WHERE at < clock_timestamp() - %(retention)s * interval '1 second'))
    RETURNING id)
UPDATE migration_api_machinery SET events_floor = greatest(events_floor, (SELECT max(id) FROM gone))
 WHERE EXISTS (SELECT 1 FROM gone)
RETURNING (SELECT count(*) FROM gone);

-- name: unvacuumed
-- Whether autovacuum leaves the events to the service: it is off on the server (or cannot see
-- the table's changes without track_counts), or off for this table. Without it the space of
-- pruned events is never reused and the table grows by every event ever made.
SELECT NOT (current_setting('autovacuum')::bool AND current_setting('track_counts')::bool)
    OR EXISTS (SELECT 1 FROM pg_class c, pg_options_to_table(c.reloptions) o
                WHERE c.oid = 'migration_api_events'::regclass
                  AND o.option_name = 'autovacuum_enabled' AND NOT o.option_value::bool);

-- name: vacuum
-- After a prune, where autovacuum does not run (`unvacuumed`); no truncation of the file's empty
-- end (it would wait for an exclusive lock that streams' reads hold off).
VACUUM (TRUNCATE false) migration_api_events;

-- name: position
-- Where the stream stands: events up to `floor` may be missing; `last` is the newest id.
SELECT events_floor, greatest(events_floor, (SELECT max(id) FROM migration_api_events)),
       (SELECT last_value FROM migration_api_event_ids)
  FROM migration_api_machinery;

-- name: after
-- Up to %(limit)s events after an id, oldest first, each with its run as it is now (none when
-- deleted since); a step's event takes the run's status and record type from it.
SELECT e.id, e.kind, e.run_id, e.at, coalesce(e.status, r.status), coalesce(e.record_type, r.record_type),
       e.name, e.step_order,
       r.id, r.file_path, r.record_type, r.status, r.created_at, r.updated_at, r.completed_at,
       r.total_duration, r.success, r.error_message
  FROM migration_api_events e
  LEFT JOIN migration_runs r ON r.id = e.run_id
 WHERE e.id > %(after)s
 ORDER BY e.id
 LIMIT %(limit)s;

-- name: after_for_run
-- The same for one run, and the resets (which concern every client).
SELECT e.id, e.kind, e.run_id, e.at, coalesce(e.status, r.status), coalesce(e.record_type, r.record_type),
       e.name, e.step_order,
       r.id, r.file_path, r.record_type, r.status, r.created_at, r.updated_at, r.completed_at,
       r.total_duration, r.success, r.error_message
  FROM migration_api_events e
  LEFT JOIN migration_runs r ON r.id = e.run_id
 WHERE e.id > %(after)s AND (e.run_id = %(run_id)s OR e.kind = 'reset')
 ORDER BY e.id
 LIMIT %(limit)s;
