"""Accounts and holdings: what each customer holds when the window opens, and balance intervals (SCD-2).

`opening` splits each customer's AUM over the products they hold (a
demand deposit for everyone; time deposits, cash-management and fixed-term
wealth, funds and insurance with probabilities that rise with AUM, age and
propensity) and adds liabilities (mortgages, consumer, business and car
loans, credit cards). Wealth and fund products are chosen at or below the
customer's risk tolerance: the simulator does not model mis-selling, so no
customer holds a product above their tolerance. Term products are alive at
the start of the window with a maturity uniformly spread over their term,
so about 7/term of them mature within 7 days after it.

`intervals` turns opening balances and dated changes into rows of the
`holdings` table: one row per holding and balance interval
(`valid_from` … `valid_to`, null = current). Funds and net-value wealth
products are kept at cost: their balances change with purchases and
redemptions, not with daily prices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from marketloop.core.bank import ACCOUNTS, HOLDINGS
from marketloop.simulate import products as catalogue
from marketloop.simulate.liabilities import liabilities as loans_and_cards
from marketloop.simulate.streams import Window, as_dates, choice

# Holding slots: the two digits after the customer index in a holding id.
SLOTS = {
    "demand": 0,
    "time": 1,
    "cash": 2,
    "fixed": 3,
    "fund": 4,
    "insurance": 5,
    "mortgage": 6,
    "consumer_loan": 7,
    "business_loan": 8,
    "car_loan": 9,
    "card": 10,
}
FIRST_PURCHASE_SLOT = 20
ASSET_KINDS = ("demand", "time", "cash", "fixed", "fund", "insurance")
TIME_DEPOSIT_WEIGHTS = {
    "DEP-TD-3M": 15,
    "DEP-TD-6M": 15,
    "DEP-TD-1Y": 35,
    "DEP-TD-2Y": 10,
    "DEP-TD-3Y": 20,
    "DEP-TD-5Y": 5,
}
FIXED_RISK_WEIGHTS = np.array([0.0, 0.55, 0.30, 0.12, 0.03])  # R1 … R5
FUND_RISK_WEIGHTS = np.array([0.2, 0.35, 0.25, 0.15, 0.05])


@dataclass(frozen=True, kw_only=True)
class Opening:
    accounts: pl.DataFrame  # rows of `accounts`
    holdings: pl.DataFrame  # holding_id, index, cust_no, account_no, product_code, kind, balance, start/maturity days …


def holding_id(key: pl.Expr) -> pl.Expr:
    """Holding ids from integer keys (customer index * 100 + slot): "H" + index (10 digits) + slot (2)."""
    return pl.lit("H") + key.cast(pl.String).str.zfill(12)


def debit_account(index: pl.Expr) -> pl.Expr:
    return pl.lit("6217") + index.cast(pl.String).str.zfill(12)


def suitable_product(rng: np.random.Generator, kind: str, risk_wanted: np.ndarray, tolerance: np.ndarray) -> pl.Series:
    """A product of `kind` for each customer, at the wanted risk capped by the customer's tolerance (null if none)."""
    level = np.minimum(risk_wanted, tolerance)
    options = [catalogue.codes(kind, risk=r, on_sale=False) for r in range(1, 6)]
    counts = np.array([len(o) for o in options])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    flat = pl.Series([code for codes in options for code in codes], dtype=pl.String)
    count = counts[level - 1]
    pick = offsets[level - 1] + (rng.random(level.size) * np.maximum(count, 1)).astype(np.int64)
    chosen = flat.gather(np.minimum(pick, flat.len() - 1))
    return pl.select(pl.when(pl.Series(count > 0)).then(chosen)).to_series()


def opening(rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, window: Window) -> Opening:
    assets = _assets(rng, population, truth, window)
    liabilities = loans_and_cards(rng, population, window)
    holdings = pl.concat([assets, liabilities], how="diagonal_relaxed").with_columns(
        key=pl.col("index") * 100 + pl.col("kind").replace_strict(SLOTS, return_dtype=pl.Int64)
    )
    holdings = holdings.with_columns(holding_id=holding_id(pl.col("key")))
    return Opening(accounts=_accounts(rng, population, holdings, window), holdings=holdings)


