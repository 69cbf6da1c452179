"""One log format for every line of the process: the service's, Litestar's and uvicorn's.

structlog's stdlib integration: every standard-library logger (uvicorn, psycopg, ours, the
startup banner) ends in one root handler whose `ProcessorFormatter` renders plain text (the
default, for `make run`) or one JSON object per line (`LOG_FORMAT=json`); structlog loggers go
through the same formatter. The request id bound for a request (observability/requests.py) is
added to every line logged while it is served.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final

import structlog

# uvicorn configures these before it imports the app; they are made to propagate to the root
# handler instead. uvicorn's access line is replaced by the service's request line.
UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access")
_HANDLER_MARK: Final = "_migration_api_handler"


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def formatter(log_format: str) -> logging.Formatter:
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        final = [structlog.processors.format_exc_info, renderer]
    else:
        # Plain tracebacks: the default pretty one prints local variables, which may hold a token.
        final = [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )


def configure_logging(level: str, log_format: str) -> None:
    """Route every logger through one handler on stderr in `log_format` ("text" or "json").

    Idempotent: a second call (another app in the same process, as in tests) replaces the handler
    it added before and leaves other handlers (pytest's capture) alone.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
