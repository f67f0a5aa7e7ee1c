"""A simulated campaign with a known true effect: assignments, touches and conversions as an experiment records them.

For tests and demos of the experiment engine until journeys write these
tables. Each customer has a propensity (mean 1) that drives both the
conversions before assignment (the CUPED covariate) and after; a treated
customer converts with probability base_rate · propensity + lift, so the
true intent-to-treat effect on the conversion rate is exactly `lift` and on
revenue per customer `lift · revenue_per_conversion`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from marketloop.simulate.network import build_network
from marketloop.simulate.population import generate
from marketloop.simulate.response import respond
from marketloop.simulate.streams import Window
from marketloop.simulate.truth import ResponseModel
from marketloop.simulate.truth import latent as latent_traits


@dataclass(frozen=True, kw_only=True)
class SimulatedCampaign:
    assignments: pl.DataFrame  # cust_no, variant, assigned_at
    touches: pl.DataFrame  # touch_id, cust_no, channel, stage, touched_at
    conversions: pl.DataFrame  # conversion_id, cust_no, goal, converted_at, revenue, aum, benefit_cost
    true_rate_lift: float
    true_revenue_lift: float  # per targeted customer


def simulate_campaign(
    seed: int,
    customers: int,
    *,
    shares: dict[str, float] | None = None,
    control: str = "holdout",
    base_rate: float = 0.05,
    lift: float = 0.02,
    revenue_per_conversion: float = 300.0,
    goal: str = "wealth_purchase",
    channel: str = "push",
    start: datetime = datetime(2026, 3, 1, tzinfo=UTC),
    days: int = 60,
    window_days: int = 30,
) -> SimulatedCampaign:
    """A campaign over `customers` customers assigned within `days` from `start`; reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    shares = shares or {control: 0.2, "push": 0.8}
    names = list(shares)
    weights = np.array([shares[n] for n in names]) / sum(shares.values())
    cust_no = np.array([f"C{i:07d}" for i in range(customers)])
    variant = rng.choice(names, customers, p=weights)
    assigned_at = np.array([start + timedelta(hours=float(h)) for h in rng.uniform(0, days * 24, customers)])
    propensity = rng.uniform(0.2, 1.8, customers)
    treated = variant != control
    assignments = pl.DataFrame({"cust_no": cust_no, "variant": variant, "assigned_at": _times(assigned_at)})
    touches = _touches(rng, cust_no[treated], assigned_at[treated], channel)
    before = _conversions(rng, cust_no, assigned_at, base_rate * propensity, -window_days, revenue_per_conversion, goal)
    probability = base_rate * propensity + np.where(treated, lift, 0.0)
    after = _conversions(rng, cust_no, assigned_at, probability, 0, revenue_per_conversion, goal, treated=treated)
    conversions = (
        pl.concat([before, after])
        .with_row_index("n")
        .select(pl.format("v{}", pl.col("n")).alias("conversion_id"), pl.exclude("n"))
    )
    return SimulatedCampaign(
        assignments=assignments,
        touches=touches,
        conversions=conversions,
        true_rate_lift=lift,
        true_revenue_lift=lift * revenue_per_conversion,
    )


def _touches(
    rng: np.random.Generator, cust_no: np.typing.NDArray[np.str_], at: np.typing.NDArray[np.object_], channel: str
) -> pl.DataFrame:
    n = len(cust_no)
    suppressed = rng.random(n) < 0.05
    delivered = ~suppressed & (rng.random(n) < 0.95)
    opened = delivered & (rng.random(n) < 0.3)
    clicked = opened & (rng.random(n) < 0.35)
    rows = []
    for stage, mask in (
        ("suppressed", suppressed),
        ("sent", ~suppressed),
        ("delivered", delivered),
        ("opened", opened),
        ("clicked", clicked),
    ):
        rows.append(
            pl.DataFrame(
                {
                    "touch_id": [f"T{c}" for c in cust_no[mask]],
                    "cust_no": cust_no[mask],
                    "channel": [channel] * int(mask.sum()),
                    "stage": [stage] * int(mask.sum()),
                    "touched_at": _times(at[mask]),
                }
            )
        )
    return pl.concat(rows)