def _asset_mask(
    rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, window: Window
) -> dict[str, np.ndarray]:
    n = population.height
    aum = population["aum_target"].to_numpy()
    age = population["age"].to_numpy()
    risk = population["risk"].to_numpy()
    propensity = truth["wealth_propensity"].to_numpy()
    live = population["status"].to_numpy() != "closed"
    demand = live
    # Customers who opened within the window start with a demand deposit only.
    live = live & (population["open_day"].to_numpy() < window.first)
    return {
        "demand": demand,
        "time": live & (aum >= 5_000) & (rng.random(n) < 0.2 + 0.3 * (age > 50)),
        "cash": live & (aum >= 1_000) & (rng.random(n) < 0.15 + 0.4 * propensity),
        "fixed": live & (aum >= 30_000) & (risk >= 2) & (rng.random(n) < 0.1 + 0.6 * propensity),
        "fund": live & (aum >= 2_000) & (rng.random(n) < 0.08 + 0.25 * (risk >= 3) * (age < 55)),
        "insurance": live & (aum >= 50_000) & (rng.random(n) < 0.05 + 0.1 * (aum >= 200_000)),
    }


def _assets(rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, window: Window) -> pl.DataFrame:
    n = population.height
    mask = _asset_mask(rng, population, truth, window)
    weight_scale = {"demand": 1.0, "time": 1.5, "cash": 0.7, "fixed": 1.8, "fund": 0.8, "insurance": 0.8}
    weights = np.column_stack([mask[k] * weight_scale[k] * rng.gamma(2.0, 1.0, n) for k in ASSET_KINDS])
    shares = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    amounts = np.round(population["aum_target"].to_numpy()[:, None] * shares, 2)
    risk = population["risk"].to_numpy()
    products = {
        "demand": pl.Series(["DEP-DEMAND"] * n),
        "time": _time_deposits(rng, amounts[:, 1]),
        "cash": pl.Series(np.array(catalogue.codes("cash"))[rng.integers(0, 2, n)]),
        "fixed": suitable_product(rng, "fixed", 2 + choice(rng, FIXED_RISK_WEIGHTS[1:], n), risk),
        "fund": suitable_product(rng, "fund", 1 + choice(rng, FUND_RISK_WEIGHTS, n), risk),
        "insurance": _insurance(rng, risk),
    }
    frames = []
    for column, kind in enumerate(ASSET_KINDS):
        rows = np.flatnonzero(mask[kind])
        frames.append(
            population[rows]
            .select("index", "row", "cust_no", "open_day")
            .with_columns(
                kind=pl.lit(kind),
                product_code=products[kind].gather(rows),
                balance=pl.Series(amounts[rows, column]),
                account_no=debit_account(pl.col("index")),
            )
        )
    return _with_terms(rng, pl.concat(frames), window)


def _time_deposits(rng: np.random.Generator, amounts: np.ndarray) -> pl.Series:
    codes = list(TIME_DEPOSIT_WEIGHTS)
    regular = pl.Series(codes).gather(choice(rng, list(TIME_DEPOSIT_WEIGHTS.values()), len(amounts)))
    large = pl.Series(np.where(rng.random(len(amounts)) < 0.5, "DEP-LCD-1Y", "DEP-LCD-3Y"))
    return pl.select(pl.when(pl.Series(amounts >= 200_000)).then(large).otherwise(regular)).to_series()


def _insurance(rng: np.random.Generator, risk: np.ndarray) -> pl.Series:
    picked = pl.Series(["INS-WL", "INS-ANN", "INS-CI", "INS-ILP"]).gather(choice(rng, [45, 30, 20, 5], len(risk)))
    return pl.select(
        pl.when((picked == "INS-ILP") & pl.Series(risk < 4)).then(pl.lit("INS-WL")).otherwise(picked)
    ).to_series()


