"""Print the list cursor that starts N rows deep in the default order (for `make bench`)."""

from __future__ import annotations

import os
import sys

import psycopg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from repositories.run_queries import RunQuery


def main() -> None:
    depth = int(sys.argv[1])
    query = RunQuery(limit=50)
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        row = conn.execute(
            f"SELECT {query.key_columns} FROM migration_runs ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            (depth - 1,),
        ).fetchone()
    assert row is not None, f"fewer than {depth} runs"
    print(query.encode_cursor(0, row))


if __name__ == "__main__":
    main()
