"""Reading an import file, CSV or Parquet, into a frame of its source columns.

Owns the encoding rules: UTF-8 is strict, and bytes that are not UTF-8 are an
error that says on which line and suggests the encoding the file most likely
has (GBK is common in core-banking exports); declared GBK / GB18030 is
decoded exactly, and a file declared GBK that is really UTF-8 is refused
rather than read as mojibake. Every CSV value is read as text, so casting
(and its per-row failures) belongs to the cleaning stage.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import polars as pl

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.profiles.mapping import ImportMapping

LINE = "_line"  # 1-based line of a CSV row (the header is line 1); for Parquet, the row number
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CODEC_NAMES = {"utf-8": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}
T = TypeVar("T")


def file_format(path: Path, mapping: ImportMapping) -> str:
    """`csv` or `parquet`: as the mapping says, else by the file name."""
    if mapping.format is not None:
        return mapping.format
    return "parquet" if path.suffix.lower() in _PARQUET_SUFFIXES else "csv"


def read_header(path: Path, mapping: ImportMapping) -> list[str]:
    """The file's column names, read without reading its rows."""
    if file_format(path, mapping) == "parquet":
        return list(_parquet_call(path, lambda: pl.read_parquet_schema(path)))
    first = _read_bytes(path, limit=1 << 20).split(b"\n", 1)[0]
    line = _decode(first, mapping.encoding, str(path)).lstrip("\ufeff").rstrip("\r")
    if not line.strip():
        raise _invalid("import.empty-file", f"{path} has no header line", "the first line must name the columns")
    header = [name.strip() for name in next(csv.reader([line], delimiter=mapping.delimiter))]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise _invalid("import.header", f"{path} repeats column names", f"repeated: {', '.join(repeated)}")
    return header


def read_rows(path: Path, mapping: ImportMapping, header: list[str]) -> pl.DataFrame:
    """Every row of the file with its `_line`; CSV values as text, Parquet values as typed in the file."""
    if file_format(path, mapping) == "parquet":
        rows = _parquet_call(path, lambda: pl.read_parquet(path))
        return rows.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64))
    raw = _read_bytes(path)
    text = _decode(raw, mapping.encoding, str(path))
    data = raw if mapping.encoding == "utf-8" else text.encode("utf-8")
    try:
        rows = pl.read_csv(
            io.BytesIO(data),
            separator=mapping.delimiter,
            infer_schema=False,
            new_columns=header,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as error:
        raise _malformed(path, text, mapping.delimiter, len(header), error) from None
    return rows.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))


def _read_bytes(path: Path, limit: int = -1) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(limit)
    except OSError as error:
        raise _invalid("import.unreadable", f"cannot read {path}", error.strerror or str(error)) from None


def _parquet_call(path: Path, read: Callable[[], T]) -> T:
    try:
        return read()
    except (OSError, pl.exceptions.PolarsError) as error:
        raise _invalid("import.unreadable", f"cannot read {path} as Parquet", str(error).splitlines()[0]) from None


def _decode(raw: bytes, encoding: str, origin: str) -> str:
    try:
        text = raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as error:
        raise _encoding_error(raw, encoding, error.start, origin) from None
    if encoding != "utf-8" and not raw.isascii() and _decodes(raw, "utf-8"):
        name = _CODEC_NAMES[encoding]
        raise _invalid(
            "import.encoding",
            f"{origin} is declared {name} but is UTF-8 text",
            f"reading it as {name} would garble its Chinese text: remove `encoding: {encoding}` from the mapping",
        )
    return text


def _encoding_error(raw: bytes, encoding: str, start: int, origin: str) -> MarketloopError:
    line = raw.count(b"\n", 0, start) + 1
    shown = " ".join(f"0x{b:02x}" for b in raw[start : start + 2])
    name = _CODEC_NAMES[encoding]
    guess = next((g for g in ("gbk", "gb18030", "utf-8") if g != encoding and _decodes(raw, g)), None)
    if guess is None:
        hint = "it is not GBK, GB18030 or UTF-8 either: re-export the file as UTF-8"
    else:
        hint = f"the file reads as {_CODEC_NAMES[guess]}: set `encoding: {guess}` in the mapping"
        if guess != "utf-8":
            hint += " (Chinese core-banking exports are often GBK)"
    return _invalid(
        "import.encoding", f"{origin} is not valid {name}", f"line {line} has bytes {shown} that are not {name}; {hint}"
    )


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _malformed(path: Path, text: str, delimiter: str, width: int, error: Exception) -> MarketloopError:
    """Name the first line whose field count differs from the header's; else pass on the reader's message."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    for fields in reader:
        if len(fields) > width:
            detail = f"line {reader.line_num} has {len(fields)} fields, the header has {width}"
            return _invalid("import.malformed", f"{path} is not a well-formed CSV file", detail)
    return _invalid("import.malformed", f"{path} is not a well-formed CSV file", str(error).splitlines()[0])


def _invalid(code: str, title: str, detail: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.INVALID, code=code, title=title, detail=detail)