def _with_terms(rng: np.random.Generator, frame: pl.DataFrame, window: Window) -> pl.DataFrame:
    """Start and maturity days, never before the customer opened the account.

    Term products are alive at the start of the window and mature uniformly over their term (later when
    the customer is newer than the term); other holdings started some time after the account was opened.
    """
    term = frame.select(catalogue.lookup(pl.col("product_code"), "term_days")).to_series().to_numpy(allow_copy=True)
    has_term = ~np.isnan(term.astype(np.float64))
    term_days = np.where(has_term, term, 0).astype(np.int64)
    opened = frame["open_day"].to_numpy()
    maturity = window.first + 1 + (rng.random(frame.height) * np.maximum(term_days, 1)).astype(np.int64)
    term_start = np.maximum(maturity - term_days, opened)
    other_start = np.maximum(window.first - rng.integers(30, 3_000, frame.height), opened)
    return frame.with_columns(
        start_day=pl.Series(np.where(has_term, term_start, other_start)),
        maturity_day=pl.Series(np.where(has_term, term_start + term_days, -1)).replace(-1, None),
    )


def _accounts(
    rng: np.random.Generator, population: pl.DataFrame, holdings: pl.DataFrame, window: Window
) -> pl.DataFrame:
    status = population["status"].to_numpy()
    debit = population.select(
        account_no=debit_account(pl.col("index")),
        cust_no="cust_no",
        account_type=pl.lit("debit"),
        open_day="open_day",
        status=pl.Series(np.where(status == "dormant", "dormant", status)),
        branch_id="branch_id",
    )
    owned = holdings.filter(pl.col("kind").is_in(["mortgage", "consumer_loan", "business_loan", "car_loan", "card"]))
    linked = owned.join(population.select("index", "branch_id"), on="index").select(
        "account_no",
        "cust_no",
        account_type=pl.when(pl.col("kind") == "card").then(pl.lit("credit_card")).otherwise(pl.lit("loan")),
        open_day=pl.col("start_day"),
        status=pl.col("card_status").fill_null("active"),
        branch_id="branch_id",
    )
    young = (population["age"].to_numpy() >= 25) & (population["age"].to_numpy() < 60) & (status == "active")
    pension = population.filter(pl.Series(young & (rng.random(population.height) < 0.08))).select(
        account_no=pl.lit("6288") + pl.col("index").cast(pl.String).str.zfill(12),
        cust_no="cust_no",
        account_type=pl.lit("pension"),
        open_day=pl.max_horizontal("open_day", pl.lit(window.first - 700)),
        status=pl.lit("active"),
        branch_id="branch_id",
    )
    frame = pl.concat([debit, linked, pension], how="vertical_relaxed")
    return frame.with_columns(open_date=as_dates(frame["open_day"])).select(ACCOUNTS.names)


def intervals(opening: pl.DataFrame, changes: pl.DataFrame, window: Window) -> pl.DataFrame:
    """Rows of `holdings`: balance intervals from opening balances and dated changes.

    `opening`: key, cust_no, account_no, product_code, balance, start_day, maturity_day, credit_limit.
    `changes`: key, day, delta (added to the balance from `day` on) and `closes` (the holding ends the
    day before `day`). The first interval starts at the later of the window's first day and the holding's start.
    """
    base = opening.select("key", day=pl.max_horizontal("start_day", pl.lit(window.first)), delta="balance")
    steps = pl.concat(
        [base.with_columns(closes=pl.lit(False)), changes.select("key", "day", "delta", "closes")],
        how="vertical_relaxed",
    )
    merged = (
        steps.group_by("key", "day")
        .agg(pl.col("delta").sum(), pl.col("closes").any())
        .sort("key", "day")
        .with_columns(
            balance=pl.col("delta").cum_sum().over("key").round(2),
            valid_to=(pl.col("day").shift(-1).over("key") - 1),
        )
        .filter(~pl.col("closes"))
    )
    attributes = opening.select(
        "key", "cust_no", "account_no", "product_code", "start_day", "maturity_day", "credit_limit"
    )
    rows = merged.join(attributes, on="key", how="left")
    return rows.select(
        holding_id=holding_id(pl.col("key")),
        cust_no="cust_no",
        account_no="account_no",
        product_code="product_code",
        balance="balance",
        valid_from=as_dates(rows["day"]),
        valid_to=as_dates(rows["valid_to"]),
        start_date=as_dates(rows["start_day"]),
        maturity_date=as_dates(rows["maturity_day"]),
        credit_limit="credit_limit",
    ).select(HOLDINGS.names)
