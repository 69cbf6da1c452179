-- One engine cycle, as the engines write it (bench/engine_writes.py runs it under pgbench):
-- a run starts, two steps record their state, one checkpoint, the run finishes; about 10 % fail.
-- Five autocommit statements, schema-qualified, in pgbench's default simple query mode (the
-- :variables are substituted as text, hence ':rid' in quotes).
\set n random(1, 99999)
\set t random(1, 5)
\set records random(1, 50000)
\set fail random(1, 100)
\set e random(1, 5)
\set secs random(500, 60000) / 100.0
INSERT INTO public.migration_runs (id, file_path, record_type, status) VALUES (gen_random_uuid(), 'data/input/' || (ARRAY['claim', 'absence', 'disability', 'employee', 'group_policy'])[:t] || '_' || :n || '.csv', (ARRAY['claim', 'absence', 'disability', 'employee', 'group_policy'])[:t], 'running') RETURNING id AS rid \gset
INSERT INTO public.workflow_states (id, run_id, step_name, state_data, step_order) VALUES (gen_random_uuid(), ':rid', 'read', '{"records": :records}', 1);
INSERT INTO public.workflow_states (id, run_id, step_name, state_data, step_order) VALUES (gen_random_uuid(), ':rid', 'transform', '{"records": :records, "valid": true}', 2);
INSERT INTO public.workflow_checkpoints (id, run_id, checkpoint_name, state_data) VALUES (gen_random_uuid(), ':rid', 'after_transform', '{"offset": :records}');
\if :fail <= 10
UPDATE public.migration_runs SET status = 'failed', completed_at = now(), updated_at = now(), total_duration = :secs, success = false, error_message = (ARRAY['Timeout after ' || 30 + :n % 270 || 's', 'Validation failed at row ' || :records, 'Connection reset by peer', 'Duplicate key in batch ' || :n % 50, 'Unknown record code ' || :n % 40])[:e] WHERE id = ':rid';
\else
UPDATE public.migration_runs SET status = 'completed', completed_at = now(), updated_at = now(), total_duration = :secs, success = true WHERE id = ':rid';
\endif
