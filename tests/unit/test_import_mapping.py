"""The import mapping document: every problem is found before a data row is read, and named."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketloop.core.bank import BANK_TABLES, LogicalType
from marketloop.core.errors import MarketloopError
from marketloop.core.personal import ID_CARD, PHONE
from marketloop.profiles.mapping import load_mapping, parse_mapping

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "import"

MINIMAL = """
table: customers
columns:
  cust_no: 客户号
  branch_id: 所属机构
  open_date: 开户日期
"""


def problems(text: str, table: str | None = None) -> dict[str, str]:
    with pytest.raises(MarketloopError) as raised:
        parse_mapping(text, table=table)
    assert raised.value.kind == "invalid"
    return {e.pointer: e.detail for e in raised.value.errors}


@pytest.mark.parametrize("table", [t.name for t in BANK_TABLES])
def test_every_bank_table_has_an_example_mapping_that_checks(table: str) -> None:
    mapping = load_mapping(EXAMPLES / f"{table}.yaml", table)
    assert mapping.table.name == table
    assert {c.name for c in mapping.table.columns if c.required} <= {c.target for c in mapping.columns}


def test_shorthand_and_options() -> None:
    mapping = parse_mapping(
        MINIMAL
        + """
  phone: 手机号
  id_card: {from: 证件号码}
  gender: {from: 性别, map: {男: M, 女: F}}
  status: {default: active}
encoding: GBK
delimiter: tab
dedupe: {keep: first}
null_values: ["NULL", "\\\\N"]
"""
    )
    assert mapping.encoding == "gbk"
    assert mapping.delimiter == "\t"
    assert mapping.keep == "first"
    assert mapping.null_values == ("NULL", "\\N")
    assert mapping.sources == ("客户号", "所属机构", "开户日期", "手机号", "证件号码", "性别")
    assert mapping.column("open_date").type is LogicalType.DATE  # type: ignore[union-attr]
    assert mapping.column("phone").personal is PHONE  # type: ignore[union-attr]
    assert mapping.column("id_card").personal is ID_CARD  # type: ignore[union-attr]
    assert mapping.column("gender").values == (("男", "M"), ("女", "F"))  # type: ignore[union-attr]
    assert mapping.derived_from_id_card == ("gender", "birth_date")


def test_unknown_and_computed_target_columns_are_named() -> None:
    found = problems(MINIMAL + "  nickname: 昵称\n  phone_hash: 手机号\n")
    assert "customers has no column 'nickname'" in found["columns.nickname"]
    assert "map the source column to `phone`" in found["columns.phone_hash"]


def test_missing_required_columns_are_named() -> None:
    found = problems("table: customers\ncolumns:\n  cust_no: 客户号\n")
    assert set(found) == {"columns.branch_id", "columns.open_date"}
    assert "required column open_date is not mapped" in found["columns.open_date"]


def test_bad_options_are_all_reported_together() -> None:
    found = problems(
        MINIMAL
        + """
  city: {from: 城市, format: "%Y"}
  birth_date: {from: 出生日期, format: "yyyymmdd"}
  fraud_flag: {from: 反欺诈, map: {yes: true}}
  rm_id: {}
encoding: latin-1
dedupe: {keep: newest}
colums: {}
"""
    )
    assert found["encoding"].startswith("unknown encoding 'latin-1'")
    assert "'newest' is not one of last, first" in found["dedupe.keep"]
    assert found["colums"] == "unknown key"
    assert found["columns.city.format"] == "only dates and timestamps take a format"
    assert "not a strptime format" in found["columns.birth_date.format"]
    assert "YAML reads them as booleans" in found["columns.fraud_flag.map"]
    assert "needs `from:`" in found["columns.rm_id"]


def test_table_must_exist_and_match_the_command() -> None:
    assert "unknown table 'clients'" in problems(MINIMAL.replace("customers", "clients"))["table"]
    assert "is for 'customers', not 'accounts'" in problems(MINIMAL, table="accounts")["table"]


def test_a_declared_type_must_be_the_bank_models() -> None:
    found = problems(MINIMAL + "  city_tier: {from: 城市等级, type: text}\n")
    assert "is integer in the bank model" in found["columns.city_tier.type"]


def test_defaults_must_be_values_of_their_column() -> None:
    found = problems(
        MINIMAL
        + "  status: {default: open}\n  risk_assessed_at: {default: someday}\n  phone: {from: 手机, default: x}\n"
    )
    assert "'open' is not one of active, dormant, closed" in found["columns.status.default"]
    assert "'someday' is not a date" in found["columns.risk_assessed_at.default"]
    assert "takes no default" in found["columns.phone.default"]


def test_an_unknown_time_zone_is_refused() -> None:
    assert "unknown time zone 'Mars/Olympus'" in problems(MINIMAL + "timezone: Mars/Olympus\n")["timezone"]


def test_not_yaml_and_not_a_document() -> None:
    with pytest.raises(MarketloopError, match="not valid YAML"):
        parse_mapping("table: [customers\n")
    with pytest.raises(MarketloopError, match="not a mapping document"):
        parse_mapping("- a\n- b\n")


def test_missing_source_columns_name_them_and_the_header() -> None:
    mapping = parse_mapping(MINIMAL)
    with pytest.raises(MarketloopError) as raised:
        mapping.check_header(["客户号", "机构"], "customers.csv")
    assert raised.value.code == "import.missing-columns"
    assert "missing 所属机构, 开户日期" in raised.value.detail
    assert "the file has: 客户号, 机构" in raised.value.detail
    assert [e.pointer for e in raised.value.errors] == ["columns.branch_id.from", "columns.open_date.from"]


def test_an_unreadable_mapping_file_is_an_invalid_error(tmp_path: Path) -> None:
    with pytest.raises(MarketloopError, match="cannot read mapping"):
        load_mapping(tmp_path / "nope.yaml")
