"""Golden files pin the SQL each printer writes for a handful of representative definitions.

Definitions are `tests/snapshots/segments/*.seg` (text form) and `*.json`
(JSON form); each printer's SQL, as of 2026-11-24 08:00 UTC, is
`<name>.<dialect>.sql` beside them. After an intended change, regenerate
with `UPDATE_GOLDEN=1 pytest tests/segments/test_golden.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.parse import parse_definition
from marketloop.segments.passes import plan
from marketloop.segments.printers import PRINTERS, printer_for
from marketloop.segments.resolve import resolve
from marketloop.testing.segments import AS_OF

SNAPSHOTS = Path(__file__).parent.parent / "snapshots" / "segments"
DEFINITIONS = sorted(p for p in SNAPSHOTS.iterdir() if p.suffix in (".seg", ".json"))


def printed(definition: Path, dialect: str) -> str:
    bound = resolve(parse_definition(definition.read_text(encoding="utf-8")), DEFAULT_CATALOG)
    return printer_for(dialect, DEFAULT_CATALOG).members(plan(bound, AS_OF)) + "\n"


def test_there_are_definitions_of_both_forms() -> None:
    assert {p.suffix for p in DEFINITIONS} == {".seg", ".json"}
    assert len(DEFINITIONS) >= 6


@pytest.mark.parametrize("dialect", sorted(PRINTERS))
@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda p: p.stem)
def test_printed_sql_matches_the_golden_file(definition: Path, dialect: str) -> None:
    golden = SNAPSHOTS / f"{definition.stem}.{dialect}.sql"
    sql = printed(definition, dialect)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(sql, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}: run with UPDATE_GOLDEN=1"
    assert sql == golden.read_text(encoding="utf-8")
