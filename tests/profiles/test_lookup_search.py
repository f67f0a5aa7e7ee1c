"""Finding a customer by any identifier, and customer search with its filters, paging and masking."""

from __future__ import annotations

import pytest

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.profiles import search as search_module
from marketloop.profiles.lookup import parse_identifier
from marketloop.profiles.search import SearchQuery
from marketloop.profiles.service import ProfileService


@pytest.mark.parametrize(
    ("identifier", "cust_no"),
    [
        ("C001", "C001"),
        (" C003 ", "C003"),
        ("cust_no:C002", "C002"),
        ("13800001234", "C001"),
        ("+86 138-0000-1234", "C001"),
        ("phone:13900005678", "C002"),
        ("PHONE:0086 139 0000 5678", "C002"),
        ("user_id:C001", "C001"),
        ("anonymous_id:dev-1", "C001"),
        ("device_id:dev-1", "C001"),
    ],
)
def test_lookup_by_each_identifier_form(shared: ProfileService, identifier: str, cust_no: str) -> None:
    assert shared.resolve(identifier) == cust_no
    assert shared.profile(identifier).cust_no == cust_no


@pytest.mark.parametrize("identifier", ["C999", "13811112222", "phone:13811112222", "user_id:X999", "openid:wx:o1"])
def test_unknown_customer_is_not_found(shared: ProfileService, identifier: str) -> None:
    with pytest.raises(MarketloopError) as raised:
        shared.profile(identifier)
    assert raised.value.kind is ErrorKind.NOT_FOUND
    assert raised.value.code == "customer.not-found"


def test_not_found_does_not_echo_a_phone_in_full(shared: ProfileService) -> None:
    with pytest.raises(MarketloopError) as raised:
        shared.profile("phone:13811112222")
    assert "13811112222" not in str(raised.value)
    assert "138****2222" in str(raised.value)


@pytest.mark.parametrize("identifier", ["phone:12345", "", "x" * 300])
def test_malformed_identifier_is_invalid(shared: ProfileService, identifier: str) -> None:
    with pytest.raises(MarketloopError) as raised:
        shared.profile(identifier)
    assert raised.value.kind is ErrorKind.INVALID


def test_parse_identifier_keeps_unknown_prefixes_in_the_value() -> None:
    assert parse_identifier("openid:wx1:o-1").type == "wechat_openid"
    assert parse_identifier("openid:wx1:o-1").value == "wx1:o-1"
    assert parse_identifier("abc:def").type is None
    assert parse_identifier("abc:def").value == "abc:def"


def test_identities_listed_with_the_phone_masked(shared: ProfileService) -> None:
    identities = [(i.type, i.value) for i in shared.profile("C001").identities]
    assert identities == [("cust_no", "C001"), ("phone", "138****1234"), ("anonymous_id", "dev-1")]


def _numbers(service: ProfileService, **criteria: object) -> tuple[list[str], int]:
    result = service.search(SearchQuery(**criteria))  # type: ignore[arg-type]
    return [hit.cust_no for hit in result.items], result.total


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({}, ["C001", "C002", "C003", "C004"]),
        ({"cust_no": "C002"}, ["C002"]),
        ({"phone": "138 0000 1234"}, ["C001"]),
        ({"city": "上海"}, ["C001", "C004"]),
        ({"vip_level": "private"}, ["C003"]),
        ({"vip_level": "standard"}, ["C002", "C004"]),  # C002 has no loaded level: its AUM tier counts
        ({"risk_tolerance": "C1"}, ["C002"]),
        ({"branch_id": "B02"}, ["C002", "C003"]),
        ({"rm_id": "R01"}, ["C001", "C004"]),
        ({"min_aum": 100_000}, ["C001", "C003"]),
        ({"max_aum": 1_000}, ["C002", "C004"]),
        ({"min_aum": 1, "max_aum": 300_000}, ["C001", "C004"]),
        ({"name_prefix": "张"}, ["C001", "C004"]),
        ({"name_prefix": "张三"}, ["C001"]),
        ({"name_prefix": "张伟"}, ["C004"]),
        ({"name_prefix": "张飞"}, []),
        ({"name_prefix": "欧"}, ["C003"]),
        ({"name_prefix": "欧阳娜"}, ["C003"]),
        ({"name_prefix": "张", "city": "上海", "rm_id": "R01", "min_aum": 50_000}, ["C001"]),
    ],
)
def test_search_filters(shared: ProfileService, criteria: dict[str, object], expected: list[str]) -> None:
    assert _numbers(shared, **criteria) == (expected, len(expected))


def test_search_pages_keep_the_total(shared: ProfileService) -> None:
    assert _numbers(shared, limit=2) == (["C001", "C002"], 4)
    assert _numbers(shared, limit=2, offset=2) == (["C003", "C004"], 4)
    assert _numbers(shared, limit=2, offset=10) == ([], 4)


def test_search_results_are_masked(shared: ProfileService) -> None:
    hit = shared.search(SearchQuery(cust_no="C001")).items[0]
    assert (hit.name, hit.phone, hit.aum, hit.vip_tier) == ("张*", "138****1234", 210_000, "gold")
    revealed = shared.search(SearchQuery(cust_no="C001"), reveal=True).items[0]
    assert (revealed.name, revealed.phone) == ("张三", "13800001234")


@pytest.mark.parametrize(
    ("criteria", "pointer"),
    [
        ({"limit": 0}, "/limit"),
        ({"limit": 500}, "/limit"),
        ({"offset": -1}, "/offset"),
        ({"risk_tolerance": "C9"}, "/risk_tolerance"),
        ({"vip_level": "platinum"}, "/vip_level"),
        ({"min_aum": 10, "max_aum": 5}, "/min_aum"),
        ({"name_prefix": " "}, "/name_prefix"),
    ],
)
def test_invalid_search_names_the_field(shared: ProfileService, criteria: dict[str, object], pointer: str) -> None:
    with pytest.raises(MarketloopError) as raised:
        shared.search(SearchQuery(**criteria))  # type: ignore[arg-type]
    assert raised.value.kind is ErrorKind.INVALID
    assert [e.pointer for e in raised.value.errors] == [pointer]


def test_invalid_phone_in_search(shared: ProfileService) -> None:
    with pytest.raises(MarketloopError) as raised:
        shared.search(SearchQuery(phone="12345"))
    assert raised.value.code == "customer.invalid-phone"


def test_too_broad_full_name_search_asks_for_a_filter(shared: ProfileService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_module, "NAME_CHECK_LIMIT", 1)
    with pytest.raises(MarketloopError) as raised:
        shared.search(SearchQuery(name_prefix="张三"))
    assert raised.value.code == "customer.search-too-broad"
    assert _numbers(shared, name_prefix="张三", rm_id="R01", min_aum=100_000) == (["C001"], 1)


def test_search_before_any_refresh_is_empty(service: ProfileService) -> None:
    assert _numbers(service) == ([], 0)
