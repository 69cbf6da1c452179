"""The HTTP side every controller shares, so that each controller module holds only its routes:

- the documented path, query and header parameters more than one resource takes (run id,
  Idempotency-Key, If-Match / If-None-Match, late, force, timestamps) and their parsing into a 400
  that names the parameter (`parse_id`, `parse_timestamp`);
- the documented responses: the error statuses (`error_responses`), 304, and the `ETag`,
  `X-Commit-Position` and `Idempotency-Replayed` headers;
- ETags and `If-Match` checks, `Location` and `Link` values, and the response of a stored
  (idempotent) write with the scope its key is held under;
- `check_input`, the app-level check of query parameters and JSON bodies.

The dependency providers are in controllers/providers.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import HeaderParameter, KwargDefinition, PathParameter, QueryParameter

from dto.errors import ErrorResponse
from dto.examples import ERROR_EXAMPLES
from dto.runs import RunRead, body_etag
from errors import DomainError, PreconditionFailed
from repositories.idempotency import StoredResponse

T = TypeVar("T")

RunIdPath = Annotated[
    str,
    PathParameter(
        description="The run's id, a UUID such as `3fa85f64-5717-4562-b3fc-2c963f66afa6`",
        format="uuid",
        examples=None,
    ),
]

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description=(
            "Makes a retry safe: a repeat with the same key and body gets the first response again "
            "(same id and status, header `Idempotency-Replayed: true`) and creates nothing; the same key "
            "with another body is 422. Keys expire after `IDEMPOTENCY_TTL_HOURS` (24 h by default)."
        ),
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        required=False,
    ),
]
# The longest `If-Match` / `If-None-Match` accepted (a longer one is a 400; controllers/cached_runs.py
# leaves such a request to the handler).
ETAG_LIST_MAX_LENGTH: Final = 2000
IfMatchHeader = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        description=(
            "Apply the write only if the run's current ETag is one of these (comma-separated, `*` for any; "
            "a `W/` prefix is ignored): otherwise 412 and nothing changes. Without it the write applies."
        ),
        max_length=ETAG_LIST_MAX_LENGTH,
        required=False,
    ),
]
IfNoneMatchHeader = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        description="ETag(s) the client holds: 304 with no body when the run still matches one of them",
        max_length=ETAG_LIST_MAX_LENGTH,
        required=False,
    ),
]
ETAG_HEADER = ResponseHeader(
    name="ETag",
    description="Version of the run (a hash of all its fields); send it back in `If-Match` / `If-None-Match`",
    documentation_only=True,
)
# Set by db/replica.py only when DATABASE_READ_URL is configured (README, "Read replica").
COMMIT_POSITION_HEADER = ResponseHeader(
    name="X-Commit-Position",
    description="With a read replica configured: the primary's WAL position at or past this write's commit; "
    "send it back on a run list to read your own write",
    documentation_only=True,
)
REPLAYED_HEADER: Final = "Idempotency-Replayed"
REPLAYED_RESPONSE_HEADER = ResponseHeader(
    name=REPLAYED_HEADER,
    description="`true` when this is the stored response to an earlier request with the same `Idempotency-Key`",
    documentation_only=True,
)

NOT_MODIFIED = ResponseSpec(
    data_container=None,
    description="Not modified: the run still matches `If-None-Match`; no body",
    generate_examples=False,
)
ForceDelete = Annotated[bool, QueryParameter(description="Delete even a run that is running or paused (otherwise 409)")]
LateReport = Annotated[
    bool,
    QueryParameter(
        description=(
            "A late report: append even though the run has finished (completed, failed, cancelled); "
            "without it such an append is 409"
        )
    ),
]

_ERROR_TEXT = {
    400: "Bad request: a parameter or body field is invalid (named in `detail` / `extra`)",
    401: "No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`); not in open mode",
    403: "The API key lacks the scope this operation needs (`detail` names it)",
    404: "Not found: no run (or state, checkpoint) with that id; `detail` names it",
    409: "Conflict with the stored state (`detail` says which: a lifecycle rule, a taken step_order, ...)",
    412: "Precondition failed: the run changed since the given `If-Match` ETag (the current one is in `ETag`)",
    413: "Request body too large: over `MAX_BODY_BYTES`, or a state or checkpoint over `MAX_STATE_BYTES`",
    422: (
        "The database refused the write (a constraint it carries), or an `Idempotency-Key` was reused "
        "with another body; `detail` says which"
    ),
    429: "Too many requests for this key (or client address in open mode): wait `Retry-After` seconds",
    503: "Database unavailable or too slow, or `Idempotency-Key` cannot be honoured; nothing was changed",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the given error codes, always with 400, 401, 403, 429 and 503."""
    return {
        code: ResponseSpec(
            data_container=ErrorResponse,
            description=_ERROR_TEXT[code],
            generate_examples=False,
            examples=[Example(summary=f"A {code} body", value=ERROR_EXAMPLES[code])],
        )
        for code in sorted({400, 401, 403, 429, 503, *codes})
    }


