"""One owner per table: only ``core/storage/files.py`` writes the files table, and it is the one
place that says what a live file is (status 'done'); everyone else calls it. Checked on the
source of the package, so a new writer elsewhere fails here."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "playlistgen"
OWNER = PACKAGE / "core" / "storage" / "files.py"
WRITES = re.compile(r"\b(INSERT\s+(OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+files\b", re.IGNORECASE)
LIVE = re.compile(r"status\s*=\s*'done'")


def _offenders(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == OWNER:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    return found


def test_only_the_files_module_writes_the_files_table() -> None:
    assert WRITES.search(OWNER.read_text(encoding="utf-8"))   # the pattern does find writes
    assert _offenders(WRITES) == []


def test_live_files_are_defined_once() -> None:
    assert LIVE.search(OWNER.read_text(encoding="utf-8"))
    assert _offenders(LIVE) == []
