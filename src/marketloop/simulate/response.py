"""How the simulated customers answer a campaign: who opens a touch and who converts, from the hidden ground truth.

The simulator's bank has a response model (`truth.ResponseModel`) but no
campaign of its own: `respond` plays one. Given the latent traits of the
customers a campaign targeted (`truth.latent` rows) and which of them were
touched on a channel, it draws, with a seeded generator:

    opened    ~ Bernoulli(p_open(c, h))            for touched customers, else False
    converted ~ Bernoulli(p_convert(opened))       for every customer, touched or held out

over the model's conversion window (`ResponseModel.convert_window_days`).
The true effect it implies is returned with the draws: the expected
intent-to-treat difference in conversion rate between touching these
customers and holding them out,

    true_effect = mean over customers of p_open(c, h) · (p_convert(opened) − p_convert(not opened)),

which is what a holdout experiment over the same customers estimates. Only
the simulator and evaluation code read the truth; the platform sees the
opens and conversions as receipts and events, as it would see a bank's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from marketloop.simulate.streams import stream
from marketloop.simulate.truth import ResponseModel


@dataclass(frozen=True, kw_only=True)
class Responses:
    """Per customer, in the order given: the draws, and the effect the model implies."""

    opened: np.typing.NDArray[np.bool_]
    converted: np.typing.NDArray[np.bool_]
    true_effect: float  # expected ITT lift in the conversion rate of touching versus holding out


def respond(
    truth: pl.DataFrame,
    touched: np.typing.NDArray[np.bool_],
    channel: str,
    *,
    seed: int,
    hour: np.typing.NDArray[np.int64] | int | None = None,
    model: ResponseModel | None = None,
) -> Responses:
    """Draw opens and conversions of the customers of `truth`; `touched` marks who got the touch on `channel`.

    `hour` is the local hour the touch reached each customer; None: their best contact hour
    (an in-app message is seen when the customer opens the app).
    """
    model = model or ResponseModel()
    if len(touched) != truth.height:
        raise ValueError(f"{len(touched)} touched flags for {truth.height} customers")
    rng = stream(seed, "response")
    p_open = model.p_open(truth, channel, truth["best_contact_hour"].to_numpy() if hour is None else hour)
    opened = np.asarray(touched, dtype=bool) & (rng.random(truth.height) < p_open)
    converted = rng.random(truth.height) < model.p_convert(truth, opened)
    gain = model.p_convert(truth, np.ones(truth.height, dtype=bool)) - model.p_convert(truth, False)
    return Responses(opened=opened, converted=converted, true_effect=float((p_open * gain).mean()))
