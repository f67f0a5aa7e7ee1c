"""Each cleaning rule of the importer, on small frames: trim, null values, map, cast, default, personal fields,
allowed values, required columns; a value that cannot be loaded is a reason naming the column and the value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest

from marketloop.profiles.cleaning import REASON, clean
from marketloop.profiles.mapping import parse_mapping
from marketloop.profiles.reading import LINE
from marketloop.testing.bank_files import id_card, wrong_check_digit

REQUIRED = {"客户号": "C1", "机构": "B1", "开户": "2020-01-02"}


def cleaned(
    columns: str, source: dict[str, list[object]], *, table: str = "customers", extra: str = ""
) -> pl.DataFrame:
    """`clean` of `source` (one list per source column; the customers' required columns are added)."""
    mapping = parse_mapping(f"table: {table}\n{extra}\ncolumns:\n{columns}")
    n = len(next(iter(source.values())))
    if table == "customers":
        columns_needed = {k: [v] * n for k, v in REQUIRED.items() if k not in source}
        source = columns_needed | source
    frame = pl.DataFrame(source).with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))
    return clean(frame, mapping)


BASE = "  cust_no: 客户号\n  branch_id: 机构\n  open_date: 开户\n"


def test_trim_and_empty_values_become_null() -> None:
    out = cleaned(
        BASE + "  city: 城市\n  occupation: {from: 职业, trim: false}\n",
        {"城市": ["  杭州\u3000", "   "], "职业": [" 教师 ", ""]},
    )
    assert out["city"].to_list() == ["杭州", None]
    assert out["occupation"].to_list() == [" 教师 ", None]
    assert out[REASON].to_list() == [None, None]


def test_null_values_option() -> None:
    out = cleaned(BASE + "  city: 城市\n", {"城市": ["NULL", "\\N", "杭州"]}, extra='null_values: ["NULL", "\\\\N"]')
    assert out["city"].to_list() == [None, None, "杭州"]


def test_map_then_allowed_values() -> None:
    out = cleaned(BASE + "  gender: {from: 性别, map: {男: M, 女: F}}\n", {"性别": ["男", "女", "未知", "M"]})
    assert out["gender"].to_list() == ["M", "F", "未知", "M"]
    assert out[REASON].to_list() == [None, None, "gender (性别): '未知' is not one of M, F", None]


def test_default_fills_empty_values_only() -> None:
    out = cleaned(
        BASE + "  status: {from: 状态, default: active}\n  vip_level: {default: standard}\n", {"状态": [None, "closed"]}
    )
    assert out["status"].to_list() == ["active", "closed"]
    assert out["vip_level"].to_list() == ["standard", "standard"]


def test_dates_with_a_format_and_without() -> None:
    columns = BASE + "  birth_date: {from: 生日, format: '%Y%m%d'}\n  risk_assessed_at: 评估日\n"
    out = cleaned(columns, {"生日": ["19900307", "1990-03-07"], "评估日": ["2023/05/06", "20230506"]})
    assert out["birth_date"].to_list() == [date(1990, 3, 7), None]
    assert out["risk_assessed_at"].to_list() == [date(2023, 5, 6), date(2023, 5, 6)]
    assert out[REASON].to_list() == [None, "birth_date (生日): '1990-03-07' is not a date in the form %Y%m%d"]


def test_impossible_dates_are_reasons_not_crashes() -> None:
    out = cleaned(BASE, {"开户": ["2023-02-30", "2023-13-01", "yesterday"]})
    assert out["open_date"].to_list() == [None, None, None]
    assert out[REASON].to_list() == [
        "open_date (开户): '2023-02-30' is not a date",
        "open_date (开户): '2023-13-01' is not a date",
        "open_date (开户): 'yesterday' is not a date",
    ]


def test_numbers_booleans_and_their_failures() -> None:
    columns = BASE + "  city_tier: 城市等级\n  fraud_flag: 欺诈\n"
    out = cleaned(columns, {"城市等级": ["1,000", "2.0", "2.5", "二"], "欺诈": ["是", "N", "0", "maybe"]})
    assert out["city_tier"].to_list() == [1000, 2, None, None]
    assert out["fraud_flag"].to_list() == [True, False, False, None]
    assert out[REASON].to_list() == [
        None,
        None,
        "city_tier (城市等级): '2.5' is not an integer",
        "city_tier (城市等级): '二' is not an integer; fraud_flag (欺诈): 'maybe' is not true/false (是/否, Y/N, 1/0)",
    ]


def test_amounts_and_rates() -> None:
    columns = "  product_code: 代码\n  name: 名称\n  product_type: 类型\n  min_amount: 起购\n  expected_rate: 基准\n"
    source = {
        "代码": ["P1", "P2"],
        "名称": ["a", "b"],
        "类型": ["wealth", "fund"],
        "起购": ["10,000.50", "¥5"],
        "基准": ["0.032", "3.2%"],
    }
    out = cleaned(columns, source, table="products")
    assert out["min_amount"].to_list() == [Decimal("10000.50"), None]
    assert out["expected_rate"].to_list() == [0.032, None]
    assert "min_amount (起购): '¥5' is not an amount" in out[REASON][1]
    assert "expected_rate (基准): '3.2%' is not a number" in out[REASON][1]


