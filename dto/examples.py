"""Examples of every body the API takes and returns, as the OpenAPI document shows them.

Keyed by the Struct's name (its OpenAPI component); docs_site.add_examples() puts each on every
request and response body of that type (a list body gets a list of one or two). The test that
walks /openapi.json decodes each example into its Struct, so they cannot drift from the code.
"""

from __future__ import annotations

import json
from typing import Any, Final

RUN_ID: Final = "3f2b0c1e-8a1d-4c55-9a53-0d2b8f1c0a11"
OTHER_RUN_ID: Final = "9c41d7a2-5b0e-4f3a-8d61-2e7f90b4c3d5"
STATE_DATA: Final = {"records_total": 5000, "records_processed": 4000, "records_failed": 3}
RUN: Final = {
    "id": RUN_ID,
    "file_path": "data/input/claim_2026_11_0012.csv",
    "record_type": "claim",
    "status": "failed",
    "created_at": "2026-11-25T22:10:04.120Z",
    "updated_at": "2026-11-25T22:11:40.002Z",
    "completed_at": "2026-11-25T22:11:40.002Z",
    "total_duration": 95.882,
    "success": False,
    "error_message": "Validation error: missing required field 'policy_number' in row 812",
}
RUNNING_RUN: Final = {
    **RUN,
    "id": OTHER_RUN_ID,
    "file_path": "data/input/employee_2026_11_0413.csv",
    "record_type": "employee",
    "status": "running",
    "completed_at": None,
    "total_duration": None,
    "success": None,
    "error_message": None,
}
STATE: Final = {
    "id": "b7e3f1a0-2c4d-4e5f-9a8b-1c2d3e4f5a6b",
    "run_id": RUN_ID,
    "step_name": "file_reading",
    "state_data": STATE_DATA,
    "created_at": "2026-11-25T22:10:21.540Z",
    "step_order": 2,
    "metadata": {"worker": "worker-12", "agent_version": "2.3.1"},
}
CHECKPOINT: Final = {
    "id": "d1c2b3a4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "run_id": RUN_ID,
    "checkpoint_name": "after_file_reading",
    "state_data": {"completed_steps": ["initializing", "file_reading"], "next_row": 4001},
    "created_at": "2026-11-25T22:10:22.010Z",
    "metadata": None,
}
DURATION: Final = {"count": 412, "p50": 31.2, "p90": 118.7, "p99": 402.5, "max": 611.03}
EXAMPLES: Final[dict[str, Any]] = {
    "RunRead": RUN,
    "RunCreate": {"file_path": "data/input/claim_2026_11_0012.csv", "record_type": "claim", "status": "pending"},
    "RunUpdate": {"status": "failed", "error_message": "Validation error: missing required field 'policy_number'"},
    "CancelRequest": {"reason": "stopped by operator: wrong input file"},
    "StateRead": STATE,
    "StateCreate": {"step_name": "file_reading", "state_data": STATE_DATA, "metadata": {"worker": "worker-12"}},
    "CheckpointRead": CHECKPOINT,
    "CheckpointCreate": {"checkpoint_name": "after_file_reading", "state_data": {"next_row": 4001}},
    "ApiInfo": {
        "name": "Migration-Accelerators API",
        "version": "1.0.0",
        "description": "Monitoring and management of data-migration runs.",
        "links": {
            "docs": "/docs",
            "redoc": "/redoc",
            "elements": "/elements",
            "openapi": "/openapi.json",
            "health": "/health",
            "migrations": "/api/v1/migrations",
            "search": "/api/v1/migrations/search",
            "stats": "/api/v1/migrations/stats",
            "dashboard": "/dashboard",
            "live": "/health/live",
            "ready": "/health/ready",
            "metrics": "/metrics",
        },
        "auth": {
            "mode": "api_keys",
            "scopes": {
                "read": "every GET and the event stream",
                "write": "create, update, append, cancel",
                "admin": "delete runs, manage API keys",
            },
            "warning": None,
        },
    },
    "Health": {
        "status": "ok",
        "database": {
            "status": "ok",
            "latency_ms": 0.84,
            "server_version": "18.6",
            "schema": "public",
            "schema_version": 10,
            "embedded": True,
        },
        "derived": {"status": "ready", "note": None, "backlog": False},
    },
    "MigrationStats": {
        "total_migrations": 500,
        "status_breakdown": {"completed": 362, "failed": 58, "running": 35, "cancelled": 21, "pending": 14},
        "recent_24h": 19,
        "record_type_breakdown": {"claim": 104, "employee": 99, "absence": 101, "disability": 97, "group_policy": 99},
        "success_rate": 0.8619,
        "average_duration": 57.31,
        "since": None,
        "until": None,
        "duration": DURATION,
        "duration_by_record_type": {"claim": {"count": 88, "p50": 29.8, "p90": 121.4, "p99": 398.0, "max": 402.9}},
        "last_24h": {"started": 19, "finished": 12, "failed": 2},
        "running_now": 35,
        "stuck": 4,
        "stuck_after_minutes": 30.0,
        "groups": None,
    },
    "StatsHistory": {
        "interval": "day",
        "since": "2026-11-24T00:00:00Z",
        "until": "2026-11-26T00:00:00Z",
        "buckets": [
            {
                "start": "2026-11-24T00:00:00Z",
                "end": "2026-11-25T00:00:00Z",
                "total": 17,
                "by_status": {"completed": 14, "failed": 3},
                "succeeded": 14,
                "finished": 17,
                "success_rate": 0.8235,
                "duration": {"count": 17, "p50": 33.0, "p90": 97.1, "p99": 140.2, "max": 140.2},
            }
        ],
    },
    "ErrorStats": {
        "since": "2026-11-25T18:00:00Z",
        "until": None,
        "total_failed": 9,
        "fingerprints": 2,
        "groups": [
            {
                "fingerprint": "Validation error: missing required field 'policy_number' in row <n>",
                "count": 6,
                "first_seen": "2026-11-25T18:40:11.003Z",
                "last_seen": "2026-11-25T22:10:04.120Z",
                "record_types": {"claim": 4, "group_policy": 2},
                "example_run_ids": [RUN_ID],
                "example_message": "Validation error: missing required field 'policy_number' in row 812",
            }
        ],
    },
    "RunTimeline": {
        "run_id": RUN_ID,
        "record_type": "claim",
        "status": "completed",
        "created_at": "2026-11-25T22:10:04.120Z",
        "completed_at": "2026-11-25T22:11:40.002Z",
        "total_duration": 95.882,
        "reference_runs": 200,
        "slowest_step": "file_reading",
        "steps": [
            {
                "step_order": 1,
                "step_name": "file_reading",
                "started_at": "2026-11-25T22:10:04.120Z",
                "ended_at": "2026-11-25T22:11:10.400Z",
                "late": False,
                "duration_seconds": 66.28,
                "median_seconds": 30.1,
                "median_sample_size": 187,
                "ratio_to_median": 2.2,
            },
            {
                "step_order": 2,
                "step_name": "cleanup",
                "started_at": "2026-11-25T22:15:00.000Z",
                "ended_at": None,
                "late": True,
                "duration_seconds": None,
                "median_seconds": None,
                "median_sample_size": 0,
                "ratio_to_median": None,
            },
        ],
    },
}
# A list body shows two items where the type has a second example, else one.
API_KEY: Final = {
    "id": "5d0c2a71-3e4b-4f8a-9c61-7a2b8e9f0d13",
    "name": "dashboard",
    "scopes": ["read"],
    "token_prefix": "mak_3Hq9",
    "created_at": "2026-12-01T09:00:00Z",
    "revoked_at": None,
}
EXAMPLES["ApiKeyRead"] = API_KEY
EXAMPLES["ApiKeyCreate"] = {"name": "dashboard", "scopes": ["read"]}
EXAMPLES["ApiKeyCreated"] = {"key": API_KEY, "token": "mak_3Hq9vXr2...(shown once: keep it safe)"}
EXAMPLES["Liveness"] = {"status": "alive"}
EXAMPLES["Readiness"] = {
    "status": "ready",
    "checks": [
        {"name": "database", "ok": True, "note": "schema version 14"},
        {"name": "database-heartbeat", "ok": True, "note": None},
        {"name": "change-log-folder", "ok": True, "note": None},
        {"name": "event-listener", "ok": True, "note": None},
        {"name": "run-cache-listener", "ok": True, "note": None},
    ],
    "detail": None,
}
READINESS_FAILED: Final = {
    "status": "not ready",
    "checks": [
        {"name": "database", "ok": False, "note": "not answering within 2 s (PoolTimeout)"},
        {"name": "change-log-folder", "ok": True, "note": None},
    ],
    "detail": "not ready: database failed",
}

