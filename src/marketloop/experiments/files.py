"""Reading an A/B table from a CSV or Parquet file (polars), with a readable error when it cannot be read."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from marketloop.core.errors import ErrorKind, MarketloopError

_PARQUET = (".parquet", ".pq")


def read_table(path: Path) -> pl.DataFrame:
    """The whole file as a frame; CSV types are inferred over every row (so a late text value is seen)."""
    if not path.is_file():
        raise _unreadable(path, "no such file")
    try:
        if path.suffix.lower() in _PARQUET:
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema_length=None, encoding="utf8")
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        raise _unreadable(path, str(error).splitlines()[0] if str(error) else type(error).__name__) from None


def _unreadable(path: Path, reason: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="experiments.unreadable-file",
        title="Cannot read the data file",
        detail=f"{path}: {reason} (CSV with a header line, or Parquet)",
    )
