"""The change log's reader: one task per process folds what the engines' triggers logged.

An engine's statement only appends the runs it touched, and what it did, to
`migration_api_changes` (schema versions 9 and 12). The folder, a background task of the service,
turns that log into everything the service derives from it, in batches and with the service's
rights:

- roll-up deltas (rollups/queries.sql `fold`), so statistics read thousands of rows, not millions;
- the search documents of the changed runs (their trigram index costs engines nothing);
- the batch's events, numbered, for the change stream (events/), announced with one
  `NOTIFY migration_api_events`; events past the retention are pruned every `PRUNE_INTERVAL`;
- one `NOTIFY migration_api_runs` per batch with the runs' ids, on which every process of the
  service drops those runs from its read cache (cache/). The NOTIFY runs in the service's
  transaction, never in an engine's: PostgreSQL serialises every notifying commit of the server.

Folds of all processes and instances take turns through an advisory lock; each process tries
every `FOLD_INTERVAL` seconds, so a direct engine write reaches statistics, search and caches
within about that long (bench/freshness.py measures it). The service's own writes fold at once
(`Folder.fold_now`), so a client reads its own writes. Reads never fold: under a steady stream of
engine writes there is always a batch waiting, and a read would queue behind it.

Whatever the log cannot be trusted for, the folder rebuilds from the base tables: after a
TRUNCATE, after a crash of the server (the log is unlogged; its sentinel row is gone with it),
after a first install or an upgrade, and when its own tables were damaged (it reapplies the
schema's baseline first). Meanwhile `Machinery` says the roll-ups and search documents are not
ready, statistics and search read the base tables, and the read cache is off.
"""

from changelog.folder import Folder, Machinery, derived_current

__all__ = ["Folder", "Machinery", "derived_current"]
