"""`marketloop serve`'s wiring: segments listed in settings or named by a segment trigger emit events."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.events import Event

from .conftest import T0, event, identify, minutes


def _changes(container: Container) -> list[tuple[str | None, str]]:
    found = []
    for partition in range(container.log.partitions):
        for value in container.log.read_values(partition, -1, 10_000):
            decoded = msgspec.json.decode(value, type=Event)
            if decoded.source_id == "$segments":
                found.append((decoded.event, str(decoded.properties["segment_name"])))
    return sorted(found)


def test_configured_and_triggered_segments_emit_through_the_container(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Container.open(Settings(data_dir=data))
    try:
        first.warehouse.cursor().execute(
            "INSERT INTO customers (cust_no, branch_id, open_date) VALUES ('C1', 'B01', DATE '2020-01-01')"
        )
        first.identity.link_customers([{"cust_no": "C1"}], source="test")
        listed = first.segments.save("常看基金", "did fund_page_view at least 2 times within 1d").segment_id
        triggered = first.segments.save("登录过", "did login within 1d").segment_id
    finally:
        first.close()

    container = Container.open(Settings.model_validate({"data_dir": data, "stream": {"realtime_segments": [listed]}}))
    try:
        container.triggers.save({"kind": "segment", "id": "logged-in", "segment_id": triggered})
        records = [
            identify(T0, user="U1", cust_no="C1"),
            event("fund_page_view", T0 + minutes(1), user="U1"),
            event("fund_page_view", T0 + minutes(2), user="U1"),
            event("login", T0 + minutes(3), user="U1"),
        ]
        asyncio.run(container.log.append(0, [msgspec.json.encode(r) for r in records]))
        container.processor.drain()
        assert _changes(container) == [("segment_entered", "常看基金"), ("segment_entered", "登录过")]
        fires = container.triggers.fires("logged-in")
        assert [f.reason for f in fires] == ["segment.entered"]
    finally:
        container.close()
