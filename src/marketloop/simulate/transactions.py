"""The ledger: every money movement of the window, and what it does to each holding's balance.

All movements go through the customer's debit account (the demand
deposit): salary credits, card and QR-code consumption (mostly through
third-party payment), cash withdrawals, transfers to and from other banks,
wealth and fund purchases, maturities and redemptions, and the monthly
auto-debited loan and credit-card repayments. The demand deposit's daily
balance is its opening balance plus the running sum of these; a customer
whose spending would take it below zero simply had more money at the start
(the opening balance is raised by the shortfall). A churner moves 85 % of
what is left (the lowest balance from the churn day on) to another bank on
the churn day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from marketloop.core.bank import TRANSACTIONS
from marketloop.simulate import products as catalogue
from marketloop.simulate import reference as ref
from marketloop.simulate.activity import Actions, local_time
from marketloop.simulate.holdings import debit_account
from marketloop.simulate.liabilities import LOAN_TERMS
from marketloop.simulate.streams import DAY_US, HOUR_US, LOCAL_OFFSET_US, Window, choice, monthly

CONSUMPTION_CHANNELS = {"third_party": 0.45, "pos": 0.3, "online": 0.1, "mobile": 0.1, "atm": 0.05}
CHURN_SHARE = 0.85
_MOVEMENT_COLUMNS = (
    "index",
    "cust_no",
    "ts",
    "day",
    "amount",
    "direction",
    "channel",
    "counterparty_type",
    "counterparty_name",
    "category",
    "product_code",
)


@dataclass(frozen=True, kw_only=True)
class Ledger:
    transactions: pl.DataFrame  # rows of `transactions`
    changes: pl.DataFrame  # key (of the holding), day, delta, closes
    holdings: pl.DataFrame  # opening holdings (demand raised by any shortfall) and the holdings bought
    churn_transfers: pl.DataFrame  # index, cust_no, day, ts, amount, channel, counterparty_name


def _movements(frame: pl.DataFrame, **columns: object) -> pl.DataFrame:
    """`frame` with the movement columns, constants filled in from `columns`."""
    present = frame.with_columns(**{k: (v if isinstance(v, pl.Expr) else pl.lit(v)) for k, v in columns.items()})
    for name in _MOVEMENT_COLUMNS:
        if name not in present.columns:
            present = present.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    return present.select(_MOVEMENT_COLUMNS).cast({"amount": pl.Float64, "ts": pl.Int64, "day": pl.Int64})


def book(
    rng: np.random.Generator,
    population: pl.DataFrame,
    truth: pl.DataFrame,
    holdings: pl.DataFrame,
    actions: Actions,
    salaries: pl.DataFrame,
    window: Window,
    span: tuple[np.ndarray, np.ndarray],
) -> Ledger:
    repayments, repayment_changes = _repayments(rng, holdings, window)
    moves = pl.concat(
        [
            _consumption(rng, population, truth, span),
            repayments,
            _movements(salaries, direction="in", channel="online", counterparty_type="employer", category="salary"),
            *_action_movements(rng, actions),
        ],
        how="vertical_relaxed",
    )
    bought = _bought_holdings(actions.purchases)
    opening = _raise_shortfalls(holdings, moves)
    churn = _churn_transfers(rng, truth, population, opening, moves, window)
    moves = pl.concat([moves, _movements(churn, direction="out", counterparty_type="other_bank", category="transfer")])
    changes = pl.concat([_demand_changes(moves), repayment_changes, _closing_changes(actions)], how="vertical_relaxed")
    return Ledger(
        transactions=_transaction_rows(moves),
        changes=changes,
        holdings=pl.concat([opening, bought], how="diagonal_relaxed"),
        churn_transfers=churn,
    )


def _consumption(
    rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, span: tuple[np.ndarray, np.ndarray]
) -> pl.DataFrame:
    first, last = span
    days = np.maximum(last - first + 1, 0)
    age = population["age"].to_numpy()
    rate = 0.13 * np.exp(rng.normal(0, 0.5, population.height)) * np.where(age < 65, 1.0, 0.5)
    rate *= np.where(population["aum_target"].to_numpy() > 1_000, 1.0, 0.3)
    who = np.repeat(np.arange(population.height), rng.poisson(rate * days))
    day = first[who] + (rng.random(who.size) * days[who]).astype(np.int64)
    hour = np.where(
        rng.random(who.size) < 0.5, rng.uniform(7, 22, who.size), truth["best_contact_hour"].to_numpy()[who]
    )
    channel = np.array(list(CONSUMPTION_CHANNELS))[choice(rng, list(CONSUMPTION_CHANNELS.values()), who.size)]
    atm = channel == "atm"
    merchant = np.array(ref.MERCHANTS)[rng.integers(0, len(ref.MERCHANTS), who.size)]
    amount = np.where(atm, np.round(rng.uniform(1, 30, who.size)) * 100, np.exp(rng.normal(np.log(60), 1.0, who.size)))
    frame = pl.DataFrame(
        {
            "index": population["index"].to_numpy()[who],
            "cust_no": population["cust_no"].gather(who),
            "ts": local_time(rng, day, hour, spread=1.0),
            "day": day,
            "amount": np.round(np.minimum(amount, 20_000), 2),
            "channel": channel,
            "counterparty_type": np.where(atm, "self", "merchant"),
            "counterparty_name": pl.Series(merchant).set(pl.Series(atm), None),
            "category": np.where(atm, "cash_withdrawal", "consumption"),
        }
    )
    return _movements(frame, direction="out")


def _repayments(rng: np.random.Generator, holdings: pl.DataFrame, window: Window) -> tuple[pl.DataFrame, pl.DataFrame]:
    owed = holdings.filter(pl.col("kind").is_in([*LOAN_TERMS, "card"]) & (pl.col("balance") > 0))
    due = monthly(owed, "repay_day", window).filter(
        pl.col("day").is_between(window.first + 1, window.last) & (pl.col("day") > pl.col("start_day"))
    )
    due = due.sort("key", "day").with_columns(
        rate=catalogue.lookup(pl.col("product_code"), "rate"),
        nth=pl.int_range(pl.len()).over("key"),
        growth=pl.Series(np.exp(rng.normal(0, 0.35, due.height))),
    )
    card = pl.col("kind") == "card"
    due = due.with_columns(
        statement=pl.col("balance") * pl.col("growth").cum_prod().over("key") / pl.col("growth"),
    ).with_columns(
        next_statement=(pl.col("statement") * pl.col("growth")).clip(upper_bound=pl.col("credit_limit")),
        amount=pl.when(card)
        .then(pl.col("statement"))
        .otherwise(
            pl.col("monthly_principal")
            + (pl.col("balance") - pl.col("nth") * pl.col("monthly_principal")) * pl.col("rate") / 1200
        )
        .round(2),
    )
    local = 6 + rng.random(due.height)
    moves = _movements(
        due.with_columns(ts=pl.col("day") * DAY_US + pl.Series((local * HOUR_US).astype(np.int64)) - LOCAL_OFFSET_US),
        direction="out",
        channel="online",
        counterparty_type="self",
        category="repayment",
    )
    delta = pl.when(card).then(pl.col("next_statement") - pl.col("statement")).otherwise(-pl.col("monthly_principal"))
    changes = due.select("key", "day", delta=delta.round(2), closes=pl.lit(False))
    return moves, changes


def _action_movements(rng: np.random.Generator, actions: Actions) -> list[pl.DataFrame]:
    p, m, r, t = actions.purchases, actions.maturities, actions.redemptions, actions.transfers
    maturity_ts = pl.col("day") * DAY_US + pl.lit(int(0.5 * HOUR_US)) - LOCAL_OFFSET_US
    redemption_ts = pl.Series(local_time(rng, r["day"].to_numpy(), np.full(r.height, 10.0)))
    banks = np.array(ref.OTHER_BANKS)[rng.integers(0, len(ref.OTHER_BANKS), t.height)]
    return [
        _movements(p, direction="out", counterparty_type="self", category="investment"),
        _movements(m, ts=maturity_ts, direction="in", channel="online", counterparty_type="self", category="maturity"),
        _movements(
            r, ts=redemption_ts, direction="in", channel="mobile", counterparty_type="self", category="redemption"
        ),
        _movements(
            t,
            counterparty_name=pl.when(pl.col("counterparty_type") == "other_bank").then(pl.Series(banks)),
            category="transfer",
        ),
    ]


def _signed(moves: pl.DataFrame) -> pl.DataFrame:
    return moves.select(
        "index", "day", delta=pl.when(pl.col("direction") == "in").then("amount").otherwise(-pl.col("amount"))
    )


def _raise_shortfalls(holdings: pl.DataFrame, moves: pl.DataFrame) -> pl.DataFrame:
    """Opening holdings with each demand deposit raised so that its balance never goes below zero."""
    path = _signed(moves).group_by("index", "day").agg(pl.col("delta").sum()).sort("index", "day")
    lowest = path.group_by("index").agg(low=pl.col("delta").cum_sum().min())
    demand = pl.col("kind") == "demand"
    raised = holdings.join(lowest, on="index", how="left").with_columns(
        balance=pl.when(demand)
        .then((pl.col("balance") - pl.min_horizontal(pl.col("balance") + pl.col("low").fill_null(0), 0)).round(2))
        .otherwise("balance")
    )
    return raised.drop("low")


def _churn_transfers(
    rng: np.random.Generator,
    truth: pl.DataFrame,
    population: pl.DataFrame,
    opening: pl.DataFrame,
    moves: pl.DataFrame,
    window: Window,
) -> pl.DataFrame:
    churners = truth.select(pl.col("churn_day").alias("day"), index=population["index"]).filter(
        pl.col("day").is_not_null()
    )
    if churners.is_empty():
        return pl.DataFrame(
            schema={
                "index": pl.Int64,
                "cust_no": pl.String,
                "day": pl.Int64,
                "ts": pl.Int64,
                "amount": pl.Float64,
                "channel": pl.String,
                "counterparty_name": pl.String,
            }
        )
    start = opening.filter(pl.col("kind") == "demand").select("index", "balance")
    steps = pl.concat(
        [_signed(moves).join(churners.select("index"), on="index"), churners.select("index", "day", delta=pl.lit(0.0))],
        how="vertical_relaxed",
    )
    balance = (
        steps.group_by("index", "day")
        .agg(pl.col("delta").sum())
        .sort("index", "day")
        .join(start, on="index")
        .with_columns(level=pl.col("balance") + pl.col("delta").cum_sum().over("index"))
        .join(churners.rename({"day": "churn_day"}), on="index")
        .filter(pl.col("day") >= pl.col("churn_day"))
        .group_by("index")
        .agg(pl.col("level").min(), pl.col("churn_day").first())
    )
    rows = balance.join(population.select("index", "cust_no", "row"), on="index").sort("index")
    row = rows["row"].to_numpy()
    app = truth["app_user"].to_numpy()[row]
    day = rows["churn_day"].to_numpy()
    banks = np.array(ref.OTHER_BANKS)[rng.integers(0, len(ref.OTHER_BANKS), rows.height)]
    return rows.select(
        "index",
        "cust_no",
        day="churn_day",
        ts=pl.Series(local_time(rng, day, truth["best_contact_hour"].to_numpy()[row])),
        amount=(pl.col("level") * CHURN_SHARE).floor(),
        channel=pl.Series(np.where(app, "mobile", "counter")),
        counterparty_name=pl.Series(banks),
    ).filter(pl.col("amount") >= 100)


def _demand_changes(moves: pl.DataFrame) -> pl.DataFrame:
    return (
        _signed(moves)
        .group_by("index", "day")
        .agg(pl.col("delta").sum().round(2))
        .select(key=pl.col("index") * 100, day="day", delta="delta", closes=pl.lit(False))
    )


def _closing_changes(actions: Actions) -> pl.DataFrame:
    ended = pl.concat([actions.maturities.select("key", "day"), actions.redemptions.select("key", "day")])
    return ended.with_columns(delta=pl.lit(0.0), closes=pl.lit(True))


def _bought_holdings(purchases: pl.DataFrame) -> pl.DataFrame:
    term = catalogue.lookup(pl.col("product_code"), "term_days")
    return purchases.select(
        "key",
        "holding_id",
        "index",
        "cust_no",
        "kind",
        "product_code",
        balance="amount",
        account_no=debit_account(pl.col("index")),
        start_day="day",
        maturity_day=pl.col("day") + term,
    )


def _transaction_rows(moves: pl.DataFrame) -> pl.DataFrame:
    ordered = moves.sort("index", "ts")
    return ordered.select(
        txn_id=pl.lit("T")
        + pl.col("index").cast(pl.String).str.zfill(10)
        + pl.int_range(pl.len()).over("index").cast(pl.String).str.zfill(4),
        cust_no="cust_no",
        account_no=debit_account(pl.col("index")),
        ts=pl.from_epoch("ts", time_unit="us").dt.replace_time_zone("UTC"),
        amount=pl.col("amount").round(2),
        direction="direction",
        channel="channel",
        counterparty_type="counterparty_type",
        counterparty_name="counterparty_name",
        category="category",
        product_code="product_code",
    ).select(TRANSACTIONS.names)