def parse_id(raw: str, name: str = "run_id") -> uuid.UUID:
    """A path or query parameter's id as a UUID, or a 400 that names the parameter."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise DomainError(f"{name} must be a UUID, got {raw!r}") from None


def stored_response(done: StoredResponse[T]) -> Response[T]:
    """The response of an idempotent write, marked when it is the stored copy of an earlier one."""
    headers = {**done.headers, REPLAYED_HEADER: "true"} if done.replayed else done.headers
    return Response(done.body, status_code=done.status_code, headers=headers)


def write_scope(request: Request[Any, Any, Any]) -> str:
    """What an idempotency key is scoped to: the method and the path (trailing slash ignored)."""
    return f"{request.method} {request.url.path.rstrip('/')}"


def run_etag(run: RunRead) -> str:
    """A strong ETag over all ten fields, so that any change (by an engine too) changes it."""
    return body_etag(msgspec.json.encode(run))


def etag_matches(header: str, tag: str) -> bool:
    """Whether an If-Match / If-None-Match list names `tag` (`*` matches any; `W/` is ignored:
    our tags hash the content, and proxies that compress often weaken them)."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == tag or (candidate and not candidate.startswith('"') and f'"{candidate}"' == tag):
            return True
    return False


def require_if_match(header: str | None, run: RunRead) -> None:
    """Raise 412 (with the current ETag) when `If-Match` is given and names another version."""
    if header is None:
        return
    tag = run_etag(run)
    if not etag_matches(header, tag):
        raise PreconditionFailed(
            f"run {run.id} has changed since the version in If-Match (now {tag}); read it again and retry",
            headers={"ETag": tag},
        )


def run_location(run_id: Any) -> str:
    return f"/api/v1/migrations/{run_id}"


def next_link(request: Request[Any, Any, Any], cursor: str) -> str:
    """`Link` to the next page: this request's query with `cursor` (and no `offset`)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in {"cursor", "offset"}]
    params.append(("cursor", cursor))
    return f'<{request.url.path}?{urlencode(params)}>; rel="next"'


def timestamp_query(description: str) -> KwargDefinition:
    """A query parameter that holds an RFC 3339 date-time (no offset = UTC), documented as such."""
    return QueryParameter(
        description=description + " (RFC 3339, e.g. `2026-11-25T06:59:52Z`; no offset = UTC; send `+` as `%2B`)",
        format="date-time",
        max_length=64,
    )


def parse_timestamp(name: str, raw: str | None) -> datetime | None:
    """The parameter as an aware datetime (naive = UTC), or a 400 that names it. Only RFC 3339
    text is read: a bare number such as `0.5` is refused, not taken as seconds since 1970."""
    if raw is None:
        return None
    try:
        value = msgspec.convert(raw, datetime)
    except msgspec.ValidationError:
        hint = "; a `+` sent unencoded arrives as a space: send it as %2B" if " " in raw else ""
        raise DomainError(
            f"{name} must be an RFC 3339 date-time such as 2026-11-25T06:59:52Z, got {raw!r}{hint}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def check_input(request: Request[Any, Any, Any]) -> None:
    """App-level `before_request`: no NUL character in a query parameter (PostgreSQL cannot hold
    one in text: a 400 here rather than the database's refusal), and a JSON body must match its
    type as sent.

    Litestar converts a decoded body to the handler's type leniently (`0` becomes `false`, `"5"`
    becomes `5`), so a body the OpenAPI document forbids would be stored. Decoding it once more
    with msgspec's strict rules (a few microseconds per kilobyte) refuses those with a 400 that
    names the field. Malformed JSON and empty optional bodies are left to Litestar.
    """
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise ValidationException(detail=f"query parameter {name} contains a NUL character, which is not accepted")
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None or request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    body = await request.body()
    if not body:
        return
    try:
        msgspec.json.decode(body, type=data.annotation, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[{"message": str(exc), "key": "data", "source": "body"}],
        ) from None
    except msgspec.DecodeError:
        return
