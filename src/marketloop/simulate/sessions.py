"""Sessions: app, mini-program, WeChat official account and H5 visits, exploded into steps (events).

Sessions come from two places. Actions (`activity`) done through the app
become sessions that end in the act: `purchase` after viewing the product
(and often the yield calculator), `transfer_out`, `card_activation`.
Everything else is organic: app sessions at the customer's `engagement`
rate (browsing, wealth or fund interest — more likely the higher the
wealth propensity — or checking the account), mini-program visits, WeChat
article reads, H5 campaign pages. Session start times cluster around the
customer's `best_contact_hour` (local time), which is how the truth shows
in the data.

Each session type is a template of steps with probabilities; the events
before a `login` step carry only the anonymous id, those after it the
login id too (see `behaviour`, which attaches identifiers and properties).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from marketloop.simulate import products as catalogue
from marketloop.simulate.activity import Actions, local_time
from marketloop.simulate.streams import choice, choice_rows

# Each template step: (event, probability, page of a `$pageview`, product: "product" / "other" of the session).
Step = tuple[str, float, str | None, str | None]
_LAUNCH: Step = ("app_launch", 1.0, None, None)


def _login(p: float) -> Step:
    return ("login", p, None, None)


TEMPLATES: dict[str, tuple[Step, ...]] = {
    "browse": (
        _LAUNCH,
        _login(0.6),
        ("$pageview", 1, "home", None),
        ("$pageview", 0.7, "*", None),
        ("$pageview", 0.4, "*", None),
    ),
    "wealth": (
        _LAUNCH,
        _login(0.8),
        ("$pageview", 1, "wealth_list", None),
        ("wealth_product_view", 1, None, "product"),
        ("wealth_product_view", 0.4, None, "other"),
        ("yield_calculator_used", 0.4, None, "product"),
        ("product_detail_view", 0.6, None, "product"),
    ),
    "fund": (
        _LAUNCH,
        _login(0.7),
        ("$pageview", 1, "fund_list", None),
        ("fund_page_view", 1, None, "product"),
        ("fund_page_view", 0.5, None, "other"),
        ("product_detail_view", 0.5, None, "product"),
    ),
    "account": (_LAUNCH, _login(0.9), ("$pageview", 1, "account_overview", None), ("$pageview", 0.5, "bill", None)),
    "buy_wealth": (
        _LAUNCH,
        _login(1),
        ("$pageview", 1, "wealth_list", None),
        ("wealth_product_view", 1, None, "product"),
        ("yield_calculator_used", 0.5, None, "product"),
        ("product_detail_view", 1, None, "product"),
        ("purchase", 1, None, "product"),
    ),
    "buy_fund": (
        _LAUNCH,
        _login(1),
        ("$pageview", 1, "fund_list", None),
        ("fund_page_view", 1, None, "product"),
        ("product_detail_view", 1, None, "product"),
        ("purchase", 1, None, "product"),
    ),
    "transfer": (_LAUNCH, _login(1), ("$pageview", 1, "transfer", None), ("transfer_out", 1, None, None)),
    "activate": (_LAUNCH, _login(1), ("$pageview", 1, "credit_card", None), ("card_activation", 1, None, "product")),
    "mini_program": (
        ("mini_program_visit", 1, None, None),
        ("$pageview", 0.5, "mp*", None),
        ("wealth_product_view", 0.15, None, "product"),
    ),
    "wechat": (("wechat_article_read", 1, None, None),),
    "h5": (("$pageview", 1, "h5*", None), _login(0.3), ("product_detail_view", 0.3, None, "product")),
}
# Pages drawn at random for the "*" steps, with weights.
RANDOM_PAGES = {
    "*": (
        ("home", 1),
        ("wealth_list", 3),
        ("fund_list", 2),
        ("account_overview", 3),
        ("transfer", 1),
        ("credit_card", 1),
        ("loan", 1),
        ("benefits", 2),
        ("me", 1),
    ),
    "mp*": (("mp_home", 1), ("mp_benefits", 1), ("mp_wealth", 1), ("mp_lottery", 1)),
    "h5*": (("h5_rate_up_coupon", 1), ("h5_new_customer_gift", 1), ("h5_pension_account", 1), ("h5_card_offer", 1)),
}
RATES = {"mini_program": 0.04, "wechat": 0.06, "h5": 0.015}
APP_TEMPLATE_WEIGHTS = ("browse", "wealth", "fund", "account")


def _session_frame(
    rng: np.random.Generator, population: pl.DataFrame, row: np.ndarray, template: np.ndarray, ts: np.ndarray
) -> pl.DataFrame:
    """Sessions with two products the customer may look at (funds in fund sessions, wealth otherwise)."""
    wealth = pl.Series(catalogue.codes("cash") + catalogue.codes("fixed"))
    fund = pl.Series(catalogue.codes("fund"))
    is_fund = pl.Series(template == "fund")
    picks = [rng.integers(0, 1_000_000, row.size) for _ in range(2)]
    product, other = (
        pl.select(
            pl.when(is_fund).then(fund.gather(p % fund.len())).otherwise(wealth.gather(p % wealth.len()))
        ).to_series()
        for p in picks
    )
    return pl.DataFrame(
        {"row": row, "template": template, "ts": ts, "product": product, "other": other},
        schema_overrides={"row": pl.Int64, "ts": pl.Int64, "template": pl.String},
    ).with_columns(amount=pl.lit(None, pl.Float64), holding_id=pl.lit(None, pl.String))


def organic_sessions(
    rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, span: tuple[np.ndarray, np.ndarray]
) -> pl.DataFrame:
    """App sessions at each customer's engagement rate, mini-program visits, article reads, H5 visits."""
    first, last = span
    days = np.maximum(last - first + 1, 0)
    rates = {
        "app": truth["engagement"].to_numpy(),
        "mini_program": RATES["mini_program"] * truth["mini_program_user"].to_numpy(),
        "wechat": RATES["wechat"] * truth["wechat_follower"].to_numpy(),
        "h5": RATES["h5"] * truth["h5_visitor"].to_numpy(),
    }
    frames = []
    for channel, rate in rates.items():
        row = np.repeat(np.arange(population.height), rng.poisson(rate * days))
        day = first[row] + (rng.random(row.size) * days[row]).astype(np.int64)
        focused = rng.random(row.size) < 0.7
        hour = np.where(focused, truth["best_contact_hour"].to_numpy()[row], rng.uniform(7, 23, row.size))
        template = _app_templates(rng, population, truth, row) if channel == "app" else np.full(row.size, channel)
        frames.append(_session_frame(rng, population, row, template, local_time(rng, day, hour, spread=1.2)))
    return pl.concat(frames)


