"""The README runs as written: its ```bash blocks are run in order, as one shell session, against a
live server on freshly seeded tables (what `make seed` adds), and every `curl` must answer the status
its `# -> NNN` comment promises. ```sh blocks (`make run`, ...) are shown, not run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from config import PROJECT_DIR, Settings
from db.seed import seed

README = PROJECT_DIR / "README.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXPECTED = re.compile(r"#\s*->\s*(\d{3})\b")
DOCUMENTED_BASE = "http://localhost:8000"
# Every curl records the status of its last response (the README never passes -D itself).
PRELUDE = r"""
set -u
curl() {
  local headers rc
  headers=$(mktemp)
  command curl -D "$headers" "$@"
  rc=$?
  awk '/^HTTP\//{status=$2} END{print (status == "" ? "000" : status)}' "$headers" >> "$STATUSES"
  rm -f "$headers"
  return $rc
}
"""


def readme_blocks(text: str) -> list[str]:
    return [match.group(1) for match in BLOCK.finditer(text)]


def expected_statuses(block: str) -> list[str]:
    return [status for line in block.splitlines() for status in EXPECTED.findall(line)]


def test_the_readme_has_runnable_blocks_and_each_curl_says_its_status() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    for block in blocks:
        commands = len(re.findall(r"(?<![\w-])curl\s", block))
        assert commands == len(expected_statuses(block)), block


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's examples use curl")
def test_the_readme_runs_as_written(
    live_server: str, settings: Settings, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    assert settings.database_url is not None
    seed(settings.database_url, settings.db_schema, 300)
    statuses = tmp_path / "statuses"
    script = PRELUDE
    for number, block in enumerate(readme_blocks(README.read_text(encoding="utf-8"))):
        script += f'\necho "block {number}" >> "$STATUSES"\n' + block.replace(DOCUMENTED_BASE, live_server)
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "STATUSES": str(statuses)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got: dict[int, list[str]] = {}
    for line in statuses.read_text().splitlines():
        if line.startswith("block "):
            current = got.setdefault(int(line.split()[1]), [])
        else:
            current.append(line)
    for number, block in enumerate(readme_blocks(README.read_text(encoding="utf-8"))):
        assert got.get(number) == expected_statuses(block), (block, done.stdout[-3000:], done.stderr[-3000:])
