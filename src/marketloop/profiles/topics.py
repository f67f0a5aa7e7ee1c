"""The seven topics of the customer profile (客户画像) and the rules behind their figures.

`DEFAULT_RULES` says what each figure means (windows, what a login or a
wealth page view is, what a mortgage is, the VIP thresholds, the margins of
the contribution proxy); the store computes the figures from it. `topic_fields`
says which column of `customer_profile` belongs to which topic, and
`assemble` turns one stored row into the topic dictionaries the API and CLI
show. Personal fields never pass through here: the service decrypts and masks
them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from marketloop.core.bank import ASSET_TYPES, VIP_THRESHOLDS, ProductType, TransactionChannel
from marketloop.ports.profiles import PlatformRule, ProfileRules


class Topic(StrEnum):
    NATURAL = "natural"  # 自然属性
    ASSETS = "assets"  # 资产
    LIABILITIES = "liabilities"  # 负债
    RISK = "risk"  # 风险
    TRANSACTIONS = "transactions"  # 交易
    BEHAVIOUR = "behaviour"  # 行为
    VALUE = "value"  # 价值


# Annual margin the bank earns per yuan held, by product type: a contribution proxy
# (net interest margin on deposits and loans, fees on wealth, funds and insurance)
# until the bank loads its own profitability figures.
CONTRIBUTION_RATES = MappingProxyType(
    {
        ProductType.DEPOSIT.value: 0.015,
        ProductType.WEALTH.value: 0.005,
        ProductType.FUND.value: 0.008,
        ProductType.INSURANCE.value: 0.01,
        ProductType.LOAN.value: 0.02,
        ProductType.CREDIT_CARD.value: 0.05,
    }
)

DEFAULT_RULES = ProfileRules(
    short_window_days=30,
    long_window_days=90,
    trend_days=30,
    maturity_windows_days=(7, 30),
    risk_assessment_valid_days=365,
    asset_types=tuple(sorted(t.value for t in ASSET_TYPES)),
    channels=tuple(c.value for c in TransactionChannel),
    login_events=("login", "app_login", "sign_in", "signed_in", "signed in", "user_login", "$login"),
    view_markers=MappingProxyType({"wealth": ("wealth", "理财"), "fund": ("fund", "基金")}),
    mortgage_markers=("mort", "住房", "房贷"),
    contribution_rates=CONTRIBUTION_RATES,
    vip_thresholds=VIP_THRESHOLDS,
    platforms=(
        PlatformRule(platform="mini_program", markers=("miniprogram", "mini_program", "mini-program", "applet")),
        PlatformRule(platform="wechat", markers=("wechat", "weixin", "official_account")),
        PlatformRule(platform="app", markers=("ios", "android", "harmony", "react-native", "flutter", "app")),
        PlatformRule(platform="h5", markers=("js", "web", "h5", "browser")),
        PlatformRule(platform="branch", markers=("counter", "branch", "teller", "pad")),
    ),
    timeline_depth=50,
)

# Columns of `customer_profile` that are not shown as such: personal fields (the
# service shows them decrypted and masked) and identity links (shown under identities).
HIDDEN = frozenset({"name_enc", "phone_enc", "phone_hash", "name_prefix", "anonymous_ids", "one_id", "profile_as_of"})
CHANNEL_MIX = "channel_mix"
LAST_SEEN_BY_PLATFORM = "last_seen_by_platform"


def topic_fields(rules: ProfileRules) -> dict[Topic, tuple[str, ...]]:
    """The `customer_profile` columns of each topic, in the order they are shown."""
    s, lw, tr = rules.short_window_days, rules.long_window_days, rules.trend_days
    maturing = tuple(f"{k}_maturing_{n}d" for k in ("wealth", "deposit") for n in rules.maturity_windows_days)
    return {
        Topic.NATURAL: (
            "cust_no",
            "gender",
            "birth_date",
            "age",
            "birthday_in_days",
            "city",
            "city_tier",
            "occupation",
            "marital_status",
            "education",
            "open_date",
            "tenure_months",
            "status",
            "branch_id",
            "branch_name",
            "rm_id",
            "rm_name",
        ),
        Topic.ASSETS: (
            "aum",
            f"aum_{tr}d_ago",
            "aum_trend_pct",
            *(f"{t}_balance" for t in rules.asset_types),
            *maturing,
            "next_maturity_date",
        ),
        Topic.LIABILITIES: (
            "liability_total",
            "loan_balance",
            "mortgage_balance",
            "credit_card_balance",
            "credit_card_limit",
            "credit_card_utilisation",
        ),
        Topic.RISK: ("risk_tolerance", "risk_assessed_at", "risk_assessment_expired", "credit_rating", "fraud_flag"),
        Topic.TRANSACTIONS: (
            f"inflow_{s}d",
            f"outflow_{s}d",
            f"txn_count_{s}d",
            f"inflow_{lw}d",
            f"outflow_{lw}d",
            f"txn_count_{lw}d",
            f"salary_{s}d",
            "last_salary_at",
            "payroll_customer",
            "payroll_employer",
            f"other_bank_out_{s}d",
            f"other_bank_out_count_{s}d",
        ),
        Topic.BEHAVIOUR: (
            "last_seen_at",
            "last_event",
            f"events_{s}d",
            f"logins_{s}d",
            f"app_logins_{s}d",
            f"active_days_{s}d",
            *(f"{subject}_page_views_{s}d" for subject in rules.view_markers),
        ),
        Topic.VALUE: ("vip_level", "vip_tier", "contribution", "products_held", "clv"),
    }


def grouped_fields(rules: ProfileRules) -> dict[Topic, tuple[str, dict[str, str]]]:
    """Families of columns shown as one dictionary: the channel mix and the last time seen per platform."""
    return {
        Topic.TRANSACTIONS: (
            f"{CHANNEL_MIX}_{rules.long_window_days}d",
            {f"txn_{rules.long_window_days}d_{c}": c for c in rules.channels},
        ),
        Topic.BEHAVIOUR: (LAST_SEEN_BY_PLATFORM, {f"last_{p.platform}_at": p.platform for p in rules.platforms}),
    }


def known_columns(rules: ProfileRules) -> frozenset[str]:
    """Every column `assemble` places (or deliberately hides)."""
    placed = {name for names in topic_fields(rules).values() for name in names}
    grouped = {column for _, columns in grouped_fields(rules).values() for column in columns}
    return frozenset(placed | grouped | HIDDEN)


def plain(value: Any) -> Any:
    """A JSON-friendly value: money as float; dates, times, text and numbers as they are."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def assemble(row: Mapping[str, Any], rules: ProfileRules) -> dict[Topic, dict[str, Any]]:
    """One `customer_profile` row as the seven topic dictionaries (personal fields left out)."""
    topics = {topic: {name: plain(row.get(name)) for name in names} for topic, names in topic_fields(rules).items()}
    for topic, (key, columns) in grouped_fields(rules).items():
        topics[topic][key] = {label: plain(row.get(column)) for column, label in columns.items()}
    return topics
