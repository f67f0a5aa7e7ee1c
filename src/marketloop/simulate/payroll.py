"""Salary payroll (代发): which customers are paid through the bank, by whom, and the salary credits.

About half of employed customers aged 20–60 are payroll customers. Each
has an employer in their city (companies, or public bodies for civil
servants), a salary day (5th, 10th, 15th, 20th or 25th) and a monthly
amount (log-normal around 6,500 yuan, higher in bigger cities). About 4 %
start within the window, so their first salary arrives in it (the payroll
activation scenario); 1.5 % stop.
"""

from __future__ import annotations

import functools

import numpy as np
import polars as pl

from marketloop.core.bank import PAYROLL
from marketloop.simulate import reference as ref
from marketloop.simulate.streams import DAY_US, HOUR_US, LOCAL_OFFSET_US, Window, as_dates, choice, monthly

PAYROLL_OCCUPATIONS = (1, 2, 3, 6)  # employee, civil_servant, professional, worker
SALARY_DAYS = (5, 10, 15, 20, 25)
TIER_SALARY_SHIFT = np.array([0.0, 0.5, 0.3, 0.1, -0.1, -0.2])
EMPLOYERS_PER_CITY = 300


def employer_name(city: int, number: int) -> str:
    """The name of employer `number` of a city (deterministic, so every chunk agrees)."""
    name = ref.CITIES[city].name
    words, trades, forms = ref.EMPLOYER_WORDS, ref.EMPLOYER_TRADES, ref.EMPLOYER_FORMS
    word = words[number % len(words)]
    trade = trades[(number // len(words)) % len(trades)]
    return f"{name}{word}{trade}{forms[(number // (len(words) * len(trades))) % len(forms)]}"


EMPLOYER_TABLE_SIZE = len(ref.CITIES) * EMPLOYERS_PER_CITY


@functools.cache
def _employers() -> tuple[pl.Series, pl.Series]:
    """Ids and names of every employer: companies city by city, then public bodies city by city."""
    companies = [(c, k) for c in range(len(ref.CITIES)) for k in range(EMPLOYERS_PER_CITY)]
    bodies = [(c, p) for c in range(len(ref.CITIES)) for p in range(len(ref.PUBLIC_EMPLOYERS))]
    ids = [f"E{ref.CITIES[c].code}{k:04d}" for c, k in companies] + [f"G{ref.CITIES[c].code}{p:02d}" for c, p in bodies]
    names = [employer_name(c, k) for c, k in companies] + [
        f"{ref.CITIES[c].name}市{ref.PUBLIC_EMPLOYERS[p]}" for c, p in bodies
    ]
    return pl.Series(ids), pl.Series(names)


def payroll(rng: np.random.Generator, population: pl.DataFrame, window: Window) -> pl.DataFrame:
    """Payroll relationships of the chunk: rows of `payroll` plus `index`, `start_day`, `end_day`."""
    n = population.height
    age = population["age"].to_numpy()
    occupation = population["occupation_index"].to_numpy()
    eligible = np.isin(occupation, PAYROLL_OCCUPATIONS) & (age >= 20) & (age < 60)
    chosen = np.flatnonzero(eligible & (population["status"].to_numpy() == "active") & (rng.random(n) < 0.5))
    city = population["city_index"].to_numpy()[chosen]
    public = occupation[chosen] == 2
    number = rng.integers(0, EMPLOYERS_PER_CITY, chosen.size)
    public_number = rng.integers(0, len(ref.PUBLIC_EMPLOYERS), chosen.size)
    table_index = np.where(
        public,
        EMPLOYER_TABLE_SIZE + city * len(ref.PUBLIC_EMPLOYERS) + public_number,
        city * EMPLOYERS_PER_CITY + number,
    )
    ids, names = (column.gather(table_index) for column in _employers())
    tier = population["city_tier"].to_numpy()[chosen]
    amount = np.round(6_500 * np.exp(TIER_SALARY_SHIFT[tier] + rng.normal(0, 0.45, chosen.size)), -1)
    opened = population["open_day"].to_numpy()[chosen]
    new = rng.random(chosen.size) < 0.04
    start = np.where(
        new, rng.integers(window.first, window.last + 1, chosen.size), opened + rng.integers(0, 400, chosen.size)
    )
    start = np.maximum(np.where(new, start, np.minimum(start, window.first - 30)), opened)
    ends = rng.random(chosen.size) < 0.015
    end = np.where(ends, rng.integers(window.first, window.last + 1, chosen.size), -1)
    frame = (
        population[chosen]
        .select("index", "row", "cust_no")
        .with_columns(
            employer_id=pl.Series(ids),
            employer_name=pl.Series(names),
            salary_day=pl.Series(np.array(SALARY_DAYS)[choice(rng, [2, 3, 3, 1, 2], chosen.size)]),
            monthly_amount=pl.Series(amount),
            start_day=pl.Series(start),
            end_day=pl.Series(end).replace(-1, None),
        )
    )
    return frame.with_columns(start_date=as_dates(frame["start_day"]), end_date=as_dates(frame["end_day"]))


def payroll_rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(PAYROLL.names)


def salary_credits(rng: np.random.Generator, frame: pl.DataFrame, window: Window) -> pl.DataFrame:
    """One salary credit per payroll customer and salary day in the window (and within the relationship)."""
    grid = monthly(frame, "salary_day", window)
    due = grid.filter(
        pl.col("day").is_between(pl.max_horizontal(pl.lit(window.first), "start_day"), window.last)
        & (pl.col("end_day").is_null() | (pl.col("day") <= pl.col("end_day")))
    )
    local = 9 + rng.random(due.height) * 2
    return due.select(
        "index",
        "row",
        "cust_no",
        "day",
        ts=pl.col("day") * DAY_US + pl.Series((local * HOUR_US).astype(np.int64)) - LOCAL_OFFSET_US,
        amount=(pl.col("monthly_amount") * pl.Series(rng.uniform(0.95, 1.1, due.height))).round(2),
        counterparty_name="employer_name",
    )
