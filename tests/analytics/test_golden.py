"""Golden files pin the SQL of each dialect for a spec of every model (tests/snapshots/analytics/*.json).

After an intended change, regenerate with
`UPDATE_GOLDEN=1 pytest tests/analytics/test_golden.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from marketloop.analytics.dialects import DIALECTS
from marketloop.analytics.parse import parse_spec
from marketloop.analytics.sql import compile_spec
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.testing.analytics import WEEK_END

SNAPSHOTS = Path(__file__).parent.parent / "snapshots" / "analytics"
SPECS = sorted(SNAPSHOTS.glob("*.json"))


def printed(spec: Path, dialect: str) -> str:
    parsed = parse_spec(json.loads(spec.read_text(encoding="utf-8")), as_of=WEEK_END)
    return compile_spec(parsed, dialect, DEFAULT_CATALOG).sql() + "\n"


def test_every_model_has_a_golden_spec() -> None:
    models = {json.loads(p.read_text(encoding="utf-8"))["model"] for p in SPECS}
    assert models == {"events", "funnel", "retention", "paths", "attribution", "frequency", "distribution"}


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_printed_sql_matches_the_golden_file(spec: Path, dialect: str) -> None:
    golden = SNAPSHOTS / f"{spec.stem}.{dialect}.sql"
    sql = printed(spec, dialect)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(sql, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}: run with UPDATE_GOLDEN=1"
    assert sql == golden.read_text(encoding="utf-8")
