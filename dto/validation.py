"""Constraints shared by request bodies, checked before the database sees a value."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

# PostgreSQL refuses NUL in text and JSONB; refusing it here turns a would-be 500 into a 400.
NUL_FREE_PATTERN = r"^[^\x00]*$"
NoNulStr = Annotated[str, msgspec.Meta(pattern=NUL_FREE_PATTERN)]


def find_nul(value: Any, path: str = "") -> str | None:
    """Path of the first string (key or value) in a JSON document that contains NUL, else None."""
    if isinstance(value, str):
        return path or "(value)" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return f"{path}.{key!r}" if path else repr(key)
            found = find_nul(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_nul(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None
