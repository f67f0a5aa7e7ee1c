"""Marketing content compliance: banned claims and their disguises, risk notices, SMS rules, suitability."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketloop.campaigns.compliance import (
    DEFAULT_BANNED,
    WEALTH_NOTICE,
    ComplianceRules,
    Severity,
    check_content,
    check_send,
    check_suitability,
)

GOOD_WEALTH = "稳健理财，业绩比较基准3.2%，过往业绩不代表未来表现。理财非存款、产品有风险、投资须谨慎"
GOOD_SMS = "【海河银行】您关注的理财已开售，详情见App。拒收请回复R"


def codes(text: str, **kwargs: object) -> list[str]:
    return [f.code for f in check_content(text, **kwargs).findings]  # type: ignore[arg-type]


@pytest.mark.parametrize("word", ["保本", "无风险", "稳赚", "零风险", "最高收益"])
def test_each_default_banned_claim(word: str) -> None:
    text = f"本产品{word}，欢迎购买。{WEALTH_NOTICE}"
    report = check_content(text, product_type="wealth", product_risk="R2")
    (finding,) = report.findings
    assert finding.code == "banned-claim"
    assert finding.severity is Severity.ERROR
    assert text[finding.span[0] : finding.span[1]] == finding.matched == word
    assert finding.suggestion
    assert not report.passed


@pytest.mark.parametrize("text", ["保 本", "保　本", "稳-赚", "零，风，险", "最 高 收 益", "无*风*险", "保\u200b本"])
def test_disguised_banned_claims_are_found(text: str) -> None:
    assert "banned-claim" in codes(text)


def test_denials_are_not_claims() -> None:
    assert (
        codes(
            f"本产品为非保本浮动收益型理财产品，并非无风险。{WEALTH_NOTICE}", product_type="wealth", product_risk="R2"
        )
        == []
    )


def test_the_longest_banned_phrase_is_reported_once() -> None:
    (finding,) = check_content("稳赚不赔").findings
    assert finding.matched == "稳赚不赔"


def test_configured_words_match_full_width_and_case() -> None:
    rules = ComplianceRules.from_settings(extra_banned=["guaranteed", "翻倍"])
    assert [f.matched for f in check_content("ＧＵＡＲＡＮＴＥＥＤ 收益翻 倍", rules=rules).findings] == [
        "ＧＵＡＲＡＮＴＥＥＤ",
        "翻 倍",
    ]


def test_deposits_get_a_warning_not_an_error() -> None:
    report = check_content("大额存单，保本保息", product_type="deposit")
    assert report.passed
    assert report.findings[0].severity is Severity.WARNING


def test_wealth_needs_the_risk_notice() -> None:
    assert codes("稳健理财，欢迎选购", product_type="wealth", product_risk="R2") == ["risk-notice-missing"]
    assert codes(GOOD_WEALTH, product_type="wealth", product_risk="R2") == []
    assert codes("理财非存款，产品有风险，投资须谨慎！", product_type="wealth", product_risk="R2") == []


def test_fund_notice_and_past_performance() -> None:
    found = codes("近一年收益率12.5%，基金有风险，投资须谨慎", product_type="fund", product_risk="R3")
    assert found == ["past-performance"]


def test_unknown_product_risk_is_a_warning() -> None:
    report = check_content(GOOD_WEALTH, product_type="wealth")
    assert report.passed
    assert [f.code for f in report.findings] == ["product-risk-unknown"]


def test_sms_signature_and_opt_out() -> None:
    assert codes(GOOD_SMS, channel="sms") == []
    assert codes("您关注的理财已开售", channel="sms") == ["sms-opt-out-missing", "sms-signature-missing"]
    rules = ComplianceRules.from_settings(sms_opt_out=["回TD退订"], sms_signature_required=False)
    assert codes("您关注的理财已开售，回TD退订", channel="sms", rules=rules) == []


@pytest.mark.parametrize(
    ("tolerance", "risk", "ok"),
    [("C3", "R3", True), ("C3", "R2", True), ("C2", "R3", False), ("C1", "R5", False), (None, "R1", False)],
)
def test_suitability(tolerance: str | None, risk: str, ok: bool) -> None:
    finding = check_suitability(tolerance, risk)
    assert (finding is None) is ok
    if finding is not None:
        assert finding.severity is Severity.ERROR


def test_suitability_without_a_risk_rated_product() -> None:
    assert check_suitability(None, None) is None


def test_check_send_combines_both() -> None:
    report = check_send(GOOD_WEALTH, product_type="wealth", product_risk="R4", channel="push", customer_tolerance="C2")
    assert [f.code for f in report.findings] == ["suitability"]
    assert not report.passed


_SEPARATORS = st.text(alphabet=" \u3000·.,，、-_*~！？|/（）【】", max_size=3)


@given(
    word=st.sampled_from(DEFAULT_BANNED),
    gaps=st.lists(_SEPARATORS, min_size=8, max_size=8),
    prefix=st.text(alphabet="本产品理财欢迎购买ab1 ", max_size=5),
)
def test_any_separators_between_characters_still_match(word: str, gaps: list[str], prefix: str) -> None:
    disguised = "".join(char + gap for char, gap in zip(word, gaps, strict=False))
    assert "banned-claim" in codes(prefix + disguised)
