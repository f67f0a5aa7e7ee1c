"""Each topic's figures against the small bank of conftest.py, worked out by hand (as of 2026-03-31 12:00 UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec
import polars as pl
import pytest

from marketloop.adapters.duckdb_bank import DuckDBBankStore
from marketloop.adapters.duckdb_profiles import DuckDBProfileStore
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.core import bank
from marketloop.core.events import Event
from marketloop.profiles.service import ProfileService
from marketloop.profiles.topics import DEFAULT_RULES, known_columns
from marketloop.security.crypto import FieldCipher
from marketloop.testing.clock import FrozenClock

from .conftest import AS_OF


def test_natural_attributes_masked_by_default(shared: ProfileService) -> None:
    natural = shared.profile("C001").natural
    assert natural["name"] == "张*"
    assert natural["phone"] == "138****1234"
    assert natural["age"] == 35  # born 1990-04-02: the birthday is two days after the refresh date
    assert natural["birthday_in_days"] == 2
    assert natural["tenure_months"] == 70  # opened 2020-05-15
    assert (natural["city"], natural["city_tier"], natural["gender"]) == ("上海", 1, "M")
    assert (natural["branch_id"], natural["branch_name"]) == ("B01", "上海分行")
    assert (natural["rm_id"], natural["rm_name"]) == ("R01", "王经理")  # the current assignment, not customers.rm_id


def test_reveal_shows_personal_fields_in_full(shared: ProfileService) -> None:
    natural = shared.profile("C001", reveal=True).natural
    assert (natural["name"], natural["phone"]) == ("张三", "13800001234")
    assert shared.profile("C003").natural["name"] == "欧***"
    assert shared.profile("C003").natural["phone"] is None


def test_assets_from_the_balance_intervals_in_force(shared: ProfileService) -> None:
    assets = shared.profile("C001").assets
    # now: demand 30,000 + time deposit 100,000 + wealth 60,000 + fund 20,000 (insurance starts 04-01)
    assert assets["aum"] == 210_000
    # 2026-03-01: demand 10,000 + time deposit 100,000 + wealth 50,000
    assert assets["aum_30d_ago"] == 160_000
    assert assets["aum_trend_pct"] == pytest.approx(31.25)
    assert (assets["deposit_balance"], assets["wealth_balance"]) == (130_000, 60_000)
    assert (assets["fund_balance"], assets["insurance_balance"]) == (20_000, 0)
    assert (assets["deposit_maturing_7d"], assets["deposit_maturing_30d"]) == (100_000, 100_000)  # 04-05
    assert (assets["wealth_maturing_7d"], assets["wealth_maturing_30d"]) == (0, 60_000)  # 04-25
    assert assets["next_maturity_date"] == date(2026, 4, 5)


def test_liabilities(shared: ProfileService) -> None:
    liabilities = shared.profile("C001").liabilities
    assert liabilities["loan_balance"] == 795_000  # the mortgage's interval starting on the refresh date
    assert liabilities["mortgage_balance"] == 795_000
    assert (liabilities["credit_card_balance"], liabilities["credit_card_limit"]) == (5_000, 20_000)
    assert liabilities["credit_card_utilisation"] == pytest.approx(0.25)
    assert liabilities["liability_total"] == 800_000


def test_risk(shared: ProfileService) -> None:
    risk = shared.profile("C001").risk
    assert risk == {
        "risk_tolerance": "C3",
        "risk_assessed_at": date(2024, 12, 1),
        "risk_assessment_expired": True,  # 485 days before the refresh date
        "credit_rating": "A",
        "fraud_flag": False,
    }
    assert shared.profile("C002").risk["risk_assessment_expired"] is False
    assert shared.profile("C002").risk["fraud_flag"] is True
    assert shared.profile("C003").risk["risk_assessment_expired"] is True  # never assessed


def test_transactions_in_both_windows(shared: ProfileService) -> None:
    txns = shared.profile("C001").transactions
    # 30 days: salary 15,000 in; 2,000 to another bank and 500 at a merchant out (T7 is after as_of)
    assert (txns["inflow_30d"], txns["outflow_30d"], txns["txn_count_30d"]) == (15_000, 2_500, 3)
    # 90 days adds February's salary and January's 8,000 transfer; November's is too old
    assert (txns["inflow_90d"], txns["outflow_90d"], txns["txn_count_90d"]) == (30_000, 10_500, 5)
    assert txns["salary_30d"] == 15_000
    assert txns["last_salary_at"] == datetime(2026, 3, 10, 2, tzinfo=UTC)
    assert (txns["other_bank_out_30d"], txns["other_bank_out_count_30d"]) == (2_000, 1)
    assert (txns["payroll_customer"], txns["payroll_employer"]) == (True, "上海科技公司")
    mix = txns["channel_mix_90d"]
    assert (mix["online"], mix["mobile"], mix["pos"], mix["counter"], mix["wechat"]) == (2, 2, 1, 0, 0)


def test_behaviour_from_events(shared: ProfileService) -> None:
    behaviour = shared.profile("C001").behaviour
    assert behaviour["last_seen_at"] == datetime(2026, 3, 30, 9, tzinfo=UTC)
    assert behaviour["last_event"] == "login"
    # E1-E4 are within 30 days; E4 was sent before login on the device E1 logged in from
    assert (behaviour["events_30d"], behaviour["logins_30d"], behaviour["app_logins_30d"]) == (4, 2, 2)
    assert behaviour["active_days_30d"] == 3  # 03-20, 03-29, 03-30
    assert (behaviour["wealth_page_views_30d"], behaviour["fund_page_views_30d"]) == (1, 1)
    seen = behaviour["last_seen_by_platform"]
    assert seen["app"] == datetime(2026, 3, 30, 9, tzinfo=UTC)
    assert seen["h5"] == datetime(2026, 3, 29, 10, tzinfo=UTC)
    assert seen["wechat"] is None


def test_value(shared: ProfileService) -> None:
    value = shared.profile("C001").value
    assert (value["vip_level"], value["vip_tier"]) == ("gold", "gold")
    # 130,000 x 1.5% + 60,000 x 0.5% + 20,000 x 0.8% + 795,000 x 2% + 5,000 x 5%
    assert value["contribution"] == pytest.approx(18_560)
    assert value["products_held"] == 6
    assert value["clv"] is None  # written by the CLV model (M6)
    assert shared.profile("C003").value["vip_tier"] == "private"
    assert shared.profile("C004").value["vip_tier"] == "standard"


def test_customer_without_any_activity_gets_zeros_not_nulls(shared: ProfileService) -> None:
    profile = shared.profile("C002")
    assert profile.natural["age"] == 66
    assert profile.natural["birthday_in_days"] == 0  # born on the refresh date
    assert profile.natural["rm_id"] is None
    assert profile.assets["aum"] == 0
    assert profile.assets["aum_trend_pct"] is None
    assert profile.liabilities["credit_card_utilisation"] is None
    assert profile.transactions["txn_count_90d"] == 0
    assert profile.transactions["payroll_customer"] is False
    assert profile.behaviour["events_30d"] == 0
    assert profile.behaviour["last_seen_at"] is None
    assert profile.timeline.items == []


def test_profile_has_every_section(shared: ProfileService) -> None:
    shown = msgspec.to_builtins(shared.profile("C001"))
    for key in ("natural", "assets", "liabilities", "risk", "transactions", "behaviour", "value"):
        assert shown[key]
    assert (shown["tags"], shown["scores"], shown["consent"]) == ([], {}, [])
    assert shown["as_of"] == AS_OF.isoformat().replace("+00:00", "Z")
    assert shown["computed"] == "refresh"


def test_every_stored_column_has_a_place(refreshed: ProfileService, store: DuckDBProfileStore) -> None:
    assert set(store.columns()) == known_columns(DEFAULT_RULES)


def test_refresh_is_idempotent_and_swaps_generations(refreshed: ProfileService, store: DuckDBProfileStore) -> None:
    first = msgspec.to_builtins(refreshed.profile("C001"))
    result = refreshed.refresh()
    assert (result.customers, result.timeline_events) == (4, 5)
    assert msgspec.to_builtins(refreshed.profile("C001")) == first
    state = refreshed.state()
    assert state is not None
    assert (state.customers, state.as_of) == (4, AS_OF)


def test_refresh_sees_new_balances(refreshed: ProfileService, warehouse: DuckDBWarehouse) -> None:
    rows = pl.DataFrame(
        {"holding_id": ["H11"], "cust_no": ["C004"], "product_code": ["FD-1"], "balance": [60_000.0],
         "valid_from": [date(2026, 3, 31)]}
    )  # fmt: skip
    DuckDBBankStore(warehouse.cursor, warehouse.write_lock).append(bank.HOLDINGS, rows)
    assert refreshed.profile("C004").assets["aum"] == 1_000
    refreshed.refresh()
    assert refreshed.profile("C004").assets["aum"] == 61_000
    assert refreshed.profile("C004").value["vip_tier"] == "gold"


def test_customer_added_after_refresh_is_computed_live(
    refreshed: ProfileService, warehouse: DuckDBWarehouse, cipher: FieldCipher
) -> None:
    row = pl.DataFrame(
        {"cust_no": ["C005"], "name_enc": [cipher.encrypt("王五", context="name_enc")], "name_prefix": ["王"],
         "branch_id": ["B01"], "open_date": [date(2026, 3, 30)], "birth_date": [date(2000, 1, 1)]}
    )  # fmt: skip
    DuckDBBankStore(warehouse.cursor, warehouse.write_lock).append(bank.CUSTOMERS, row)
    profile = refreshed.profile("C005")
    assert profile.computed == "live"
    assert (profile.natural["name"], profile.natural["age"], profile.assets["aum"]) == ("王*", 26, 0)


def test_timeline_newest_first_with_paging(refreshed: ProfileService) -> None:
    page = refreshed.timeline("C001", limit=2)
    assert [i.message_id for i in page.items] == ["E1", "E3"]
    assert page.has_more
    assert page.items[1].properties == {"fund_code": "FD-1"}
    rest = refreshed.timeline("C001", limit=10, offset=2)
    assert [i.message_id for i in rest.items] == ["E2", "E4", "E5"]
    assert not rest.has_more
    assert rest.items[1].platform == "app"  # Android


def test_timeline_includes_events_loaded_after_refresh(refreshed: ProfileService, warehouse: DuckDBWarehouse) -> None:
    at = AS_OF + timedelta(hours=1)
    late = Event(message_id="E7", type="track", source_id="app", received_at=at, timestamp=at, event="fund_buy",
                 anonymous_id="dev-1")  # fmt: skip
    warehouse.load(warehouse.stage("test", 0, [msgspec.json.encode(late)]), 99)
    assert [i.message_id for i in refreshed.timeline("C001", limit=2).items] == ["E7", "E1"]
    deep = refreshed.timeline("C001", limit=2, offset=DEFAULT_RULES.timeline_depth)  # past the materialised depth
    assert deep.items == []
    assert [i.message_id for i in refreshed.timeline("C001", limit=60).items][-1] == "E5"


def test_before_any_refresh_profiles_are_computed_live(service: ProfileService) -> None:
    profile = service.profile("C001")
    assert profile.computed == "live"
    assert profile.assets["aum"] == 210_000
    assert [i.message_id for i in profile.timeline.items][:2] == ["E1", "E3"]


def test_refresh_reports_progress(service: ProfileService) -> None:
    steps: list[tuple[str, int, int]] = []
    service.refresh(progress=lambda step, done, total: steps.append((step, done, total)))
    assert steps[0][1] == 0
    assert steps[-1] == ("done", steps[-1][2], steps[-1][2])
    assert [done for _, done, _ in steps] == sorted(done for _, done, _ in steps)


def test_refresh_as_of_an_earlier_day(service: ProfileService, clock: FrozenClock) -> None:
    service.refresh(datetime(2026, 3, 1, 12, tzinfo=UTC))
    assets = service.profile("C001").assets
    assert assets["aum"] == 160_000
    assert clock.now() == AS_OF


def test_a_separator_inside_a_value_falls_back_to_the_typed_columns(
    service: ProfileService, warehouse: DuckDBWarehouse
) -> None:
    warehouse.cursor().execute("UPDATE branches SET name = '上海\x1f分行' WHERE branch_id = 'B01'")
    service.refresh()
    natural = service.profile("C001").natural
    assert natural["branch_name"] == "上海\x1f分行"
    assert (natural["rm_name"], natural["birth_date"]) == ("王经理", date(1990, 4, 2))
    assert service.profile("C001").behaviour["last_seen_at"] == datetime(2026, 3, 30, 9, tzinfo=UTC)


def test_live_tail_platforms_match_the_refreshed_ones(refreshed: ProfileService, warehouse: DuckDBWarehouse) -> None:
    contexts: list[dict[str, object]] = [
        {"library": {"$lib": "MiniProgram"}},
        {"platform": "WeChat", "library": {"$lib": "js"}},
        {"os": {"name": "HarmonyOS"}},
        {"library": {"name": "analytics-android"}},
        {"channel": "counter"},
        {"library": {"name": "some-server-sdk"}},
        {},
    ]
    late = [
        msgspec.json.encode(
            Event(message_id=f"P{i}", type="track", source_id="app", received_at=AS_OF, event="tap",
                  timestamp=AS_OF + timedelta(minutes=i), user_id="C004", context=context)
        )
        for i, context in enumerate(contexts)
    ]  # fmt: skip
    warehouse.load(warehouse.stage("test", 0, late), 200)
    live = [(i.message_id, i.platform) for i in refreshed.timeline("C004", limit=10).items]
    refreshed.refresh(AS_OF + timedelta(hours=1))
    assert [(i.message_id, i.platform) for i in refreshed.timeline("C004", limit=10).items] == live
    assert [p for _, p in live] == [None, None, "branch", "app", "app", "wechat", "mini_program"]
