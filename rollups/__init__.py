"""Statistics roll-ups: the maths and SQL expressions the reads share with the roll-up tables.

The roll-up tables are created by db/migrations/0009_change_log.sql and kept by the change-log
folder (changelog/) with the statements of rollups/queries.sql: `fold` applies one batch of the
engines' logged changes, `rebuild` recomputes everything from the base tables. The expressions
below are the same as those statements' (and as the SQL functions migration_api_duration_bin and
migration_api_error_fingerprint), so that the base-table fallback of repositories/stats.py and
the roll-ups bin and fingerprint identically: the tests check that against a recomputation in
Python (tests/stats_bruteforce.py).
"""

from __future__ import annotations

from typing import Final

# Duration histogram: bin k holds durations in [1.04**k, 1.04**(k+1)) seconds, so the bin's
# geometric middle 1.04**(k+0.5) is within 2 % of any duration in it. Durations are clamped to
# [0.001 s, 1e9 s] first (NaN counts as 1e9), so that any float an engine writes has a bin.
HIST_BASE: Final = 1.04
HIST_LN_BASE: Final = 0.039220713153281296  # ln(1.04)
HIST_MIN_SECONDS: Final = 0.001
HIST_MAX_SECONDS: Final = 1e9


def bin_sql(column: str) -> str:
    """The bin of `column` as SQL, identical to `migration_api_duration_bin` (usable without it)."""
    clamped = f"least(greatest({column}, {HIST_MIN_SECONDS}::float8), {HIST_MAX_SECONDS}::float8)"
    return f"floor(ln({clamped}) / {HIST_LN_BASE})::int"


def hour_sql(column: str) -> str:
    """The UTC hour `column` falls in (independent of the session's TimeZone)."""
    return f"(date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def day_sql(column: str) -> str:
    """The UTC day `column` falls in (independent of the session's TimeZone)."""
    return f"(date_trunc('day', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


# (pattern, replacement), applied in this order by `migration_api_error_fingerprint`. The patterns
# mean the same in PostgreSQL's regular expressions and in Python's `re` (the tests use both).
FINGERPRINT_STEPS: Final = (
    # UUIDs
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<id>"),
    # file paths: names joined by / or \\, with an optional drive letter
    (r"([A-Za-z]:)?([A-Za-z0-9_.~-]*[/\\])+[A-Za-z0-9_.~-]+", "<path>"),
    # quoted values with a digit in them (quoted field names stay: they tell errors apart)
    (r"'[^']*[0-9][^']*'", "<str>"),
    (r'"[^"]*[0-9][^"]*"', "<str>"),
    # hex ids: 8+ hex characters with a digit and a letter, not part of a longer word
    (r"(?<![0-9A-Za-z_])(0x)?(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}(?![0-9A-Za-z_])", "<hex>"),
    # numbers
    (r"[0-9]+([.,][0-9]+)*", "<n>"),
    (r"\s+", " "),
)
FINGERPRINT_MAX_CHARS: Final = 300


def fingerprint_sql(column: str) -> str:
    """The normalised error text of `column`, identical to `migration_api_error_fingerprint`:
    the FINGERPRINT_STEPS replacements, trimmed, cut at 300 characters; NULL becomes ''."""
    expr = column
    for pattern, replacement in FINGERPRINT_STEPS:
        expr = f"regexp_replace({expr}, {_literal(pattern)}, {_literal(replacement)}, 'g')"
    return f"coalesce(left(btrim({expr}), {FINGERPRINT_MAX_CHARS}), '')"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
