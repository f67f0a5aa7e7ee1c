"""Refresh on hand-made data: values, incremental runs, history as of a date, stratification, imports, real time."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from marketloop.core.errors import MarketloopError
from marketloop.ports.tags import Snapshots, TagCategory, TagKind
from marketloop.tags.definitions import TagDraft
from marketloop.tags.starter import load_library

if TYPE_CHECKING:
    from conftest import Bank

STRATIFICATION = ("rfm_r", "rfm_f", "rfm_m", "rfm_group", "lifecycle")


def draft(name: str, definition: dict[str, object] | None, **fields: object) -> TagDraft:
    return TagDraft(name=name, title=name, category=TagCategory.VALUE, definition=definition, **fields)  # type: ignore[arg-type]


def values(bank: Bank, tag: str) -> dict[str, str]:
    rows = bank.con.execute("SELECT cust_no, value FROM customer_tags WHERE tag = ?", [tag]).fetchall()
    return dict(rows)


def history_rows(bank: Bank, tag: str) -> int:
    row = bank.con.execute("SELECT count(*) FROM customer_tag_history WHERE tag = ?", [tag]).fetchone()
    return int(row[0]) if row else 0


def test_rule_tags_compute_set_based_values_and_statistics(bank: Bank) -> None:
    bank.service.create(draft("shanghai", {"when": 'city = "上海"'}))
    bank.service.create(
        draft(
            "aum_band",
            {"cases": [{"when": "aum >= 500000", "value": "high"}, {"when": "aum >= 1000", "value": "mid"}]},
        )
    )
    bank.service.create(draft("spender", {"when": "transacted(sum_at_least = 50000, within = 30d)"}))
    report = bank.service.refresh()
    assert values(bank, "shanghai") == {"A": "true", "C": "true"}
    assert values(bank, "aum_band") == {"A": "high", "C": "mid", "D": "mid"}  # first matching case; B, E: none
    assert values(bank, "spender") == {"A": "true", "C": "true"}
    stats = {s.tag: s for s in report.stats}
    assert (stats["aum_band"].customers, stats["aum_band"].population) == (3, 5)
    assert stats["aum_band"].distribution == {"mid": 2, "high": 1}
    assert bank.service.coverage("aum_band")[0].coverage == pytest.approx(0.6)


def test_refresh_is_incremental_by_definition_data_and_day(bank: Bank) -> None:
    bank.service.create(draft("shanghai", {"when": 'city = "上海"'}))
    bank.service.create(draft("spender", {"when": "transacted(sum_at_least = 50000, within = 30d)"}))
    bank.service.create(draft("spender_in_shanghai", {"when": "tag spender and tag shanghai"}))
    first = bank.service.refresh()
    assert sorted(first.run.refreshed) == ["shanghai", "spender", "spender_in_shanghai"]

    again = bank.service.refresh()
    assert again.run.refreshed == ()
    assert len(again.run.skipped) == 3

    bank.con.execute("INSERT INTO transactions VALUES ('T999', 'D', ?, 90000, 'out', 'mobile', 'merchant', 'x')",
                     [bank.clock.now() - timedelta(hours=1)])  # fmt: skip
    after_data = bank.service.refresh()
    # spender's values changed, so the tag reading it is recomputed in the same run, after it
    assert after_data.run.refreshed == ("spender", "spender_in_shanghai")
    assert values(bank, "spender") == {"A": "true", "C": "true", "D": "true"}
    assert values(bank, "spender_in_shanghai") == {"A": "true", "C": "true"}
    bank.service.create(draft("shanghai", {"when": 'city in ("上海", "杭州")'}))
    after_definition = bank.service.refresh()
    assert after_definition.run.refreshed == ("shanghai", "spender_in_shanghai")
    assert values(bank, "spender_in_shanghai") == {"A": "true", "C": "true", "D": "true"}

    bank.clock.advance(timedelta(days=1))
    next_day = bank.service.refresh()
    assert next_day.run.refreshed == ("spender",)  # windows move with the day; city tests do not
    assert bank.service.refresh(only=["shanghai"]).run.refreshed == ("shanghai",)
    assert len(bank.service.refresh(full=True).run.refreshed) == 3


def test_a_changed_dependency_refreshes_its_dependents(bank: Bank) -> None:
    bank.service.create(draft("spender", {"when": "transacted(sum_at_least = 50000, within = 30d)"}))
    bank.service.create(draft("spender_vip", {"when": 'tag spender and vip_level = "gold"'}))
    bank.service.refresh()
    bank.con.execute("INSERT INTO transactions VALUES ('T999', 'D', ?, 90000, 'out', 'mobile', 'merchant', 'x')",
                     [bank.clock.now() - timedelta(hours=1)])  # fmt: skip
    bank.con.execute("UPDATE customers SET vip_level = 'gold' WHERE cust_no = 'D'")
    report = bank.service.refresh()
    assert report.run.refreshed == ("spender", "spender_vip")
    assert values(bank, "spender_vip") == {"A": "true", "C": "true", "D": "true"}


def test_history_keeps_changes_only_and_answers_as_of_a_date(bank: Bank) -> None:
    bank.service.create(draft("rich", {"when": "aum >= 100000"}))
    day_one = bank.clock.now()
    bank.service.refresh()
    assert history_rows(bank, "rich") == 2  # A and D
    bank.clock.advance(timedelta(days=1))
    bank.con.execute("UPDATE customer_profile SET aum = 10 WHERE cust_no = 'D'")
    bank.con.execute("UPDATE customer_profile SET aum = 200000 WHERE cust_no = 'C'")
    report = bank.service.refresh()
    assert report.stats[0].changed == 2
    assert history_rows(bank, "rich") == 3  # C added; D's row closed, not copied; A untouched
    day_two = bank.clock.now()
    assert bank.service.tag_as_of("rich", day_one) == {"A": "true", "D": "true"}
    assert bank.service.tag_as_of("rich", day_two) == {"A": "true", "C": "true"}
    assert bank.service.tag_as_of("rich", day_one - timedelta(seconds=1)) == {}
    (now_a,) = bank.service.values_of("A")
    assert now_a.since == day_one  # unchanged values keep their since
    assert [v.tag for v in bank.service.values_of("D", as_of=day_one)] == ["rich"]
    assert bank.service.values_of("D") == []


def test_rfm_aipl_and_lifecycle_from_the_starter_library(bank: Bank) -> None:
    bank.service.install_library([d for d in load_library() if d.name in STRATIFICATION])
    report = bank.service.refresh()
    assert values(bank, "rfm_group") == {
        "A": "重要价值",
        "B": "一般挽留",
        "C": "重要发展",
        "D": "重要保持",
        "E": "一般挽留",
    }
    assert values(bank, "rfm_r") == {"A": "5", "B": "1", "C": "5", "D": "2", "E": "1"}
    assert values(bank, "lifecycle") == {"A": "growing", "B": "dormant", "C": "declining", "D": "mature", "E": "new"}
    assert report.snapshots["rfm_group"] == 5
    assert "shanghai" not in report.snapshots


def test_aipl_stages_follow_behaviour_and_holdings(bank: Bank) -> None:
    (aipl,) = [d for d in load_library() if d.name == "aipl"]
    bank.service.install_library([aipl])
    bank.service.refresh()
    # A holds wealth and 4 products: loyalty; C viewed a wealth product: interest; D seen 40 days ago: none
    assert values(bank, "aipl") == {"A": "loyalty", "B": "unaware", "C": "interest", "D": "unaware", "E": "unaware"}


def test_daily_snapshots_are_queryable_as_of_a_date(bank: Bank) -> None:
    bank.service.create(draft("band", {"cases": [{"when": "aum >= 100000", "value": "high"}], "else": "low"},
                              snapshots=Snapshots.DAILY))  # fmt: skip
    day_one = bank.clock.now().date()
    bank.service.refresh()
    bank.clock.advance(timedelta(days=2))
    bank.con.execute("UPDATE customer_profile SET aum = 500000")
    bank.service.refresh()
    assert bank.service.strata("band", day_one) == (day_one, {"high": 2, "low": 3})
    assert bank.service.strata("band", day_one + timedelta(days=1)) == (day_one, {"high": 2, "low": 3})
    assert bank.service.strata("band", day_one + timedelta(days=2)) == (day_one + timedelta(days=2), {"high": 5})
    assert bank.service.strata("band", day_one - timedelta(days=1)) == (None, {})


def test_static_lists_and_real_time_tags(bank: Bank) -> None:
    bank.service.create(draft("campaign_list", None, kind=TagKind.STATIC, values=("a", "b")))
    result = bank.service.import_values("campaign_list", {"A": "a", "B": "b", "ZZZ": "a"})
    assert result.rejected == ["ZZZ"]
    assert result.change.customers == 2
    assert values(bank, "campaign_list") == {"A": "a", "B": "b"}
    with pytest.raises(MarketloopError, match="does not take the value"):
        bank.service.import_values("campaign_list", {"A": "c"})
    bank.service.import_values("campaign_list", {"B": "a"})
    assert values(bank, "campaign_list") == {"B": "a"}
    bank.service.create(draft("in_app_now", None, kind=TagKind.REALTIME))
    assert bank.service.set_realtime("in_app_now", "C", "true")
    assert not bank.service.set_realtime("in_app_now", "C", "true")
    assert values(bank, "in_app_now") == {"C": "true"}
    assert bank.service.set_realtime("in_app_now", "C", None)
    assert values(bank, "in_app_now") == {}
    assert history_rows(bank, "in_app_now") == 1
    with pytest.raises(MarketloopError, match="not a rule tag"):
        bank.service.refresh(only=["campaign_list"])
    with pytest.raises(MarketloopError, match="only real-time tags"):
        bank.service.set_realtime("campaign_list", "A", "x")
    retired = bank.service.retire("campaign_list")
    assert retired.retired
    assert values(bank, "campaign_list") == {}
