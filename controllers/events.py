"""The change stream over HTTP: Server-Sent Events, per run or filtered, and a page for pollers."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent

from auth import READ, requires
from controllers.protocol import RunIdPath, error_responses, parse_id
from controllers.providers import provide_events_repo, provide_runs_repo
from dto.events import ChangesPage, Event, EventKind
from dto.examples import EVENT_STREAM_EXAMPLE
from errors import DomainError, RunNotFound, ServiceUnavailable
from events import EventFilter, EventsRepository, Hub, stream
from events.hub import PAGE
from repositories.runs import RunsRepository

KINDS = ", ".join(f"`{k.value}`" for k in EventKind)
STREAM_DESCRIPTION = (
    "A `text/event-stream` of changes to runs, states and checkpoints, made through this API or "
    "written straight into the tables by engines (those within about a second). Each message has "
    "`id` (the event id), `event` (the kind: " + KINDS + ") and `data`: the event as JSON (the "
    "`Event` schema, as in `/api/v1/changes`). Reconnect with `Last-Event-ID` to get what was missed "
    "(EventSource does so by itself); from further back than `EVENTS_RETENTION_SECONDS` (an hour by "
    "default), or across a crash or rebuild, the first event is a `reset`: reload, then follow. "
    "Comment lines (`: heartbeat`) come every `EVENTS_HEARTBEAT_SECONDS` of silence. A client that "
    "reads too slowly gets a `dropped` event and the stream ends; reconnecting resumes it."
)
SSE_RESPONSE = {
    200: ResponseSpec(
        data_container=str,
        media_type="text/event-stream",
        description="The stream: one message per event (its data is an `Event` as JSON), heartbeat comments between",
        generate_examples=False,
        examples=[Example(summary="two events and a heartbeat", value=EVENT_STREAM_EXAMPLE)],
    )
}
LastEventId = Annotated[
    str | None,
    HeaderParameter(
        name="Last-Event-ID",
        description="The id of the last event received: the stream starts after it",
        required=False,
        max_length=20,
        pattern=r"^[0-9]+$",
    ),
]
Filter = Annotated[list[str] | None, QueryParameter(required=False, max_items=20)]


def provide_hub(state: State) -> Hub:
    hub: Hub | None = state.hub
    if hub is None:
        raise ServiceUnavailable(
            "the change stream needs the service's change log (schema versions 12 and 13), which this database "
            "role could not install"
        )
    return hub


def _filter(
    run_id: uuid.UUID | None, status: list[str] | None, record_type: list[str] | None, kind: list[str] | None
) -> EventFilter:
    known = {k.value for k in EventKind}
    unknown = sorted(set(kind or ()) - known)
    if unknown:
        raise DomainError(f"kind must be among {sorted(known)}, got {unknown}")
    return EventFilter(
        run_id=run_id,
        statuses=frozenset(status or ()),
        record_types=frozenset(record_type or ()),
        kinds=frozenset(kind or ()),
    )


def _stream(state: State, hub: Hub, event_filter: EventFilter, last_event_id: str | None) -> ServerSentEvent:
    resume = None if last_event_id is None else int(last_event_id)
    return ServerSentEvent(stream(hub, event_filter, resume, state.settings.events_heartbeat_seconds))


class EventsController(Controller):
    path = "/api/v1"
    tags = ["Events"]
    dependencies = {
        "hub": Provide(provide_hub, sync_to_thread=False),
        "runs_repo": Provide(provide_runs_repo),
        "events_repo": Provide(provide_events_repo),
    }

    @get(
        "/events",
        operation_id="StreamEvents",
        **requires(READ),
        summary="Follow every change as it happens (Server-Sent Events)",
        description=STREAM_DESCRIPTION,
        responses={**SSE_RESPONSE, **error_responses()},
    )
    async def events(
        self,
        state: State,
        hub: NamedDependency[Hub],
        last_event_id: LastEventId = None,
        run_id: Annotated[
            uuid.UUID | None, QueryParameter(description="Only this run's events", required=False)
        ] = None,
        status: Filter = None,
        record_type: Filter = None,
        kind: Filter = None,
    ) -> ServerSentEvent:
        """Changes as they happen; filters (`status`, `record_type`, `kind`, each repeatable) select
        by the run's status and record type after the change."""
        return _stream(state, hub, _filter(run_id, status, record_type, kind), last_event_id)

    @get(
        "/migrations/{run_id:str}/events",
        operation_id="StreamRunEvents",
        **requires(READ),
        summary="Follow one run's changes as they happen (Server-Sent Events)",
        description=STREAM_DESCRIPTION,
        responses={**SSE_RESPONSE, **error_responses(404)},
    )
    async def run_events(
        self,
        state: State,
        hub: NamedDependency[Hub],
        runs_repo: NamedDependency[RunsRepository],
        run_id: RunIdPath,
        last_event_id: LastEventId = None,
        kind: Filter = None,
    ) -> ServerSentEvent:
        """The run's changes: updates, states and checkpoints appended, its deletion."""
        run_uuid = parse_id(run_id)
        if not await runs_repo.exists(run_uuid):
            raise RunNotFound(run_id)
        return _stream(state, hub, _filter(run_uuid, None, None, kind), last_event_id)

    @get(
        "/changes",
        operation_id="ListChanges",
        **requires(READ),
        summary="The change events after an id, for clients that poll",
        response_description=(
            "Up to `limit` events after `after`, oldest first, and the id to poll from next; `reset` true "
            "when events after `after` are no longer all held (reload, then poll from `last_id`)."
        ),
        responses=error_responses(),
    )
    async def changes(
        self,
        hub: NamedDependency[Hub],
        events_repo: NamedDependency[EventsRepository],
        after: Annotated[
            int,
            QueryParameter(description="The last event id already seen; 0 for the oldest held", ge=0, le=2**62),
        ] = 0,
        limit: Annotated[int, QueryParameter(description="Most events to return", ge=1, le=1000)] = 100,
        run_id: Annotated[
            uuid.UUID | None, QueryParameter(description="Only this run's events", required=False)
        ] = None,
        status: Filter = None,
        record_type: Filter = None,
        kind: Filter = None,
    ) -> ChangesPage:
        """The same events as the stream, a page at a time: poll again with `after=last_id`."""
        event_filter = _filter(run_id, status, record_type, kind)
        floor, newest, sequence = await events_repo.position()
        if after > 0 and hub.missed_since(after, floor, newest, sequence) is not None:
            return ChangesPage(events=[], last_id=newest, reset=True)
        events: list[Event] = []
        position = max(after, floor)
        while True:
            page = await events_repo.read_after(position, run_id)
            for event, _ in page:
                position = event.id
                if event_filter.matches(event):
                    events.append(event)
                    if len(events) == limit:
                        return ChangesPage(events=events, last_id=position, reset=False)
            if len(page) < PAGE:
                return ChangesPage(events=events, last_id=position, reset=False)
