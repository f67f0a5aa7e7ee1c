"""Reading an uploaded customer list (导入标签): a CSV or Parquet file of `cust_no` and, optionally, `value`.

Without a `value` column every listed customer gets "true" (a yes / no
tag). Rows without a customer number are reported by line, not dropped
silently; a customer listed twice keeps its last value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from marketloop.tags.definitions import TRUE, invalid


@dataclass(frozen=True, kw_only=True)
class CustomerList:
    values: dict[str, str]  # cust_no → value
    bad_lines: list[int]  # 1-based data lines without a customer number or value


def read_customer_list(path: Path) -> CustomerList:
    """The file's customers and values; raises an `invalid` error for a file that is not such a list."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path).cast(pl.String)
        else:
            frame = pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise invalid("unreadable-list", f"Cannot read {path.name}", str(error)) from None
    if "cust_no" not in frame.columns:
        raise invalid("bad-list", f"{path.name} has no cust_no column", f"columns: {', '.join(frame.columns)}")
    has_value = "value" in frame.columns
    values: dict[str, str] = {}
    bad: list[int] = []
    rows = zip(frame["cust_no"], frame["value"] if has_value else [TRUE] * frame.height, strict=True)
    for line, (cust_no, value) in enumerate(rows, start=1):
        if not cust_no or not str(cust_no).strip() or not value or not str(value).strip():
            bad.append(line)
            continue
        values[str(cust_no).strip()] = str(value).strip()
    return CustomerList(values=values, bad_lines=bad)
