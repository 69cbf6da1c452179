"""What a read says about a value an engine stored that JSON or Python cannot carry (README,
"Values written by engines"): the notes the run, step, timeline and event fields append to their
descriptions. The API itself never writes such a value."""

from __future__ import annotations

from typing import Final

STORED_TIME_NOTE: Final = "; null if stored as 'infinity', '-infinity' or outside the years 1 to 9999"
STORED_DURATION_NOTE: Final = "; null if stored as NaN, Infinity or -Infinity"