def _conversions(
    rng: np.random.Generator,
    cust_no: np.typing.NDArray[np.str_],
    assigned_at: np.typing.NDArray[np.object_],
    probability: np.typing.NDArray[np.float64],
    offset_days: int,
    revenue_per_conversion: float,
    goal: str,
    *,
    treated: np.typing.NDArray[np.bool_] | None = None,
) -> pl.DataFrame:
    converted = rng.random(len(cust_no)) < probability
    n = int(converted.sum())
    hours = rng.uniform(1, 29 * 24, n)
    at = [a + timedelta(days=offset_days, hours=float(h)) for a, h in zip(assigned_at[converted], hours, strict=True)]
    revenue = rng.gamma(4.0, revenue_per_conversion / 4.0, n)
    coupon = np.where(treated[converted], 5.0, 0.0) if treated is not None else np.zeros(n)
    return pl.DataFrame(
        {
            "cust_no": cust_no[converted],
            "goal": [goal] * n,
            "converted_at": _times(np.array(at, dtype=object)),
            "revenue": revenue,
            "aum": revenue * 200.0,
            "benefit_cost": coupon,
        }
    )


def _times(values: np.typing.NDArray[np.object_]) -> pl.Series:
    return pl.Series(values.tolist(), dtype=pl.Datetime("us", "UTC"))


def simulate_bank_holdout(
    seed: int,
    customers: int,
    *,
    channel: str = "call",
    holdout_share: float = 0.2,
    revenue_per_conversion: float = 300.0,
    goal: str = "wealth_purchase",
    start: datetime = datetime(2026, 3, 2, tzinfo=UTC),
) -> SimulatedCampaign:
    """A holdout experiment on the simulator's bank, driven by its ground-truth response model.

    The simulator's population and latent traits (marketloop.simulate) decide
    who opens a touch on `channel` sent at their best contact hour and who buys
    within the response window (`simulate.response.respond`). The true effect is
    what the model implies: the mean over all customers of
    p_open · (p_convert(opened) − p_convert(untouched)), i.e. the expected
    intent-to-treat difference in conversion rate.
    """
    population, latent = simulated_bank(seed, customers)
    model = ResponseModel()
    rng = np.random.default_rng([seed, 5])
    holdout = rng.random(customers) < holdout_share
    responses = respond(latent, ~holdout, channel, seed=seed, model=model)
    opened, converted = responses.opened, responses.converted
    cust_no = population["cust_no"].to_numpy().astype(str)
    at = np.array([start] * customers, dtype=object)
    assignments = pl.DataFrame(
        {"cust_no": cust_no, "variant": np.where(holdout, "holdout", channel), "assigned_at": _times(at)}
    )
    treated = ~holdout
    stages = [("sent", treated), ("delivered", treated), ("opened", opened)]
    touches = pl.concat(
        [
            pl.DataFrame(
                {
                    "touch_id": [f"T{c}" for c in cust_no[mask]],
                    "cust_no": cust_no[mask],
                    "channel": [channel] * int(mask.sum()),
                    "stage": [stage] * int(mask.sum()),
                    "touched_at": _times(at[mask]),
                }
            )
            for stage, mask in stages
        ]
    )
    hours = rng.uniform(1, model.convert_window_days * 24 - 1, int(converted.sum()))
    conversions = pl.DataFrame(
        {
            "conversion_id": [f"v{i}" for i in range(int(converted.sum()))],
            "cust_no": cust_no[converted],
            "goal": [goal] * int(converted.sum()),
            "converted_at": _times(np.array([start + timedelta(hours=float(h)) for h in hours], dtype=object)),
            "revenue": np.full(int(converted.sum()), revenue_per_conversion),
            "aum": np.zeros(int(converted.sum())),
            "benefit_cost": np.zeros(int(converted.sum())),
        }
    )
    true_lift = responses.true_effect
    return SimulatedCampaign(
        assignments=assignments,
        touches=touches,
        conversions=conversions,
        true_rate_lift=true_lift,
        true_revenue_lift=true_lift * revenue_per_conversion,
    )


def simulated_bank(seed: int, customers: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The simulator's customers and their hidden latent traits (`simulate.truth.latent`), same order."""
    window = Window(end=date(2026, 3, 1), days=90)
    population = generate(seed, customers, window, build_network(seed, customers))
    return population, latent_traits(seed, population, window)
