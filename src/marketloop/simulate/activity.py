"""What customers decide to do in the window: buy, reinvest at maturity, leave, activate cards, transfer.

These decisions come from the ground truth (`truth.latent`) and are shared
by the transactions (money moves), the holdings (new and closed
positions) and the behaviour events (the app sessions in which a customer
did it), so the three tell one consistent story:

* organic purchases: a Poisson process whose 7-day probability is the
  customer's `p_convert_untouched`; products at or below their risk
  tolerance; through the app for app users, else at the counter;
* maturities: term deposits and fixed-term wealth that mature in the window
  pay principal and interest into the demand deposit; with probability
  `reinvest_probability` the customer buys again within three days;
* churn: on `churn_day` cash-management and fund positions are redeemed
  (the transfer of most of the money to another bank follows in
  `transactions`); no purchase after it;
* card activations for cards not yet activated (40 % within the window);
* transfers to and from other banks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from marketloop.simulate import products as catalogue
from marketloop.simulate.holdings import FIRST_PURCHASE_SLOT, holding_id, suitable_product
from marketloop.simulate.streams import DAY_US, HOUR_US, LOCAL_OFFSET_US, Window, choice

PURCHASE_KIND_WEIGHTS = {"fixed": 0.55, "cash": 0.15, "fund": 0.30}
# Share of AUM a purchase takes (low, high) and its floor, by kind ("time": a time deposit bought again at maturity).
_AMOUNT_TABLES = (
    {"fixed": 0.1, "cash": 0.05, "fund": 0.02, "time": 0.1},
    {"fixed": 0.4, "cash": 0.2, "fund": 0.15, "time": 0.4},
    {"fixed": 10_000.0, "cash": 100.0, "fund": 1_000.0, "time": 50.0},
)


@dataclass(frozen=True, kw_only=True)
class Actions:
    purchases: pl.DataFrame  # index, cust_no, day, ts, kind, product_code, amount, channel, key, holding_id
    maturities: pl.DataFrame  # key (of the holding), index, cust_no, day, product_code, amount (paid into demand)
    redemptions: pl.DataFrame  # key, index, cust_no, day, product_code, amount
    activations: pl.DataFrame  # index, cust_no, account_no, product_code, day, ts, channel
    transfers: pl.DataFrame  # index, cust_no, day, ts, amount, direction, channel, counterparty_type


def local_time(rng: np.random.Generator, day: np.ndarray, hour: np.ndarray, spread: float = 1.5) -> np.ndarray:
    """UTC microseconds for local `day` at about `hour` (normal spread in hours, kept within the day)."""
    local_hour = np.clip(hour + rng.normal(0, spread, len(day)), 0, 23.99)
    return day * DAY_US + (local_hour * HOUR_US).astype(np.int64) - LOCAL_OFFSET_US


def active_span(population: pl.DataFrame, truth: pl.DataFrame, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """First and last day each customer can act in the window (last < first: cannot)."""
    first = np.maximum(population["open_day"].to_numpy(), window.first)
    churn = truth["churn_day"].fill_null(window.last + 1).to_numpy()
    last = np.minimum(window.last, churn - 1)
    last = np.where(population["status"].to_numpy() == "active", last, first - 1)
    return first, last


def plan(
    rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, holdings: pl.DataFrame, window: Window
) -> Actions:
    first, last = active_span(population, truth, window)
    maturities, reinvest = _maturities(rng, holdings, truth, window)
    organic = _organic_purchases(rng, population, truth, first, last)
    purchases = _purchase_rows(rng, population, truth, pl.concat([organic, reinvest], how="vertical_relaxed"))
    return Actions(
        purchases=purchases,
        maturities=maturities,
        redemptions=_churn_redemptions(holdings, truth),
        activations=_activations(rng, population, truth, holdings, window),
        transfers=_transfers(rng, population, truth, first, last),
    )


def _organic_purchases(
    rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, first: np.ndarray, last: np.ndarray
) -> pl.DataFrame:
    span = np.maximum(last - first + 1, 0)
    daily = -np.log1p(-truth["p_convert_untouched"].to_numpy()) / 7
    counts = rng.poisson(daily * span)
    who = np.repeat(np.arange(population.height), counts)
    day = first[who] + (rng.random(who.size) * span[who]).astype(np.int64)
    kind = np.array(list(PURCHASE_KIND_WEIGHTS))[choice(rng, list(PURCHASE_KIND_WEIGHTS.values()), who.size)]
    return pl.DataFrame({"row": who, "day": day, "kind": kind, "amount": np.full(who.size, np.nan)})


def _maturities(
    rng: np.random.Generator, holdings: pl.DataFrame, truth: pl.DataFrame, window: Window
) -> tuple[pl.DataFrame, pl.DataFrame]:
    due = holdings.filter(
        pl.col("kind").is_in(["time", "fixed"]) & pl.col("maturity_day").is_between(window.first + 1, window.last)
    )
    rate = due.select(catalogue.lookup(pl.col("product_code"), "rate")).to_series().to_numpy()
    term = due["maturity_day"].to_numpy() - due["start_day"].to_numpy()
    amount = np.round(due["balance"].to_numpy() * (1 + rate / 100 * term / 365), 2)
    maturities = due.select("key", "index", "cust_no", "product_code", day="maturity_day").with_columns(
        amount=pl.Series(amount)
    )
    row = due["row"].to_numpy()
    churn = truth["churn_day"].fill_null(window.last + 10).to_numpy()[row]
    day = due["maturity_day"].to_numpy() + rng.integers(0, 4, due.height)
    again = (
        (rng.random(due.height) < truth["reinvest_probability"].to_numpy()[row]) & (day <= window.last) & (day < churn)
    )
    reinvest = pl.DataFrame(
        {
            "row": row[again],
            "day": day[again],
            "kind": due["kind"].to_numpy()[again],
            "amount": np.floor(amount[again] / 100) * 100,
        }
    )
    return maturities, reinvest


def _purchase_rows(
    rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, wanted: pl.DataFrame
) -> pl.DataFrame:
    row = wanted["row"].to_numpy()
    aum = population["aum_target"].to_numpy()[row]
    risk = population["risk"].to_numpy()[row]
    kind = np.where(
        (wanted["kind"].to_numpy() == "fixed") & ((risk < 2) | (aum < 20_000)), "cash", wanted["kind"].to_numpy()
    )
    kinds = pl.Series(kind, dtype=pl.String)
    low, high, floor = (kinds.replace_strict(table, return_dtype=pl.Float64).to_numpy() for table in _AMOUNT_TABLES)
    drawn = np.round(aum * rng.uniform(low, high), -2)
    given = wanted["amount"].to_numpy()
    amount = np.maximum(np.where(np.isnan(given), drawn, given), floor)
    product = _on_sale_products(rng, kind, risk)
    app = truth["app_user"].to_numpy()[row] & (rng.random(row.size) < 0.9)
    hour = truth["best_contact_hour"].to_numpy()[row]
    frame = pl.DataFrame(
        {
            "index": population["index"].to_numpy()[row],
            "cust_no": population["cust_no"].gather(row),
            "day": wanted["day"],
            "ts": local_time(rng, wanted["day"].to_numpy(), np.where(app, hour, 10.5)),
            "kind": kinds,
            "product_code": product,
            "amount": amount,
            "channel": np.where(app, "mobile", "counter"),
        }
    ).sort("index", "ts")
    frame = frame.with_columns(key=pl.col("index") * 100 + pl.int_range(pl.len()).over("index") + FIRST_PURCHASE_SLOT)
    return frame.with_columns(holding_id=holding_id(pl.col("key")))


def _on_sale_products(rng: np.random.Generator, kind: np.ndarray, risk: np.ndarray) -> pl.Series:
    fixed = suitable_product(rng, "fixed", 2 + choice(rng, [0.55, 0.3, 0.12, 0.03], kind.size), risk)
    fund = suitable_product(rng, "fund", 1 + choice(rng, [0.2, 0.35, 0.25, 0.15, 0.05], kind.size), risk)
    cash = pl.Series(np.array(catalogue.codes("cash"))[rng.integers(0, 2, kind.size)])
    time = pl.Series(np.full(kind.size, "DEP-TD-1Y"))
    chosen = pl.select(
        pl.when(pl.Series(kind == "fixed"))
        .then(fixed)
        .when(pl.Series(kind == "fund"))
        .then(fund)
        .when(pl.Series(kind == "time"))
        .then(time)
        .otherwise(cash)
    ).to_series()
    off_sale = {p.code for p in catalogue.CATALOGUE if not p.on_sale}
    return chosen.replace({code: "WM-R2-090D" for code in off_sale})


def _churn_redemptions(holdings: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    churn = truth.select(pl.col("churn_day").alias("day"), row=pl.int_range(pl.len()))
    return (
        holdings.filter(pl.col("kind").is_in(["cash", "fund"]))
        .join(churn.filter(pl.col("day").is_not_null()), on="row")
        .select("key", "index", "cust_no", "product_code", "day", amount="balance")
    )


def _activations(
    rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, holdings: pl.DataFrame, window: Window
) -> pl.DataFrame:
    cards = holdings.filter(pl.col("card_status") == "inactive")
    chosen = cards.filter(pl.Series(rng.random(cards.height) < 0.4))
    row = chosen["row"].to_numpy()
    start = np.maximum(chosen["start_day"].to_numpy(), window.first)
    day = start + (rng.random(chosen.height) * (window.last - start + 1)).astype(np.int64)
    app = truth["app_user"].to_numpy()[row]
    return chosen.select("index", "cust_no", "account_no", "product_code").with_columns(
        day=pl.Series(day),
        ts=pl.Series(local_time(rng, day, truth["best_contact_hour"].to_numpy()[row])),
        channel=pl.Series(np.where(app, "mobile", "counter")),
    )


def _transfers(
    rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, first: np.ndarray, last: np.ndarray
) -> pl.DataFrame:
    span = np.maximum(last - first + 1, 0)
    out_count = rng.poisson(0.02 * span)
    in_count = rng.poisson(0.015 * span)
    who = np.concatenate(
        [np.repeat(np.arange(population.height), out_count), np.repeat(np.arange(population.height), in_count)]
    )
    direction = np.repeat(["out", "in"], [out_count.sum(), in_count.sum()])
    day = first[who] + (rng.random(who.size) * span[who]).astype(np.int64)
    app = truth["app_user"].to_numpy()[who] & (rng.random(who.size) < 0.85)
    return pl.DataFrame(
        {
            "index": population["index"].to_numpy()[who],
            "cust_no": population["cust_no"].gather(who),
            "day": day,
            "ts": local_time(rng, day, truth["best_contact_hour"].to_numpy()[who], spread=3.0),
            "amount": np.round(np.exp(rng.normal(np.log(2_500), 1.1, who.size)), -1).clip(10, 500_000),
            "direction": direction,
            "channel": np.where(app, "mobile", np.where(rng.random(who.size) < 0.5, "counter", "online")),
            "counterparty_type": np.where(
                direction == "out", "other_bank", np.where(rng.random(who.size) < 0.7, "other_bank", "self")
            ),
        }
    )
