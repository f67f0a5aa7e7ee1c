"""Reading import files: strict UTF-8, declared GBK / GB18030, Parquet; clear errors for files that cannot be read."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from marketloop.core.errors import MarketloopError
from marketloop.profiles.mapping import parse_mapping
from marketloop.profiles.reading import LINE, read_header, read_rows
from marketloop.testing.bank_files import write_csv

HEADER = ["客户号", "姓名", "所属机构"]
ROWS = [["C1", "张伟", "杭州分行"], ["C2", "欧阳娜娜", "宁波分行"]]


def mapping(encoding: str = "utf-8", extra: str = "") -> str:
    columns = "  branch_id: 客户号\n  name: 姓名\n  level: {default: 0}\n"
    return f"table: branches\nencoding: {encoding}\n{extra}\ncolumns:\n{columns}"


def read(path: Path, text: str) -> pl.DataFrame:
    parsed = parse_mapping(text)
    return read_rows(path, parsed, read_header(path, parsed))


def test_utf8_rows_as_text_with_line_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", HEADER, [["007", "张伟", "x"], ["008", "", "y"]])
    rows = read(path, mapping())
    assert rows.columns == [LINE, *HEADER]
    assert rows[LINE].to_list() == [2, 3]
    assert rows["客户号"].to_list() == ["007", "008"]  # leading zeros kept: every value is text
    assert rows["姓名"].to_list() == ["张伟", None]


def test_a_utf8_bom_and_crlf_and_padded_headers_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes("\ufeff 客户号 ,姓名,所属机构\r\nC1,张伟,x\r\n".encode())
    assert read(path, mapping())["姓名"].to_list() == ["张伟"]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_declared_gbk_is_decoded(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "b.csv", HEADER, ROWS, encoding=encoding)
    assert read(path, mapping(encoding))["姓名"].to_list() == ["张伟", "欧阳娜娜"]


def test_undeclared_gbk_says_where_and_suggests_the_encoding(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "b.csv", ["branch", "name", "x"], [["C1", "ok", "x"], ["C2", "欧阳娜娜", "y"]], encoding="gbk"
    )
    with pytest.raises(MarketloopError) as raised:
        read(path, mapping().replace("客户号", "branch").replace("姓名", "name"))
    assert raised.value.code == "import.encoding"
    assert raised.value.title == f"{path} is not valid UTF-8"
    assert "line 3 has bytes 0xd1 0xf4 that are not UTF-8" in raised.value.detail  # 欧 happens to be valid UTF-8
    assert "set `encoding: gbk` in the mapping" in raised.value.detail


def test_a_gbk_header_is_refused_before_the_rows_are_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", HEADER, ROWS, encoding="gbk")
    with pytest.raises(MarketloopError, match="line 1 has bytes"):
        read_header(path, parse_mapping(mapping()))


def test_utf8_declared_as_gbk_is_refused_not_garbled(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", HEADER, ROWS)
    with pytest.raises(MarketloopError) as raised:
        read(path, mapping("gbk"))
    assert raised.value.title == f"{path} is not valid GBK"
    assert "the file reads as UTF-8: set `encoding: utf-8`" in raised.value.detail

    decodable = write_csv(tmp_path / "c.csv", ["branch", "name", "x"], [["C1", "张伟", "x"]])  # also valid GBK bytes
    with pytest.raises(MarketloopError) as raised:
        read(decodable, mapping("gbk").replace("客户号", "branch").replace("姓名", "name"))
    assert raised.value.title == f"{decodable} is declared GBK but is UTF-8 text"
    assert "remove `encoding: gbk`" in raised.value.detail


def test_bytes_of_no_known_encoding(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xff\xfe\x00\x01,a\n")
    with pytest.raises(MarketloopError, match="re-export the file as UTF-8"):
        read_header(path, parse_mapping(mapping()))


def test_other_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_text("客户号|姓名|所属机构\nC1|张伟|x\n", encoding="utf-8")
    assert read(path, mapping(extra='delimiter: "|"'))["姓名"].to_list() == ["张伟"]


def test_a_line_with_too_many_fields_is_named(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("客户号,姓名,所属机构\nC1,张伟,x\nC2,王芳,y,extra\n", encoding="utf-8")
    with pytest.raises(MarketloopError, match="line 3 has 4 fields, the header has 3"):
        read(path, mapping())


def test_empty_file_missing_file_and_repeated_columns(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(MarketloopError, match="has no header line"):
        read_header(empty, parse_mapping(mapping()))
    with pytest.raises(MarketloopError, match="cannot read"):
        read_header(tmp_path / "missing.csv", parse_mapping(mapping()))
    repeated = write_csv(tmp_path / "r.csv", ["客户号", "姓名", "姓名"], [])
    with pytest.raises(MarketloopError, match="repeated: 姓名"):
        read_header(repeated, parse_mapping(mapping()))


def test_a_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", HEADER, [])
    assert read(path, mapping()).height == 0


def test_parquet_keeps_its_types(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    pl.DataFrame({"客户号": ["C1"], "姓名": ["张伟"], "开立": [date(2020, 1, 2)]}).write_parquet(path)
    text = mapping()
    assert read_header(path, parse_mapping(text)) == ["客户号", "姓名", "开立"]
    rows = read(path, text)
    assert rows[LINE].to_list() == [1]
    assert rows.schema["开立"] == pl.Date


def test_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    path.write_text("not parquet")
    with pytest.raises(MarketloopError, match=r"cannot read .* as Parquet"):
        read_header(path, parse_mapping(mapping()))
