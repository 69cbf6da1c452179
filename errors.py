"""The one place where exceptions become HTTP responses.

Domain errors (raised by lifecycle.py, run_rules.py, the repositories and the controllers) name
what went wrong; each class below carries the HTTP status it maps to, and nothing outside this
module chooses a status for them.

Database refusals of a write (constraints the engines' schema carries) are the client's 409/422,
an unreachable or slow database is 503, anything else is 500; none of them carries a traceback
and every 5xx is logged with the request's method and path.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from psycopg import errors as pg
from psycopg_pool import PoolTimeout

from db.outage import DatabaseDown
from observability.metrics import count_database_error

logger = logging.getLogger("migration_api")


class DomainError(Exception):
    """An error the API reports as is: `status_code` and `detail` go to the client."""

    status_code = 400

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class NotFound(DomainError):
    status_code = 404


class RunNotFound(NotFound):
    """No run with this id: the one wording of that 404."""

    def __init__(self, run_id: object) -> None:
        super().__init__(f"migration run {run_id} not found")


class Conflict(DomainError):
    status_code = 409


class Unprocessable(DomainError):
    status_code = 422


class PreconditionFailed(DomainError):
    status_code = 412


class PayloadTooLarge(DomainError):
    status_code = 413


class ServiceUnavailable(DomainError):
    status_code = 503


class IdempotencyKeyReused(Unprocessable):
    """An `Idempotency-Key` sent again with another request: the client's error."""


class IdempotencyUnavailable(ServiceUnavailable):
    """Keys cannot be stored (the table is missing or not writable): refuse rather than write unprotected."""


def _body(status_code: int, detail: str, extra: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": status_code, "detail": detail}
    if extra:
        body["extra"] = extra
    return body


def _respond(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(_body(status_code, detail), status_code=status_code, media_type=MediaType.JSON, headers=headers)


def _diag(exc: psycopg.Error) -> str:
    diag = exc.diag
    parts = [p for p in (diag.message_primary, diag.message_detail) if p]
    where = " ".join(f"{k} {v}" for k, v in (("table", diag.table_name), ("constraint", diag.constraint_name)) if v)
    return "; ".join(parts) + (f" ({where})" if where else "")


def _log_5xx(request: Request[Any, Any, Any], detail: str, exc: BaseException) -> None:
    logger.error("%s %s -> %s", request.method, request.url.path, detail, exc_info=exc)


def domain_error_handler(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return _respond(exc.status_code, exc.detail, exc.headers)


def database_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, psycopg.Error | PoolTimeout):
        count_database_error(exc)
    status, detail = _classify(exc, request)
    if status >= 500:
        _log_5xx(request, detail, exc)
    return _respond(status, detail)


def _classify(exc: Exception, request: Request[Any, Any, Any]) -> tuple[int, str]:
    if isinstance(exc, DatabaseDown):
        return 503, str(exc)
    if isinstance(exc, PoolTimeout):
        return 503, "database unavailable: no connection could be obtained in time"
    if isinstance(exc, pg.UniqueViolation):
        return 409, f"conflict with an existing row: {_diag(exc)}"
    if isinstance(exc, pg.ForeignKeyViolation):
        return 409, f"the database refused the write (foreign key): {_diag(exc)}"
    if isinstance(exc, pg.CheckViolation) and exc.diag.table_name == "migration_runs":
        # The engines' own schema may allow fewer statuses than the API does.
        return 422, f"the database refused the write (a CHECK constraint of this database): {_diag(exc)}"
    if isinstance(exc, pg.CheckViolation | pg.NotNullViolation | pg.ExclusionViolation):
        return 422, f"the database refused the write: {_diag(exc)}"
    if isinstance(exc, pg.RaiseException | pg.TriggeredActionException):
        return 422, f"the database refused the write (trigger): {_diag(exc)}"
    if isinstance(exc, pg.QueryCanceled):
        return 503, "database query timed out (statement_timeout); try a narrower query"
    if isinstance(exc, pg.InsufficientPrivilege):
        return 503, f"the database user lacks a privilege this operation needs: {_diag(exc)}"
    if isinstance(exc, pg.ProgramLimitExceeded | pg.StatementTooComplex):
        return 413, f"the database refused a value as too large or too deeply nested: {_diag(exc)}"
    if isinstance(exc, psycopg.DataError):
        return 422, f"the database refused a value: {str(exc).strip()}"
    if isinstance(exc, psycopg.OperationalError):
        # Close the gate at once; the heartbeat opens it again within a beat if this was one
        # connection's failure rather than the database's.
        request.app.state.gate.close("a request lost its connection")
        return 503, "database unavailable: the connection failed or was lost"
    if isinstance(exc, psycopg.Error):
        state = getattr(exc, "sqlstate", None) or "client"
        return 500, f"database error (SQLSTATE {state}) during {request.method} {request.url.path}"
    return 500, f"internal error during {request.method} {request.url.path}"


def unhandled_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, HTTPException):
        # Litestar's own 4xx (validation, 404, 405, 413) keep their body, which carries `detail`.
        body = _body(exc.status_code, exc.detail, exc.extra)
        if exc.status_code >= 500:
            _log_5xx(request, exc.detail, exc)
        return Response(body, status_code=exc.status_code, media_type=MediaType.JSON, headers=exc.headers)
    return database_error_handler(request, exc)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: domain_error_handler,
    psycopg.Error: database_error_handler,
    PoolTimeout: database_error_handler,
    Exception: unhandled_error_handler,
}
