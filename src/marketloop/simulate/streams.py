"""Seeded random streams and the simulated calendar, shared by every simulator module.

Each part of the simulation draws from its own stream, derived from the seed
and a name (and a chunk number), so adding draws in one module never shifts
another module's numbers, and a chunk's numbers do not depend on how many
chunks ran before it. Dates inside the simulator are integer days since
1970-01-01 (numpy / polars friendly); times are microseconds since the epoch,
UTC. The bank's local time is China Standard Time (UTC+8, no daylight
saving), so a local hour h is UTC hour h - 8.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
from numpy.random import PCG64, Generator, SeedSequence

EPOCH = date(1970, 1, 1)
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
LOCAL_OFFSET_US = 8 * HOUR_US  # Asia/Shanghai


def stream(seed: int, name: str, chunk: int = 0) -> Generator:
    """The random generator for one named part of the simulation (and one chunk of customers)."""
    return Generator(PCG64(SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()), chunk))))


def day_number(day: date) -> int:
    return (day - EPOCH).days


def day_date(number: int) -> date:
    return EPOCH + timedelta(days=number)


@dataclass(frozen=True, kw_only=True)
class Window:
    """The simulated period: `days` days ending with `end` (inclusive), as day numbers."""

    end: date
    days: int

    @property
    def last(self) -> int:
        return day_number(self.end)

    @property
    def first(self) -> int:
        return self.last - self.days + 1

    @property
    def start(self) -> date:
        return day_date(self.first)


def as_dates(days: np.ndarray | pl.Series) -> pl.Series:
    """Day numbers as a polars Date series (nulls stay null)."""
    series = days if isinstance(days, pl.Series) else pl.Series(days)
    return series.cast(pl.Int32).cast(pl.Date)


def monthly(frame: pl.DataFrame, day_of_month: str, window: Window) -> pl.DataFrame:
    """`frame` with one row per month of the window, `day` = that month's `day_of_month` (1–28) as a day number.

    Days may fall outside the window (the first and last months); callers filter.
    """
    start, end = window.start, window.end
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    grid = frame.join(pl.DataFrame(months, schema=["year", "month"], orient="row"), how="cross")
    day = pl.date(pl.col("year"), pl.col("month"), pl.col(day_of_month)).cast(pl.Int32).cast(pl.Int64)
    return grid.with_columns(day=day).drop("year", "month")


def choice(rng: Generator, weights: np.ndarray | Sequence[float], size: int) -> np.ndarray:
    """Indices drawn with the given (unnormalised) weights, vectorised."""
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
    picked = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")
    return np.asarray(np.minimum(picked, len(cumulative) - 1))


def choice_rows(rng: Generator, weights: np.ndarray) -> np.ndarray:
    """One index per row of a (rows, options) weight matrix: a categorical draw per row."""
    cumulative = np.cumsum(weights, axis=1)
    draws = rng.random(len(weights)) * cumulative[:, -1]
    return np.asarray(np.minimum((cumulative < draws[:, None]).sum(axis=1), weights.shape[1] - 1))


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_URL_SAFE = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8)
_UUID_DASHES = (8, 13, 18, 23)


def _strings(codes: np.ndarray) -> pl.Series:
    """Rows of a (rows, width) array of printable ASCII codes as one string per row."""
    width = codes.shape[1]
    return pl.Series(np.ascontiguousarray(codes).view(f"S{width}")[:, 0]).cast(pl.String)


def _nibbles(rng: Generator, size: int, length: int) -> np.ndarray:
    raw = np.frombuffer(rng.bytes(size * ((length + 1) // 2)), dtype=np.uint8)
    nibbles = np.empty(raw.size * 2, dtype=np.uint8)
    nibbles[0::2] = raw >> 4
    nibbles[1::2] = raw & 15
    return nibbles.reshape(size, -1)[:, :length]


def hex_ids(rng: Generator, size: int, length: int) -> pl.Series:
    """Random lowercase hex identifiers of `length` characters."""
    return _strings(_HEX[_nibbles(rng, size, length)])


def uuid_ids(rng: Generator, size: int) -> pl.Series:
    """Random version-4 UUID strings."""
    nibbles = _nibbles(rng, size, 32)
    nibbles[:, 12] = 4
    nibbles[:, 16] = 8 + nibbles[:, 16] % 4
    codes = np.full((size, 36), ord("-"), dtype=np.uint8)
    codes[:, [i for i in range(36) if i not in _UUID_DASHES]] = _HEX[nibbles]
    return _strings(codes)


def wechat_ids(rng: Generator, size: int) -> pl.Series:
    """28-character WeChat-style ids ("o" + 27 url-safe base64 characters), as openids and unionids look."""
    codes = _URL_SAFE[np.frombuffer(rng.bytes(size * 28), dtype=np.uint8).reshape(size, 28) % 64]
    codes[:, 0] = ord("o")
    return _strings(codes)
