"""The starter library on a simulated bank: every tag resolves, computes, and covers a sane share of customers.

Also: tags in the 360° profile and in segment conditions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.ports.tags import TagStats
from marketloop.segments.errors import DefinitionError
from marketloop.simulate import run
from marketloop.tags.starter import load_library

PLAN = run.Plan(customers=2000, days=30, seed=11, end=date(2026, 11, 20), chunk_size=1000)
AS_OF = datetime(2026, 11, 21, tzinfo=UTC)

# Yes / no tags that may select nobody in a small simulated bank, and why.
MAY_BE_EMPTY = {
    "suitability_gap": "the simulator only sells products within the customer's risk tolerance",
    "elderly_high_risk_holding": "the simulator caps customers aged 70+ at C3, so they hold no R4/R5",
    "lapsed_user": "30 simulated days: nobody was seen before the window and not in it",
    "high_frequency_transactor": "rare at 2,000 customers",
    "large_transfer_other_bank": "rare at 2,000 customers",
    "private_banking": "rare at 2,000 customers",
    "card_activated_30d": "rare at 2,000 customers",
    "fraud_flagged": "rare at 2,000 customers",
    "salary_day_spender": "rare at 2,000 customers",
    "h5_user": "rare at 2,000 customers",
}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Container, list[TagStats]]]:
    folder = tmp_path_factory.mktemp("bank")
    container = Container.open(Settings.model_validate({"data_dir": folder, "security": {"key_file": folder / "k"}}))
    try:
        target = run.Target(
            bank=container.bank,
            log=container.log,
            loader=container.loader,
            sources=container.sources,
            cipher=container.cipher,
            data_dir=container.settings.data_dir,
        )
        asyncio.run(run.simulate(target, PLAN))
        container.profiles.refresh(AS_OF)
        report = container.tags.refresh(as_of=AS_OF)
        yield container, report.stats
    finally:
        container.close()


def test_the_starter_library_has_100_tags_across_the_seven_topics() -> None:
    drafts = load_library()
    assert len(drafts) >= 100
    assert {d.category.value for d in drafts} == {
        "natural", "assets", "liabilities", "risk", "transactions", "behaviour", "value"
    }  # fmt: skip
    names = {d.name for d in drafts}
    for required in ("payroll_customer", "wealth_maturing_7d", "wealth_maturing_30d", "aum_band", "aum_dropped_30pct",
                     "credit_card_active", "credit_card_dormant", "mobile_banking_mau", "fund_auto_invest",
                     "vip_level", "large_outflow", "first_purchase", "high_frequency_user", "dormant",
                     "high_churn_risk", "wechat_habit", "salary_moves_out", "rfm_group", "aipl",
                     "lifecycle"):  # fmt: skip
        assert required in names


def test_every_starter_tag_computes_with_sane_coverage(simulated: tuple[Container, list[TagStats]]) -> None:
    container, stats = simulated
    tags = {t.name: t for t in container.tags.list()}
    computed = {s.tag: s for s in stats}
    assert set(computed) == {d.name for d in load_library()}
    problems = []
    for name, found in computed.items():
        boolean = tags[name].values == ("true",)
        if found.customers == 0 and name not in MAY_BE_EMPTY:
            problems.append(f"{name}: nobody")
        if boolean and found.customers == found.population:
            problems.append(f"{name}: everyone")
        if not boolean and found.customers and len(found.distribution) < 2:
            problems.append(f"{name}: one value only {found.distribution}")
    assert problems == []
    assert computed["rfm_group"].customers == computed["rfm_group"].population  # a group for everyone, on purpose
    assert len(computed["rfm_group"].distribution) >= 4
    assert len(computed["lifecycle"].distribution) >= 4


def test_a_second_refresh_with_no_new_data_recomputes_nothing(simulated: tuple[Container, list[TagStats]]) -> None:
    container, _ = simulated
    again = container.tags.refresh(as_of=AS_OF)
    assert again.run.refreshed == ()


def test_tags_appear_in_the_profile_and_in_segments(simulated: tuple[Container, list[TagStats]]) -> None:
    container, stats = simulated
    payroll = next(s for s in stats if s.tag == "payroll_customer")
    counted = container.segments.count("tag payroll_customer", as_of=AS_OF)
    assert counted.count == payroll.customers > 0
    with pytest.raises(DefinitionError, match="unknown tag 'payroll_customr'"):
        container.segments.count("tag payroll_customr", as_of=AS_OF)
    banded = container.segments.count('tag aum_band in ("50万-600万", "600万+")', as_of=AS_OF).count
    aum_band = next(s for s in stats if s.tag == "aum_band")
    assert banded == aum_band.distribution.get("50万-600万", 0) + aum_band.distribution.get("600万+", 0)
    (member,) = container.segments.preview("tag payroll_customer", as_of=AS_OF, limit=1)
    profile = container.profiles.profile(member)
    shown = {t.tag: t.value for t in profile.tags}
    assert shown["payroll_customer"] == "true"
    assert "aum_band" in shown
    assert "rfm_group" in shown