EVENT: Final = {
    "id": 1842,
    "kind": "run_updated",
    "run_id": RUN_ID,
    "at": "2026-11-25T22:11:40.002Z",
    "status": "failed",
    "record_type": "claim",
    "run": RUN,
    "step": None,
    "reason": None,
}
STATE_EVENT: Final = {
    **EVENT,
    "id": 1841,
    "kind": "state_appended",
    "at": "2026-11-25T22:11:39.870Z",
    "step": {"name": "data_validation", "order": 3},
}
EXAMPLES["Event"] = EVENT
EXAMPLES["ChangesPage"] = {"events": [STATE_EVENT, EVENT], "last_id": 1842, "reset": False}
# The change stream as it arrives (text/event-stream): comment lines, then one message per event.
EVENT_STREAM: Final = "".join(
    f"id: {e['id']}\nevent: {e['kind']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n" for e in (STATE_EVENT, EVENT)
)
EVENT_STREAM_EXAMPLE: Final = ": migration-api events\nretry: 2000\n\n" + EVENT_STREAM + ": heartbeat\n\n"

LIST_EXAMPLES: Final[dict[str, list[Any]]] = {
    "RunRead": [RUN, RUNNING_RUN],
    "StateCreate": [EXAMPLES["StateCreate"], {"step_name": "data_mapping", "state_data": {"mapped": 5000}}],
}

