-- Version 11: the roll-ups and the search documents become UNLOGGED, like the change log they
-- are folded from. Logged, each fold wrote about 8.4 kB of WAL per engine cycle (the roll-ups'
-- hot rows and the trigram index's pages, full-page images after every checkpoint) against the
-- engine's own 3.2 kB: the engines' commits waited behind the service's WAL (bench/engine_writes.py,
-- docs/performance.md). Unlogged, a fold writes none.
-- Everything in these tables is derived from the engines' tables. A crash of the server empties
-- them together with the change log and its sentinel row (migration_api_log_alive), which is
-- exactly what already makes the service rebuild them from the base tables (changelog/folder.py);
-- a backup or a replica holds them empty, with the same outcome. Reads are served from the base
-- tables while the rebuild runs.
-- Each ALTER rewrites its table under a lock that only the service's own folder and readers take;
-- engines never touch these tables. Idempotent: an unlogged table stays as it is.
ALTER TABLE migration_api_run_counts_hour SET UNLOGGED;
ALTER TABLE migration_api_run_counts_day SET UNLOGGED;
ALTER TABLE migration_api_run_counts_total SET UNLOGGED;
ALTER TABLE migration_api_duration_hist_hour SET UNLOGGED;
ALTER TABLE migration_api_duration_hist_day SET UNLOGGED;
ALTER TABLE migration_api_duration_hist_total SET UNLOGGED;
ALTER TABLE migration_api_duration_hist_type SET UNLOGGED;
ALTER TABLE migration_api_duration_hist_all SET UNLOGGED;
ALTER TABLE migration_api_duration_bins_hour SET UNLOGGED;
ALTER TABLE migration_api_duration_bins_day SET UNLOGGED;
ALTER TABLE migration_api_error_counts_day SET UNLOGGED;
ALTER TABLE migration_api_search_docs SET UNLOGGED;
