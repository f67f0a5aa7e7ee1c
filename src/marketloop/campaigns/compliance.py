"""Marketing content compliance (营销内容合规): the check the content library, AI-drafted copy and every send use.

Owns the rules, as data (`ComplianceRules`, loaded from settings), and pure
functions that apply them:

- banned claims (禁用语): promises of principal or returns such as 保本,
  无风险, 稳赚, 零风险, 最高收益, plus configured lists; matched also when
  spaces, punctuation or full-width letters are put between the characters
  (保 本, 稳-赚, ＡＢＣ); an error for wealth, fund, insurance and unknown
  products, a warning for deposits (deposit insurance may back such words);
- the risk notice (风险提示) a product type must carry, e.g. for wealth
  products 理财非存款、产品有风险、投资须谨慎 (punctuation between the parts
  may differ);
- past performance quoted without saying it is no promise (warning);
- SMS: a signature 【…】 and an opt-out (拒收请回复R, or configured forms);
- suitability (适当性): no product above the customer's risk tolerance
  (`check_suitability`, at send time; `check_send` runs everything).

Findings say where (character span), what matched, how bad, and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from marketloop.core.bank import ProductRisk, ProductType, RiskTolerance, tolerance_allows

DEFAULT_BANNED = (
    "保本", "保息", "保本保息", "保证收益", "收益保证", "稳赚", "稳赚不赔", "只赚不赔", "无风险", "零风险",
    "最高收益", "刚性兑付", "刚兑", "绝对安全", "100%安全", "稳赢",
)  # fmt: skip
WEALTH_NOTICE = "理财非存款、产品有风险、投资须谨慎"
FUND_NOTICE = "基金有风险、投资须谨慎"
DEFAULT_NOTICES: Mapping[str, str] = {ProductType.WEALTH.value: WEALTH_NOTICE, ProductType.FUND.value: FUND_NOTICE}
DEFAULT_OPT_OUT = ("拒收请回复R", "回T退订", "退订回T", "回复TD退订")
STRICT_TYPES = frozenset({ProductType.WEALTH, ProductType.FUND, ProductType.INSURANCE})
PERFORMANCE_TYPES = frozenset({ProductType.WEALTH, ProductType.FUND})

# What may stand between two characters of a banned word without changing its meaning to a reader.
_GAP = r"[\s\u3000\u200b·・.,，、。:：;；\-—_~～*＊!！?？|/\\'\"“”‘’()（）\[\]【】<>《》]*"
_SIGNATURE = re.compile(r"【[^【】\s]{2,16}】")
_PERCENT = re.compile(r"\d+(?:\.\d+)?\s*[%％]")
_PERFORMANCE_WORDS = re.compile(r"年化|收益率|业绩|回报|历史|过往|近一年|成立以来")
_NEGATIONS = ("非", "不", "未", "无", "没有", "并非", "绝非", "不是")
_NOT_A_PROMISE = re.compile(r"不代表|不预示|不构成|不等于|不作为")
SUGGESTIONS = {
    "保本": "删除保本表述；理财产品不得承诺保本（资管新规）",
    "无风险": "删除；改为说明产品风险等级，如“R2 中低风险”",
    "零风险": "删除；改为说明产品风险等级",
    "稳赚": "删除；不得承诺收益",
    "最高收益": "删除；如需说明，用“业绩比较基准”并提示过往业绩不代表未来表现",
}


class Severity(StrEnum):
    ERROR = "error"  # blocks the send / the content
    WARNING = "warning"  # needs a human look


@dataclass(frozen=True, kw_only=True)
class Finding:
    code: str  # stable: banned-claim, risk-notice-missing, sms-signature-missing, sms-opt-out-missing, ...
    span: tuple[int, int]  # character offsets in the text; (0, 0) when the finding is about something missing
    matched: str
    severity: Severity
    message: str
    suggestion: str


@dataclass(frozen=True, kw_only=True)
class ComplianceReport:
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        """No error (warnings may remain)."""
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)


def _char_class(char: str) -> str:
    """A character, its full-width form for ASCII letters and digits, and the other case."""
    forms = {char}
    if "!" <= char <= "~":
        forms |= {char.lower(), char.upper()}
        forms |= {chr(ord(c) + 0xFEE0) for c in tuple(forms)}
    return "[" + "".join(re.escape(c) for c in sorted(forms)) + "]"


def tolerant_pattern(phrase: str) -> re.Pattern[str]:
    """A pattern matching `phrase` with separators between its characters (its own punctuation is optional)."""
    core = [c for c in phrase if not re.fullmatch(_GAP, c)]
    return re.compile(_GAP.join(_char_class(c) for c in core))


@dataclass(frozen=True, kw_only=True)
class ComplianceRules:
    """Configurable rules; `from_settings` adds a bank's own lists to the defaults."""

    banned: tuple[str, ...] = DEFAULT_BANNED
    risk_notices: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_NOTICES))
    sms_opt_out: tuple[str, ...] = DEFAULT_OPT_OUT
    sms_signature_required: bool = True

    @classmethod
    def from_settings(
        cls,
        *,
        extra_banned: Iterable[str] = (),
        risk_notices: Mapping[str, str] | None = None,
        sms_opt_out: Iterable[str] = (),
        sms_signature_required: bool = True,
    ) -> ComplianceRules:
        banned = tuple(dict.fromkeys([*DEFAULT_BANNED, *(w.strip() for w in extra_banned if w.strip())]))
        return cls(
            banned=banned,
            risk_notices={**DEFAULT_NOTICES, **(risk_notices or {})},
            sms_opt_out=tuple(sms_opt_out) or DEFAULT_OPT_OUT,
            sms_signature_required=sms_signature_required,
        )

    @cached_property
    def banned_patterns(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        # Longest first, so 稳赚不赔 is reported rather than its part 稳赚.
        words = sorted({w for w in self.banned if w}, key=len, reverse=True)
        return tuple((w, tolerant_pattern(w)) for w in words)

    @cached_property
    def notice_patterns(self) -> dict[str, re.Pattern[str]]:
        return {kind: tolerant_pattern(text) for kind, text in self.risk_notices.items()}

    @cached_property
    def opt_out_patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(tolerant_pattern(text) for text in self.sms_opt_out)


DEFAULT_RULES = ComplianceRules()


def check_content(
    text: str,
    *,
    product_type: ProductType | str | None = None,
    product_risk: ProductRisk | str | None = None,
    channel: str | None = None,
    rules: ComplianceRules = DEFAULT_RULES,
) -> ComplianceReport:
    """Every finding of `rules` in `text` for a product of `product_type` sent on `channel` (e.g. "sms")."""
    kind = ProductType(product_type) if product_type is not None else None
    findings = [*_banned(text, kind, rules), *_notice(text, kind, rules), *_performance(text, kind)]
    if channel == "sms":
        findings += _sms(text, rules)
    if kind in STRICT_TYPES and product_risk is None:
        findings.append(
            _missing("product-risk-unknown", Severity.WARNING, "产品未标注风险等级", "标注产品风险等级 R1–R5")
        )
    return ComplianceReport(findings=tuple(sorted(findings, key=lambda f: (f.span, f.code))))


def _banned(text: str, kind: ProductType | None, rules: ComplianceRules) -> list[Finding]:
    severity = Severity.WARNING if kind is ProductType.DEPOSIT else Severity.ERROR
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for word, pattern in rules.banned_patterns:
        for match in pattern.finditer(text):
            span = match.span()
            if any(start < span[1] and span[0] < end for start, end in taken) or _negated(text, span[0]):
                continue  # inside a longer banned phrase already reported, or denied (非保本, 并非无风险)
            taken.append(span)
            found.append(
                Finding(
                    code="banned-claim",
                    span=span,
                    matched=match.group(),
                    severity=severity,
                    message=f"禁用语“{word}”：不得承诺保本或收益",
                    suggestion=_suggestion(word),
                )
            )
    return found


def _negated(text: str, start: int) -> bool:
    before = re.sub(_GAP, "", text[max(0, start - 6) : start])
    return before.endswith(_NEGATIONS)


def _suggestion(word: str) -> str:
    for key, text in SUGGESTIONS.items():
        if key in word:
            return text
    return "删除或改写；不得承诺保本、收益或无风险"


def _notice(text: str, kind: ProductType | None, rules: ComplianceRules) -> list[Finding]:
    if kind is None or kind.value not in rules.risk_notices:
        return []
    if rules.notice_patterns[kind.value].search(text):
        return []
    notice = rules.risk_notices[kind.value]
    return [_missing("risk-notice-missing", Severity.ERROR, f"缺少风险提示：{notice}", f"在文末加上“{notice}”")]


def _performance(text: str, kind: ProductType | None) -> list[Finding]:
    if kind not in PERFORMANCE_TYPES or _NOT_A_PROMISE.search(text):
        return []
    match = _PERCENT.search(text)
    if match is None or not _PERFORMANCE_WORDS.search(text):
        return []
    return [
        Finding(
            code="past-performance",
            span=match.span(),
            matched=match.group(),
            severity=Severity.WARNING,
            message="引用收益率或业绩，未说明过往业绩不代表未来表现",
            suggestion="加上“过往业绩不代表未来表现”",
        )
    ]


def _sms(text: str, rules: ComplianceRules) -> list[Finding]:
    findings = []
    if rules.sms_signature_required and not _SIGNATURE.search(text):
        findings.append(
            _missing("sms-signature-missing", Severity.ERROR, "短信缺少签名【…】", "在开头加上签名，如【某某银行】")
        )
    if not any(p.search(text) for p in rules.opt_out_patterns):
        findings.append(
            _missing(
                "sms-opt-out-missing", Severity.ERROR, "营销短信缺少退订方式", f"在文末加上“{rules.sms_opt_out[0]}”"
            )
        )
    return findings


def _missing(code: str, severity: Severity, message: str, suggestion: str) -> Finding:
    return Finding(code=code, span=(0, 0), matched="", severity=severity, message=message, suggestion=suggestion)


def check_suitability(
    customer_tolerance: RiskTolerance | str | None, product_risk: ProductRisk | str | None
) -> Finding | None:
    """A finding (error) when a product of `product_risk` may not be offered to a customer of
    `customer_tolerance`; an unknown tolerance (no valid questionnaire) blocks any risk-rated product."""
    if product_risk is None:
        return None
    risk = ProductRisk(product_risk)
    if customer_tolerance is None:
        return _missing(
            "suitability-unknown", Severity.ERROR, f"客户未做风险测评，不能推荐 {risk} 产品", "先完成风险承受能力评估"
        )
    tolerance = RiskTolerance(customer_tolerance)
    if tolerance_allows(tolerance, risk):
        return None
    return _missing(
        "suitability",
        Severity.ERROR,
        f"产品风险等级 {risk} 高于客户风险承受能力 {tolerance}",
        f"只推荐不高于 R{tolerance.value[1]} 的产品",
    )


def check_send(
    text: str,
    *,
    product_type: ProductType | str | None,
    product_risk: ProductRisk | str | None,
    channel: str,
    customer_tolerance: RiskTolerance | str | None,
    rules: ComplianceRules = DEFAULT_RULES,
) -> ComplianceReport:
    """What every send checks: the content rules and, for a risk-rated product, suitability."""
    report = check_content(text, product_type=product_type, product_risk=product_risk, channel=channel, rules=rules)
    unsuitable = check_suitability(customer_tolerance, product_risk)
    return ComplianceReport(findings=report.findings + ((unsuitable,) if unsuitable else ()))
