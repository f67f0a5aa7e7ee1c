"""DuckDBWarehouse: loads are atomic with the consumer offset, deduplicated, and quarantine what they must."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.core.events import Event
from marketloop.ports.warehouse import Attribution, LoadResult
from marketloop.testing.clock import FrozenClock

CONSUMER = "loader"


def _record(
    clock: FrozenClock,
    message_id: str,
    *,
    event: str = "fund_page_view",
    quarantined: bool = False,
    violations: Sequence[str] = (),
    **fields: Any,
) -> bytes:
    now = clock.now()
    return msgspec.json.encode(
        Event(
            message_id=message_id,
            type="track",
            source_id="src-app",
            received_at=now,
            timestamp=now,
            event=event,
            quarantined=quarantined,
            violations=list(violations),
            **({"user_id": "C0001"} | fields),
        )
    )


def _rows(warehouse: DuckDBWarehouse, sql: str) -> list[tuple[Any, ...]]:
    return warehouse.cursor().execute(sql).fetchall()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "events.duckdb"


@pytest.fixture
def warehouses(path: Path) -> Iterator[list[DuckDBWarehouse]]:
    """Every warehouse a test opens; the last one is closed at the end even when the test fails."""
    opened: list[DuckDBWarehouse] = [DuckDBWarehouse(path)]
    yield opened
    opened[-1].close()


def _reopen(warehouses: list[DuckDBWarehouse], path: Path, **options: int) -> DuckDBWarehouse:
    warehouses[-1].close()
    warehouses.append(DuckDBWarehouse(path, **options))
    return warehouses[-1]


@pytest.fixture
def warehouse(warehouses: list[DuckDBWarehouse]) -> DuckDBWarehouse:
    return warehouses[0]


def test_load_inserts_rows_and_commits_the_offset(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    assert warehouse.committed_offset(CONSUMER, 0) == -1
    records = [
        _record(clock, "m1", properties={"fund_code": "000001"}),
        _record(clock, "m2", event="fund_buy"),
        _record(clock, "m3"),
    ]
    result = warehouse.load(warehouse.stage(CONSUMER, 0, records), 2)
    assert result == LoadResult(inserted=3, duplicates=0, quarantined=0, violations=0)
    assert warehouse.committed_offset(CONSUMER, 0) == 2
    assert warehouse.count_events() == 3
    assert warehouse.count_events("fund_buy") == 1
    # epoch(): fetching TIMESTAMPTZ values into Python would need pytz.
    (row,) = _rows(
        warehouse,
        "SELECT source, user_id, epoch(timestamp), properties->>'fund_code' FROM events WHERE message_id = 'm1'",
    )
    assert row == ("src-app", "C0001", clock.now().timestamp(), "000001")


def test_offsets_are_per_consumer_and_partition(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    warehouse.load(warehouse.stage(CONSUMER, 1, [_record(clock, "a")]), 41)
    warehouse.load(warehouse.stage("other", 0, [_record(clock, "b")]), 7)
    assert warehouse.committed_offset(CONSUMER, 0) == -1
    assert warehouse.committed_offset(CONSUMER, 1) == 41
    assert warehouse.committed_offset("other", 0) == 7
    warehouse.load(warehouse.stage(CONSUMER, 1, [_record(clock, "c")]), 42)
    assert warehouse.committed_offset(CONSUMER, 1) == 42


# -- atomicity -----------------------------------------------------------------


def test_failed_load_commits_neither_rows_nor_offset(
    warehouses: list[DuckDBWarehouse], path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = warehouses[0]
    warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "m0")]), 0)
    real_load_staged = DuckDBWarehouse._load_staged

    def crash_after_inserting(self: DuckDBWarehouse, *args: Any) -> LoadResult:
        real_load_staged(self, *args)  # the rows are in, the offset is not yet
        raise OSError("disk full")

    monkeypatch.setattr(DuckDBWarehouse, "_load_staged", crash_after_inserting)
    with pytest.raises(OSError, match="disk full"):
        warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "m1", violations=["v"]), _record(clock, "m2")]), 2)
    assert warehouse.committed_offset(CONSUMER, 0) == 0
    assert warehouse.count_events() == 1
    assert _rows(warehouse, "SELECT count(*) FROM tracking_violations") == [(0,)]

    monkeypatch.undo()
    warehouse = _reopen(warehouses, path)
    assert warehouse.committed_offset(CONSUMER, 0) == 0
    assert warehouse.count_events() == 1
    # The retry of the same batch is not mistaken for duplicates of rows that were rolled back.
    assert warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "m1"), _record(clock, "m2")]), 2).inserted == 2


def test_unreadable_record_fails_the_whole_load(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="not an event"):
        warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "m1"), b"{not json"]), 1)
    assert warehouse.committed_offset(CONSUMER, 0) == -1
    assert warehouse.count_events() == 0
    assert warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "m1"), _record(clock, "m2")]), 1).inserted == 2


def test_loads_survive_reopening(warehouses: list[DuckDBWarehouse], path: Path, clock: FrozenClock) -> None:
    warehouses[0].load(warehouses[0].stage(CONSUMER, 0, [_record(clock, "m1"), _record(clock, "m2")]), 1)
    warehouse = _reopen(warehouses, path)
    assert warehouse.committed_offset(CONSUMER, 0) == 1
    assert warehouse.count_events() == 2


# -- duplicates ----------------------------------------------------------------


def test_duplicates_within_a_batch_are_dropped(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    first = _record(clock, "a", properties={"try": 1})
    clock.advance(timedelta(seconds=5))
    retry = _record(clock, "a", properties={"try": 2})
    result = warehouse.load(warehouse.stage(CONSUMER, 0, [first, _record(clock, "b"), retry]), 2)
    assert result == LoadResult(inserted=2, duplicates=1, quarantined=0, violations=0)
    assert _rows(warehouse, "SELECT properties->>'try' FROM events WHERE message_id = 'a'") == [("1",)], (
        "the first copy wins"
    )


def test_duplicates_across_batches_are_dropped(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "a"), _record(clock, "b")]), 1)
    result = warehouse.load(
        warehouse.stage(CONSUMER, 0, [_record(clock, "b"), _record(clock, "c"), _record(clock, "c")]), 4
    )
    assert result == LoadResult(inserted=1, duplicates=2, quarantined=0, violations=0)
    assert warehouse.count_events() == 3
    assert warehouse.committed_offset(CONSUMER, 0) == 4, "a batch of duplicates still moves the offset"


def test_duplicates_are_dropped_after_reopening(
    warehouses: list[DuckDBWarehouse], path: Path, clock: FrozenClock
) -> None:
    warehouses[0].load(warehouses[0].stage(CONSUMER, 0, [_record(clock, "a"), _record(clock, "b")]), 1)
    warehouse = _reopen(warehouses, path)
    result = warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "a"), _record(clock, "d")]), 3)
    assert result == LoadResult(inserted=1, duplicates=1, quarantined=0, violations=0)


def test_dedupe_covers_the_window_of_recent_rows(
    warehouses: list[DuckDBWarehouse], path: Path, clock: FrozenClock
) -> None:
    warehouse = _reopen(warehouses, path, dedupe_window_rows=2)
    warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "a"), _record(clock, "b"), _record(clock, "c")]), 2)
    assert warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "c")]), 3).duplicates == 1
    # "a" is older than the last 2 loaded rows: outside the window, a late retry is loaded again.
    assert warehouse.load(warehouse.stage(CONSUMER, 0, [_record(clock, "a")]), 4).inserted == 1


# -- quarantine and violations -------------------------------------------------


def test_quarantined_events_go_to_the_quarantine(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    records = [
        _record(clock, "q1", event="unplanned", quarantined=True, violations=["event 'unplanned' is not in the plan"]),
        _record(clock, "ok", violations=["property 'x' is not in the plan"]),
    ]
    result = warehouse.load(warehouse.stage(CONSUMER, 0, records), 1)
    assert result == LoadResult(inserted=1, duplicates=0, quarantined=1, violations=2)
    assert warehouse.count_events() == 1
    assert warehouse.count_events("unplanned") == 0
    (row,) = _rows(warehouse, "SELECT message_id, source, event, released_at, record->>'message_id' FROM quarantine")
    assert row == ("q1", "src-app", "unplanned", None, "q1")
    assert _rows(warehouse, "SELECT message_id, quarantined FROM tracking_violations ORDER BY message_id") == [
        ("ok", False),
        ("q1", True),
    ]


def test_retried_quarantined_event_is_quarantined_once(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    quarantined = _record(clock, "q1", quarantined=True, violations=["bad"])
    warehouse.load(warehouse.stage(CONSUMER, 0, [quarantined]), 0)
    result = warehouse.load(warehouse.stage(CONSUMER, 0, [quarantined, quarantined]), 2)
    assert result == LoadResult(inserted=0, duplicates=2, quarantined=0, violations=0)
    assert _rows(warehouse, "SELECT count(*) FROM quarantine") == [(1,)]
    assert _rows(warehouse, "SELECT count(*) FROM tracking_violations") == [(1,)]


def test_violations_of_a_dropped_duplicate_are_not_stored_again(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    record = _record(clock, "a", violations=["property 'x' is not in the plan", "property 'y' has the wrong type"])
    assert warehouse.load(warehouse.stage(CONSUMER, 0, [record]), 0).violations == 2
    again = warehouse.load(warehouse.stage(CONSUMER, 0, [record]), 1)
    assert again == LoadResult(inserted=0, duplicates=1, quarantined=0, violations=0)
    assert _rows(warehouse, "SELECT count(*) FROM tracking_violations") == [(2,)]


def test_stage_groups_records_by_identity_and_the_group_attribution_reaches_every_row(
    warehouse: DuckDBWarehouse, clock: FrozenClock
) -> None:
    records = [
        _record(clock, "a", user_id="u1", context={"device": {"id": "d1", "model": "x"}}),
        _record(clock, "b", user_id="u2"),
        _record(clock, "c", user_id="u1", context={"device": {"id": "d1", "model": "y"}}),  # same ids as a
        _record(clock, "d", user_id="u1", context={"device": {"id": "d2"}}),
        _record(clock, "e", user_id="u3", quarantined=True),
        _record(clock, "f", user_id="u2", properties={"$device_id": "d9"}),
    ]
    paths = [("user_id",), ("context", "device", "id"), ("properties", "$device_id")]
    staged = warehouse.stage(CONSUMER, 0, records, key_paths=paths)
    assert list(staged.firsts) == [0, 1, 3, 5], "a quarantined record is in no group"
    attribution = Attribution(one_ids=["o1", "o2", "o3", "o4"], id_types=["user_id"] * 4, id_values=list("1234"))
    assert warehouse.load(staged, 5, attribution=attribution).inserted == 5
    rows = _rows(warehouse, "SELECT message_id, one_id FROM events ORDER BY message_id")
    assert rows == [("a", "o1"), ("b", "o2"), ("c", "o1"), ("d", "o3"), ("f", "o4")]


def test_stage_refuses_a_key_path_outside_the_record(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="not a field"):
        warehouse.stage(CONSUMER, 0, [_record(clock, "a")], key_paths=[("nope",)])
    with pytest.raises(ValueError, match="not an object"):
        warehouse.stage(CONSUMER, 0, [_record(clock, "a")], key_paths=[("user_id", "x")])


def test_only_the_batch_staged_last_can_be_loaded(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    first = warehouse.stage(CONSUMER, 0, [_record(clock, "a")])
    warehouse.stage(CONSUMER, 0, [_record(clock, "b")])
    with pytest.raises(ValueError, match="staged last"):
        warehouse.load(first, 0)
    assert warehouse.committed_offset(CONSUMER, 0) == -1


def test_an_attribution_must_have_one_entry_per_group(warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    staged = warehouse.stage(CONSUMER, 0, [_record(clock, "a"), _record(clock, "b")], key_paths=[("user_id",)])
    with pytest.raises(ValueError, match="1 identity groups"):
        warehouse.load(
            staged, 1, attribution=Attribution(one_ids=["o1", "o2"], id_types=[None] * 2, id_values=[None] * 2)
        )