def _app_templates(
    rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame, row: np.ndarray
) -> np.ndarray:
    """Browse, wealth interest (likelier with propensity), fund interest (risk C3+) or account checks."""
    propensity = truth["wealth_propensity"].to_numpy()[row]
    risky = population["risk"].to_numpy()[row] >= 3
    weights = np.column_stack([np.ones(row.size), 0.1 + 1.5 * propensity, 0.08 + 0.3 * risky, np.full(row.size, 0.35)])
    return np.asarray(np.array(APP_TEMPLATE_WEIGHTS)[choice_rows(rng, weights)])


def action_sessions(
    rng: np.random.Generator, population: pl.DataFrame, actions: Actions, churn: pl.DataFrame
) -> pl.DataFrame:
    """App sessions in which a customer bought, transferred out or activated a card; the act is the last step."""
    first_index = int(population["index"][0]) if population.height else 0
    buys = actions.purchases.filter(pl.col("channel") == "mobile")
    buy_template = pl.when(pl.col("kind") == "fund").then(pl.lit("buy_fund")).otherwise(pl.lit("buy_wealth"))
    outs = pl.concat(
        [
            actions.transfers.filter((pl.col("channel") == "mobile") & (pl.col("direction") == "out")).select(
                "index", "ts", "amount"
            ),
            churn.filter(pl.col("channel") == "mobile").select("index", "ts", "amount"),
        ]
    )
    acts = actions.activations.filter(pl.col("channel") == "mobile")
    acted = pl.concat(
        [
            buys.select("index", "ts", "amount", "holding_id", template=buy_template, bought="product_code"),
            outs.with_columns(template=pl.lit("transfer")),
            acts.select("index", "ts", template=pl.lit("activate"), bought="product_code"),
        ],
        how="diagonal_relaxed",
    )
    # The session starts a few minutes before the act, whose step then lands close to the act's time.
    start = acted["ts"].to_numpy() - rng.integers(60, 600, acted.height) * 1_000_000
    row = acted["index"].to_numpy() - first_index
    base = _session_frame(rng, population, row, acted["template"].to_numpy(), start)
    return base.with_columns(
        product=pl.coalesce(acted["bought"], base["product"]),
        amount=acted["amount"].cast(pl.Float64),
        holding_id=acted["holding_id"].cast(pl.String),
    )


def _steps() -> pl.DataFrame:
    return pl.DataFrame(
        [
            (name, number, event, float(p), page, product)
            for name, template in TEMPLATES.items()
            for number, (event, p, page, product) in enumerate(template)
        ],
        schema=["template", "step", "event", "p", "page", "source"],
        orient="row",
    )


def explode(rng: np.random.Generator, visits: pl.DataFrame) -> pl.DataFrame:
    """One row per event, ordered by session and step: session, step, event, page, source, offset_us.

    `session` is the row number in `visits`; `source` says which of the session's products the step is about.
    """
    sessions = visits.select("template", session=pl.int_range(pl.len(), dtype=pl.Int64))
    events = sessions.join(_steps(), on="template", how="inner").sort("session", "step")
    events = events.filter(pl.Series(rng.random(events.height)) < pl.col("p")).drop("p", "template")
    gap = np.round(rng.exponential(25, events.height) * 1_000_000).astype(np.int64) + 1_000_000
    starts = session_starts(events["session"].to_numpy())
    cumulative = np.cumsum(gap) - gap
    offset = cumulative - cumulative[starts]
    return events.with_columns(offset_us=pl.Series(offset), page=_pages(rng, events))


def session_starts(session: np.ndarray) -> np.ndarray:
    """For each event (sorted by session), the position of its session's first event."""
    if session.size == 0:
        return session
    first = np.flatnonzero(np.concatenate([[True], session[1:] != session[:-1]]))
    return np.repeat(first, np.diff(np.concatenate([first, [session.size]])))


def _pages(rng: np.random.Generator, events: pl.DataFrame) -> pl.Series:
    page = events["page"]
    for wildcard, options in RANDOM_PAGES.items():
        drawn = pl.Series([name for name, _ in options]).gather(choice(rng, [w for _, w in options], events.height))
        page = pl.select(pl.when(page == wildcard).then(drawn).otherwise(page)).to_series()
    return page