def test_timestamps_are_read_in_the_mapping_time_zone_and_stored_in_utc() -> None:
    columns = "  txn_id: 流水\n  cust_no: 客户\n  ts: 时间\n  amount: 金额\n  direction: 方向\n"
    source = {
        "流水": ["T1", "T2"],
        "客户": ["C1", "C1"],
        "时间": ["2024-03-01 09:15:22", "2024-03-01"],
        "金额": ["1", "2"],
        "方向": ["in", "out"],
    }
    out = cleaned(columns, source, table="transactions", extra="timezone: Asia/Shanghai")
    assert out["ts"].to_list() == [
        datetime(2024, 3, 1, 1, 15, 22, tzinfo=UTC),
        datetime(2024, 2, 29, 16, 0, tzinfo=UTC),
    ]


def test_required_columns_must_have_a_value() -> None:
    out = cleaned(BASE, {"客户号": ["C1", None, "  "]})
    assert out[REASON].to_list() == [None, "cust_no (客户号) is missing", "cust_no (客户号) is missing"]


def test_phone_numbers_are_normalised_or_refused() -> None:
    raw = [
        "138 0013 8000",
        "+86 139-0013-8000",
        "0086(137)00138000",
        "8615800138000",
        None,
        "0571-88880000",
        "12345678901",
    ]
    out = cleaned(BASE + "  phone: 手机号\n", {"手机号": raw})
    assert out["phone"].to_list() == ["13800138000", "13900138000", "13700138000", "15800138000", None, None, None]
    assert out[REASON].to_list()[4:] == [
        None,
        "phone (手机号) is not a mainland mobile number",
        "phone (手机号) is not a mainland mobile number",
    ]


def test_id_numbers_are_validated_with_the_reason() -> None:
    good = id_card("19900307", sequence="123")
    impossible = id_card("19900230")  # a valid check digit over a 30 February
    raw = [
        good.lower()[:-1] + good[-1].lower(),
        wrong_check_digit(good),
        impossible,
        "33010619900307",
        "330106900307123",
        None,
    ]
    out = cleaned(BASE + "  id_card: 证件号码\n", {"证件号码": raw})
    assert out["id_card"].to_list() == [good, None, None, None, None, None]
    assert out[REASON].to_list() == [
        None,
        "id_card (证件号码) has a wrong check digit (GB 11643)",
        "id_card (证件号码) has an impossible birth date 19900230",
        "id_card (证件号码) is not an ID number (18 digits, the last may be X)",
        "id_card (证件号码) is a 15-digit first-generation ID number; 18 digits are required",
        None,
    ]


def test_gender_and_birth_date_come_from_the_id_number_when_the_file_has_none() -> None:
    man, woman = id_card("19850312", sequence="123"), id_card("19900721", sequence="246")
    out = cleaned(BASE + "  id_card: 证件号码\n", {"证件号码": [man, woman]})
    assert out["gender"].to_list() == ["M", "F"]
    assert out["birth_date"].to_list() == [date(1985, 3, 12), date(1990, 7, 21)]

    mapped = BASE + "  id_card: 证件号码\n  gender: {from: 性别, map: {男: M, 女: F}}\n"
    out = cleaned(mapped, {"证件号码": [man, woman], "性别": ["男", None]})
    assert out["gender"].to_list() == ["M", "F"]  # the empty one filled from the ID number


def test_emails_are_lower_cased_or_refused() -> None:
    out = cleaned(BASE + "  email: 邮箱\n", {"邮箱": [" Zhang.Wei@Example.COM ", "not-an-email", None]})
    assert out["email"].to_list() == ["zhang.wei@example.com", None, None]
    assert out[REASON].to_list() == [None, "email (邮箱) is not an email address", None]


@pytest.mark.parametrize(
    ("name", "family"), [("张三", "张"), ("欧阳娜娜", "欧阳"), ("司马光", "司马"), ("欧文", "欧"), ("Li Lei", "L")]
)
def test_family_name_keeps_compound_surnames(name: str, family: str) -> None:
    out = cleaned(BASE + "  name: 姓名\n", {"姓名": [f" {name} "]})
    assert out["name"].to_list() == [name]
    assert out["name_prefix"].to_list() == [family]


def test_several_reasons_in_one_row_are_all_given() -> None:
    out = cleaned(
        BASE + "  phone: 手机号\n  gender: 性别\n", {"手机号": ["110"], "开户": ["2020-02-31"], "性别": ["X"]}
    )
    assert out[REASON].to_list() == [
        "open_date (开户): '2020-02-31' is not a date; phone (手机号) is not a mainland mobile number; "
        "gender (性别): 'X' is not one of M, F"
    ]


def test_typed_parquet_columns_are_converted_not_parsed() -> None:
    mapping = parse_mapping("table: customers\ncolumns:\n" + BASE + "  city_tier: 等级\n  birth_date: 生日\n")
    frame = pl.DataFrame(
        {
            LINE: [1],
            "客户号": ["C1"],
            "机构": ["B1"],
            "开户": [datetime(2020, 1, 2, 10, 0)],
            "等级": [2],
            "生日": [date(1990, 3, 7)],
        }
    )
    out = clean(frame, mapping)
    assert out.row(0, named=True) | {REASON: None} == {
        LINE: 1,
        "cust_no": "C1",
        "branch_id": "B1",
        "open_date": date(2020, 1, 2),
        "city_tier": 2,
        "birth_date": date(1990, 3, 7),
        REASON: None,
    }
