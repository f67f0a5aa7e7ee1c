"""The hidden ground truth: each customer's latent traits and the response model of touches.

The simulator draws these first and lets them drive the visible data (a
customer's sessions cluster around their best contact hour; wealth
purchases follow their propensity; churners move their money out), then
writes them to `ground_truth/` so later work can be scored against them.
Nothing outside the simulator and the evaluation code should read them.

Latent traits (one row per customer, `ground_truth/customers.parquet`):

* `wealth_propensity` = sigmoid(-1.6 + 0.8 z_aum + 0.35 (risk - 3) + 0.25 [tier <= 2]
  + 0.3 [30 <= age < 60] + N(0, 0.7)), times 0.2 for dormant or closed customers;
  z_aum = (ln(1 + AUM) - 9.0) / 2.1.
* `p_convert_untouched` = 0.12 * wealth_propensity: probability of buying a
  wealth or fund product within 7 days without a touch. The simulator's
  organic purchases are a Poisson process with this 7-day probability.
* `uplift` = 0.15 * persuadability * (1 - wealth_propensity) - 0.03 * sleeping_dog,
  persuadability ~ Beta(2, 6), sleeping_dog ~ Bernoulli(0.05): the change
  in that 7-day probability when a touch is opened (negative for the
  customers a touch puts off).
* `churn_hazard` (per day) = 0.00025 * exp(0.5 N(0, 1) - 0.4 z_engagement),
  for active customers with over 1,000 yuan; `churn_day` is when it fired
  within the window (then most money leaves for another bank).
* `preferred_channel`, `best_contact_hour` (local time), `engagement`
  (app sessions per day), reachability (`app_user`, `wechat_follower`, …).

The response model (`ground_truth/response_model.json`, `ResponseModel`):

    p_open(c, h) = min(0.95, base_open[c] * (preferred_multiplier if c == preferred_channel else 1)
                   * (hour_floor + (1 - hour_floor) * exp(-d(h, best_contact_hour)^2 / (2 hour_sd^2))))
                   if the customer is reachable on c, else 0;  d = circular distance in hours
                   (c also `inapp`, an in-app message (站内信): app users only; nobody prefers it)
    p_convert(touched, opened) = clip(p_convert_untouched + opened * uplift, 0, 1)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from marketloop.simulate.streams import Window, choice_rows, stream

CHANNELS = ("push", "sms", "wechat", "wecom", "email", "call")
CONVERT_SCALE = 0.12
UPLIFT_SCALE = 0.15
SLEEPING_DOG_PENALTY = 0.03
BASE_HAZARD = 0.00025
# (mean hour, weight) of the daily peaks when customers use their phones, by age group.
HOUR_PEAKS = {
    "young": ((8, 0.25), (12, 0.25), (21, 0.5)),
    "middle": ((8, 0.2), (12, 0.3), (20, 0.5)),
    "senior": ((9, 0.5), (15, 0.3), (19, 0.2)),
}


@dataclass(frozen=True, kw_only=True)
class ResponseModel:
    """How a customer responds to a touch; see the module docstring for the formulas."""

    base_open: dict[str, float] = field(
        default_factory=lambda: {
            "push": 0.08,
            "sms": 0.04,
            "wechat": 0.12,
            "wecom": 0.3,
            "email": 0.02,
            "call": 0.4,
            "inapp": 0.2,
        }
    )
    reachable_if: dict[str, str | None] = field(
        default_factory=lambda: {
            "push": "app_user",
            "sms": None,
            "wechat": "wechat_follower",
            "wecom": "has_rm",
            "email": "has_email",
            "call": None,
            "inapp": "app_user",
        }
    )
    preferred_multiplier: float = 2.5
    hour_sd: float = 2.5
    hour_floor: float = 0.15
    max_open: float = 0.95
    convert_window_days: int = 7

    def p_open(self, truth: pl.DataFrame, channel: str, hour: np.ndarray | int) -> np.ndarray:
        """Probability that each customer of `truth` opens a touch on `channel` sent at local `hour`."""
        distance = np.abs(np.asarray(hour) - truth["best_contact_hour"].to_numpy()) % 24
        distance = np.minimum(distance, 24 - distance)
        timing = self.hour_floor + (1 - self.hour_floor) * np.exp(-(distance**2) / (2 * self.hour_sd**2))
        preferred = truth["preferred_channel"].to_numpy() == channel
        p = self.base_open[channel] * np.where(preferred, self.preferred_multiplier, 1.0) * timing
        reach = self.reachable_if[channel]
        reachable = truth[reach].to_numpy() if reach else np.ones(truth.height, dtype=bool)
        return np.where(reachable, np.minimum(p, self.max_open), 0.0)

    def p_convert(self, truth: pl.DataFrame, opened: np.ndarray | bool) -> np.ndarray:
        """Probability of buying within `convert_window_days`, touched and opened or not."""
        base = truth["p_convert_untouched"].to_numpy()
        return np.asarray(np.clip(base + np.asarray(opened, dtype=np.float64) * truth["uplift"].to_numpy(), 0.0, 1.0))

    def to_json(self, *, seed: int) -> str:
        formulas = {
            "p_open": "min(max_open, base_open[c] * (preferred_multiplier if c == preferred_channel else 1) * "
            "(hour_floor + (1 - hour_floor) * exp(-d(h, best_contact_hour)^2 / (2 hour_sd^2)))) if reachable "
            "on c else 0; d = circular distance in hours, h = local send hour (UTC+8)",
            "p_convert": "clip(p_convert_untouched + opened * uplift, 0, 1), over convert_window_days",
            "p_convert_untouched": f"{CONVERT_SCALE} * wealth_propensity",
            "uplift": f"{UPLIFT_SCALE} * persuadability * (1 - wealth_propensity) - "
            f"{SLEEPING_DOG_PENALTY} * sleeping_dog",
            "churn_hazard": f"{BASE_HAZARD} * exp(0.5 N(0,1) - 0.4 z_engagement) per day",
        }
        return json.dumps({"seed": seed, "version": 1, "formulas": formulas, **asdict(self)}, indent=2)

    @classmethod
    def load(cls, path: Path) -> ResponseModel:
        values = json.loads(path.read_text())
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in names})


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def latent(seed: int, population: pl.DataFrame, window: Window) -> pl.DataFrame:
    """The latent traits of every customer of `population` (same order)."""
    rng = stream(seed, "truth")
    n = population.height
    age = population["age"].to_numpy()
    active = population["status"].to_numpy() == "active"
    dormant = population["status"].to_numpy() == "dormant"
    z_aum = population["z_aum"].to_numpy()
    tier = population["city_tier"].to_numpy()
    reach = _reachability(rng, population, active, dormant)
    z_engagement = rng.normal(0, 1, n)
    engagement = np.where(reach["app_user"], 0.048 * np.exp(0.9 * z_engagement + 0.1 * np.clip(z_aum, -2, 2)), 0.0)
    score = (
        -1.6
        + 0.8 * z_aum
        + 0.35 * (population["risk"].to_numpy() - 3)
        + 0.25 * (tier <= 2)
        + 0.3 * ((age >= 30) & (age < 60))
        + rng.normal(0, 0.7, n)
    )
    propensity = _sigmoid(score) * np.where(active, 1.0, 0.2)
    persuadability = rng.beta(2, 6, n)
    sleeping_dog = rng.random(n) < 0.05
    hazard = BASE_HAZARD * np.exp(0.5 * rng.normal(0, 1, n) - 0.4 * z_engagement)
    can_churn = active & (population["aum_target"].to_numpy() > 1_000)
    churn_after = np.floor(rng.exponential(1.0 / hazard))
    churn_day = np.where(can_churn & (churn_after < window.days), window.first + churn_after, np.nan)
    frame = pl.DataFrame(
        {
            "cust_no": population["cust_no"],
            **reach,
            "engagement": engagement,
            "wealth_propensity": propensity,
            "p_convert_untouched": CONVERT_SCALE * propensity,
            "persuadability": persuadability,
            "sleeping_dog": sleeping_dog,
            "uplift": UPLIFT_SCALE * persuadability * (1 - propensity) - SLEEPING_DOG_PENALTY * sleeping_dog,
            "churn_hazard": np.where(can_churn, hazard, 0.0),
            "churn_day": pl.Series(churn_day).fill_nan(None).cast(pl.Int64),
            "best_contact_hour": _best_hours(rng, age),
        }
    )
    frame = frame.with_columns(preferred_channel=_preferred_channels(rng, population, frame))
    reinvest = np.clip(0.35 + 0.5 * propensity - 300 * frame["churn_hazard"].to_numpy(), 0.05, 0.95)
    return frame.with_columns(reinvest_probability=pl.Series(reinvest))


def _reachability(
    rng: np.random.Generator, population: pl.DataFrame, active: np.ndarray, dormant: np.ndarray
) -> dict[str, np.ndarray]:
    n = population.height
    age = population["age"].to_numpy()
    z_aum = np.clip(population["z_aum"].to_numpy(), -2, 2)
    p_app = _sigmoid(2.2 - 0.07 * (age - 35) + 0.3 * (population["city_tier"].to_numpy() <= 2) + 0.3 * z_aum)
    live = np.where(active, 1.0, np.where(dormant, 0.05, 0.0))
    return {
        "app_user": rng.random(n) < p_app * live,
        "wechat_follower": rng.random(n) < 0.45 * live,
        "mini_program_user": rng.random(n) < np.where(age < 50, 0.3, 0.15) * live,
        "h5_visitor": rng.random(n) < 0.12 * live,
        "has_rm": population["rm_id"].is_not_null().to_numpy(),
        "has_email": population["email"].is_not_null().to_numpy(),
    }


def _best_hours(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    group = np.where(age < 35, 0, np.where(age < 60, 1, 2))
    peaks = [HOUR_PEAKS[name] for name in ("young", "middle", "senior")]
    weights = np.array([[w for _, w in p] for p in peaks])[group]
    means = np.array([[h for h, _ in p] for p in peaks])[group]
    picked = choice_rows(rng, weights)
    hour = np.round(rng.normal(means[np.arange(len(age)), picked], 1.0))
    return np.asarray(np.clip(hour, 6, 23).astype(np.int64))


def _preferred_channels(rng: np.random.Generator, population: pl.DataFrame, truth: pl.DataFrame) -> pl.Series:
    age = population["age"].to_numpy()
    wealthy = population["aum_target"].to_numpy() >= 500_000
    weights = np.column_stack(
        [
            np.where(truth["app_user"].to_numpy(), 3.0, 0.0),
            1.5 + 2.0 * (age > 55),
            np.where(truth["wechat_follower"].to_numpy(), 2.5, 0.0),
            np.where(truth["has_rm"].to_numpy(), 2.0 + 2.0 * wealthy, 0.0),
            np.where(truth["has_email"].to_numpy(), 0.2, 0.0),
            0.5 + 1.0 * (age > 60) + 1.0 * wealthy,
        ]
    )
    return pl.Series(CHANNELS).gather(choice_rows(rng, weights))