# One error body per status, as the API sends it (errors.py).
ERROR_EXAMPLES: Final[dict[int, dict[str, Any]]] = {
    400: {
        "status_code": 400,
        "detail": "Validation failed for GET /api/v1/migrations?limit=0",
        "extra": [{"message": "Expected `int` >= 1", "key": "limit", "source": "query"}],
    },
    401: {"status_code": 401, "detail": "an API key is required: send the header `Authorization: Bearer <token>`"},
    403: {
        "status_code": 403,
        "detail": "the API key 'dashboard' lacks the 'write' scope this operation requires",
    },
    404: {"status_code": 404, "detail": f"migration run {RUN_ID} not found"},
    409: {
        "status_code": 409,
        "detail": "cannot change status from 'pending' to 'completed'; "
        "from 'pending' the allowed next statuses are: running, cancelled",
    },
    412: {
        "status_code": 412,
        "detail": f'run {RUN_ID} has changed since the version in If-Match (now "5d41402abc4b2a76"); '
        "read it again and retry",
    },
    413: {"status_code": 413, "detail": "Request Entity Too Large"},
    422: {
        "status_code": 422,
        "detail": "Idempotency-Key 'claim_12-2026-11-26' was already used for a different request body; "
        "use a new key for a new request",
    },
    429: {"status_code": 429, "detail": "Too Many Requests"},
    503: {"status_code": 503, "detail": "database unavailable: no connection could be obtained in time"},
}
