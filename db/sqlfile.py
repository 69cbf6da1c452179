"""Named SQL blocks from a .sql file: `-- name: x` starts block x, which runs to the next name.

The service's statements live as SQL text (as procrastinate keeps its queries.sql); a block may
hold several statements when it takes no parameters.
"""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    parts = _NAME.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def split_statements(block: str) -> list[str]:
    """The statements of a block whose statements each end a line with ';' (no function bodies),
    so that each can be sent, and prepared, on its own."""
    return [s.strip().rstrip(";").strip() for s in re.split(r";\s*\n", block + "\n") if s.strip()]
