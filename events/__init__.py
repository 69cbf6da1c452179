"""The change stream: every change to runs, states and checkpoints, as numbered events.

Where events come from: the engines' triggers log what each statement did (schema versions 12 and 13);
the change-log folder (changelog/) turns each batch into rows of `migration_api_events`, numbered
by a sequence in commit order, and announces the newest id with `NOTIFY migration_api_events`
(in its own transaction, never an engine's), as `schema:id`: the channel is the database's, so
the services of other schemas hear it too and must not take another sequence's ids for theirs.
The service's own writes fold at once, so their events follow within milliseconds; an engine's
direct write within the fold interval (0.2 s).

Where they go (`Hub`, one per process): one LISTEN connection; on each notice (and every few
seconds regardless) it reads the events after the last one it saw, encodes each once and hands
it to every stream of the process whose filter matches, through a bounded queue per client
(with no stream open it reads nothing, it only notes the newest id its schema announced). A
client whose queue fills (it reads too slowly) is dropped with a `dropped` event naming the
reason; the others never wait for it. A stream that resumes (`Last-Event-ID`) first reads what
it missed from the table, then follows the hub; ids it already sent are skipped, so there is no
gap and no duplicate.
The hub and the streams take a pooled connection for each read of the table and give it back
at once (a stream lasts minutes); the changes feed for pollers reads on its request's connection
(`EventsRepository`, db/unit_of_work.py).

How long they are kept: `EVENTS_RETENTION_SECONDS` (default one hour); the folder prunes older
ones. A client resuming from before what is kept, or across a crash or rebuild, gets a `reset`
event: reload, then follow again. Hand-written rather than a library because the stream is a
thin layer over PostgreSQL's LISTEN and one table; Litestar's ServerSentEvent does the wire
format.
"""

from events.hub import EventFilter, EventsRepository, Hub, end_streams_on_signals, stream

__all__ = ["EventFilter", "EventsRepository", "Hub", "end_streams_on_signals", "stream"]
