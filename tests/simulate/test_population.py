"""The simulated population and its opening positions look like a bank's: distributions, identifiers, suitability."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from marketloop.core.bank import RiskTolerance, vip_tier
from marketloop.core.identifiers import (
    id_card_birth_date,
    id_card_gender,
    normalise_id_card,
    normalise_phone,
)
from marketloop.simulate import holdings, products, truth
from marketloop.simulate.customers import vip_levels
from marketloop.simulate.network import build_network
from marketloop.simulate.population import generate
from marketloop.simulate.streams import Window, day_date, stream

WINDOW = Window(end=date(2025, 6, 30), days=30)
CUSTOMERS = 20_000


@pytest.fixture(scope="module")
def population() -> pl.DataFrame:
    return generate(11, CUSTOMERS, WINDOW, build_network(11, CUSTOMERS))


@pytest.fixture(scope="module")
def latent(population: pl.DataFrame) -> pl.DataFrame:
    return truth.latent(11, population, WINDOW)


def test_aum_has_a_heavy_tail(population: pl.DataFrame) -> None:
    aum = np.sort(population["aum_target"].to_numpy())[::-1]
    top_share = aum[: len(aum) // 100].sum() / aum.sum()
    assert top_share > 0.3  # the top 1 % hold a large share
    assert np.median(aum) < 20_000 < aum.mean()


def test_vip_levels_follow_the_thresholds() -> None:
    aum = [0.0, 49_999.99, 50_000.0, 499_999.0, 500_000.0, 5_999_999.0, 6_000_000.0, 1e9]
    levels = pl.select(vip_levels(pl.Series(aum))).to_series().to_list()
    assert levels == [vip_tier(a) for a in aum]


def test_every_risk_tolerance_is_present_and_the_elderly_are_capped(population: pl.DataFrame) -> None:
    counts = population["risk"].value_counts().sort("risk")
    assert counts["risk"].to_list() == [int(r.value[1]) for r in RiskTolerance]
    assert counts["count"].min() > CUSTOMERS * 0.03
    assert population.filter(pl.col("age") >= 70)["risk"].max() <= 3
    # richer customers tolerate more risk on average
    rich = population.filter(pl.col("aum_target") >= 500_000)["risk"].mean()
    assert rich > population["risk"].mean()  # type: ignore[operator]


def test_id_numbers_are_valid_unique_and_match_birth_date_and_gender(population: pl.DataFrame) -> None:
    sample = population.sample(2_000, seed=1)
    for id_card, birth_day, gender in sample.select("id_card", "birth_day", "gender").iter_rows():
        assert normalise_id_card(id_card) == id_card
        assert id_card_birth_date(id_card) == day_date(birth_day)
        assert id_card_gender(id_card) == gender
    assert population["id_card"].n_unique() == CUSTOMERS


def test_phones_normalise_and_are_shared_only_by_family(population: pl.DataFrame) -> None:
    for phone in population["phone"].sample(2_000, seed=2):
        assert normalise_phone(phone) == phone
        assert normalise_phone(f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}") == phone
    shared = population["phone_shared_with"].is_not_null().sum()
    assert 0 < shared < CUSTOMERS * 0.02
    assert population["phone"].n_unique() == CUSTOMERS - shared


def test_names_and_cities_look_chinese(population: pl.DataFrame) -> None:
    common = population["family_name"].value_counts(sort=True).head(3)["family_name"].to_list()
    assert set(common) <= {"王", "李", "张", "刘"}
    assert population["name"].str.len_chars().is_between(2, 4).all()
    tiers = population.group_by("city_tier").len().sort("city_tier")
    assert tiers["city_tier"].to_list() == [1, 2, 3, 4, 5]
    assert {"北京", "上海", "成都"} <= set(population["city_name"].unique().to_list())


def test_latent_traits_are_in_range(latent: pl.DataFrame) -> None:
    assert latent["wealth_propensity"].is_between(0, 1).all()
    assert latent["best_contact_hour"].is_between(0, 23).all()
    assert set(latent["preferred_channel"].unique().to_list()) <= set(truth.CHANNELS)
    assert 0 < latent["churn_day"].is_not_null().sum() < CUSTOMERS * 0.05


def test_response_model_prefers_the_preferred_channel_at_the_best_hour(latent: pl.DataFrame) -> None:
    model = truth.ResponseModel()
    pushable = latent.filter(pl.col("app_user"))
    best = model.p_open(pushable, "push", pushable["best_contact_hour"].to_numpy())
    off_hour = model.p_open(pushable, "push", (pushable["best_contact_hour"].to_numpy() + 12) % 24)
    assert (best > off_hour).all()
    preferred = pushable["preferred_channel"].to_numpy() == "push"
    assert best[preferred].mean() > best[~preferred].mean()
    assert (model.p_open(latent.filter(~pl.col("app_user")), "push", 12) == 0).all()
    lifted = model.p_convert(latent, opened=True) - model.p_convert(latent, opened=False)
    assert lifted.mean() > 0 > lifted.min()  # most are persuadable, sleeping dogs are put off


def test_opening_holdings_respect_suitability_and_some_mature_soon(
    population: pl.DataFrame, latent: pl.DataFrame
) -> None:
    rows = population.with_columns(row=pl.int_range(pl.len(), dtype=pl.Int64))
    opening = holdings.opening(stream(11, "holdings"), rows, latent, WINDOW).holdings
    risky = opening.with_columns(level=products.lookup(pl.col("product_code"), "risk")).filter(
        pl.col("level").is_not_null()
    )
    joined = risky.join(population.select("cust_no", "risk"), on="cust_no")
    assert joined.height > 0
    assert (joined["level"] <= joined["risk"]).all()
    termed = opening.filter(pl.col("maturity_day").is_not_null() & pl.col("kind").is_in(["time", "fixed"]))
    soon = termed.filter(pl.col("maturity_day").is_between(WINDOW.last + 1, WINDOW.last + 7))
    month = termed.filter(pl.col("maturity_day").is_between(WINDOW.last + 1, WINDOW.last + 30))
    assert 0 < soon.height < month.height < termed.height
