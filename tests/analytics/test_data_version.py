"""The data version moves with every write analyses read: bank imports, profile and tag refreshes, not only events.

A cached result must never outlive the data it was computed from: each
test runs a query twice (the second answer is cached), writes through the
product's own path (the import service, the profile refresh, the tag
refresh) and checks that the next answer is computed again, with the new
numbers.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from marketloop.analytics.service import AnalysisResult
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.profiles.imports import ImportRequest
from marketloop.tags.definitions import TagCategory, TagDraft

FUNNEL = {
    "model": "funnel",
    "range": {"from": "2026-11-02", "to": "2026-11-09"},
    "steps": ["view_wealth", "use_yield_calculator", "buy_wealth"],
    "window": "1d",
}
LOGINS = {"model": "events", "event": "login", "range": {"from": "2026-11-02", "to": "2026-11-09"}, "interval": "week"}


@pytest.fixture
def container(data_dir: Path, tmp_path: Path) -> Iterator[Container]:
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    opened = Container.open(Settings(data_dir=copy))
    yield opened
    opened.close()


def _steps(found: AnalysisResult) -> list[int]:
    groups = found.result["groups"]
    return [step["customers"] for step in groups[0]["steps"]] if groups else []


def _twice(container: Container, doc: dict[str, Any]) -> AnalysisResult:
    first = container.analytics.query(doc)
    again = container.analytics.query(doc)
    assert (again.cached, again.data_version, again.result) == (True, first.data_version, first.result)
    return first


def _move_to_shanghai(container: Container, tmp_path: Path, cust_no: str) -> None:
    mapping = tmp_path / "cities.yaml"
    columns = "  cust_no: 客户号\n  city: 城市\n  branch_id: 机构\n  open_date: 开户日期\n"
    mapping.write_text(f"table: customers\ncolumns:\n{columns}", encoding="utf-8")
    rows = tmp_path / "cities.csv"
    rows.write_text(f"客户号,城市,机构,开户日期\n{cust_no},上海,B02,2020-01-01\n", encoding="utf-8")
    result = container.imports.run(ImportRequest(table="customers", file=rows, mapping=mapping))
    assert result.merged is not None
    assert result.merged.updated == 1


def test_a_core_banking_import_invalidates_cached_results(container: Container, tmp_path: Path) -> None:
    shanghai = FUNNEL | {"segment": {"field": "city", "op": "=", "value": "上海"}}
    before = _twice(container, shanghai)
    assert _steps(before) == [2, 2, 1]  # C1, C2
    _move_to_shanghai(container, tmp_path, "C3")
    after = container.analytics.query(shanghai)
    assert after.cached is False
    assert after.data_version != before.data_version
    assert _steps(after) == [3, 3, 1]  # and C3
    assert after.data_version.startswith(before.data_version.split(";")[0])  # no event was loaded
    unchanged = container.analytics.query(shanghai)
    assert unchanged.cached is True


def test_an_import_that_changes_nothing_keeps_the_cache(container: Container, tmp_path: Path) -> None:
    _move_to_shanghai(container, tmp_path, "C3")
    before = _twice(container, FUNNEL)
    mapping = tmp_path / "cities.yaml"
    result = container.imports.run(ImportRequest(table="customers", file=tmp_path / "cities.csv", mapping=mapping))
    assert result.merged is not None
    assert result.merged.unchanged == 1
    assert container.analytics.query(FUNNEL).cached is True
    assert container.analytics.query(FUNNEL).data_version == before.data_version


def test_a_profile_refresh_invalidates_cached_results(container: Container) -> None:
    active = FUNNEL | {"segment": {"field": "events_30d", "op": ">=", "value": 5}}
    before = _twice(container, active)
    assert _steps(before) == [3, 3, 2]  # C1, C2, C4 were active in the 30 days before the profile's day
    container.profiles.refresh(datetime(2027, 3, 1, tzinfo=UTC))  # no events in the 30 days before
    after = container.analytics.query(active)
    assert after.cached is False
    assert after.data_version != before.data_version
    assert _steps(after) == []


def test_a_tag_refresh_invalidates_cached_results(container: Container, tmp_path: Path) -> None:
    container.tags.create(
        TagDraft(name="shanghai", title="上海客户", category=TagCategory.VALUE, definition={"when": 'city = "上海"'})
    )
    container.tags.refresh()
    tagged = FUNNEL | {"segment": "tag shanghai"}
    before = _twice(container, tagged)
    assert _steps(before) == [2, 2, 1]
    events = _twice(container, LOGINS)
    _move_to_shanghai(container, tmp_path, "C3")
    assert _steps(_twice(container, tagged)) == [2, 2, 1]  # the tag has not been refreshed yet
    container.tags.refresh()
    after = container.analytics.query(tagged)
    assert after.cached is False
    assert _steps(after) == [3, 3, 1]
    again = container.analytics.query(LOGINS)
    assert (again.cached, again.result) == (False, events.result)  # same numbers, computed again
