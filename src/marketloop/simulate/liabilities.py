"""Liabilities at the start of the window: mortgages, consumer, business and car loans, credit cards.

Loans amortise linearly (equal principal each month, 等额本金) on the day
of the month they started; credit cards carry a statement balance repaid
monthly. Cards issued in the last 60 days are often not yet activated
(account status `inactive`), which the card-activation scenario needs.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from marketloop.simulate.streams import Window

LOAN_TERMS = {"mortgage": 10_950, "consumer_loan": 365, "business_loan": 1_095, "car_loan": 1_095}
LOAN_CODES = {"mortgage": "LN-MORT", "consumer_loan": "LN-CONS", "business_loan": "LN-BIZ", "car_loan": "LN-CAR"}
MORTGAGE_MEDIAN_BY_TIER = np.array([0.0, 1_000_000, 600_000, 400_000, 300_000, 300_000])
MORTGAGE_SHARE_BY_TIER = np.array([0.0, 0.26, 0.26, 0.22, 0.18, 0.15])
BUSINESS_OCCUPATIONS = (4, 5)  # business_owner, self_employed (population.OCCUPATIONS)


def liabilities(rng: np.random.Generator, population: pl.DataFrame, window: Window) -> pl.DataFrame:
    loans = [_loan(rng, population, window, kind) for kind in LOAN_TERMS]
    return pl.concat([*loans, _cards(rng, population, window)], how="diagonal_relaxed")


def _eligible(rng: np.random.Generator, population: pl.DataFrame, kind: str, window: Window) -> np.ndarray:
    n = population.height
    age = population["age"].to_numpy()
    # Loans are granted to customers of at least a month, before the window opens.
    live = (population["status"].to_numpy() != "closed") & (population["open_day"].to_numpy() < window.first - 30)
    draw = rng.random(n)
    if kind == "mortgage":
        return np.asarray(
            live & (age >= 28) & (age < 58) & (draw < MORTGAGE_SHARE_BY_TIER[population["city_tier"].to_numpy()])
        )
    if kind == "consumer_loan":
        return np.asarray(live & (age >= 22) & (age < 50) & (draw < 0.06))
    if kind == "business_loan":
        return np.asarray(
            live & np.isin(population["occupation_index"].to_numpy(), BUSINESS_OCCUPATIONS) & (draw < 0.2)
        )
    return np.asarray(live & (age >= 25) & (age < 50) & (draw < 0.04))


def _principal(rng: np.random.Generator, population: pl.DataFrame, kind: str) -> np.ndarray:
    n = population.height
    if kind == "mortgage":
        median = MORTGAGE_MEDIAN_BY_TIER[population["city_tier"].to_numpy()]
        return np.asarray(np.round(median * np.exp(rng.normal(0, 0.4, n)), -3))
    if kind == "consumer_loan":
        return np.asarray(np.round(rng.uniform(10_000, 200_000, n), -3))
    if kind == "business_loan":
        return np.asarray(np.round(500_000 * np.exp(rng.normal(0, 0.7, n)), -3))
    return np.round(rng.uniform(50_000, 300_000, n), -3)


def _loan(rng: np.random.Generator, population: pl.DataFrame, window: Window, kind: str) -> pl.DataFrame:
    chosen = np.flatnonzero(_eligible(rng, population, kind, window))
    term = LOAN_TERMS[kind]
    principal = _principal(rng, population, kind)[chosen]
    opened = population["open_day"].to_numpy()[chosen]
    elapsed = np.minimum(rng.integers(1, min(term, 5_400), chosen.size), window.first - opened)
    start = window.first - elapsed
    balance = np.round(principal * (1 - elapsed / term), 2)
    return population[chosen].select(
        "index",
        "row",
        "cust_no",
        kind=pl.lit(kind),
        product_code=pl.lit(LOAN_CODES[kind]),
        balance=pl.Series(balance),
        account_no=pl.lit("LN") + pl.col("index").cast(pl.String).str.zfill(10) + pl.lit(kind[:2].upper()),
        start_day=pl.Series(start),
        maturity_day=pl.Series(start + term),
        repay_day=pl.Series(start).cast(pl.Int32).cast(pl.Date).dt.day().clip(1, 28).cast(pl.Int64),
        monthly_principal=pl.Series(np.round(principal / (term / 30.4375), 2)),
    )


def _cards(rng: np.random.Generator, population: pl.DataFrame, window: Window) -> pl.DataFrame:
    n = population.height
    age = population["age"].to_numpy()
    aum = population["aum_target"].to_numpy()
    live = population["status"].to_numpy() == "active"
    chosen = np.flatnonzero(live & (age >= 20) & (age < 65) & (rng.random(n) < 0.3 + 0.15 * (aum >= 50_000)))
    tier = np.where(aum[chosen] >= 500_000, 2, np.where(aum[chosen] >= 50_000, 1, 0))
    limit_low = np.array([10_000, 30_000, 100_000])[tier]
    limit = np.round(limit_low * rng.uniform(1, 3, chosen.size), -3)
    opened = population["open_day"].to_numpy()[chosen]
    issued = np.maximum(opened, window.last - rng.integers(0, 2_000, chosen.size))
    recent = issued > window.last - 60
    inactive = recent & (rng.random(chosen.size) < 0.5)
    return population[chosen].select(
        "index",
        "row",
        "cust_no",
        kind=pl.lit("card"),
        product_code=pl.Series(np.array(["CC-STD", "CC-GOLD", "CC-PLAT"])[tier]),
        balance=pl.Series(np.where(inactive, 0.0, np.round(limit * rng.beta(1.5, 4, chosen.size), 2))),
        account_no=pl.lit("6258") + pl.col("index").cast(pl.String).str.zfill(12),
        start_day=pl.Series(issued),
        credit_limit=pl.Series(limit),
        repay_day=pl.Series(rng.integers(1, 29, chosen.size)),
        card_status=pl.Series(np.where(inactive, "inactive", "active")),
    )
