"""The bank data model: what a bank loads from its core systems, as data.

Each table is a `TableSpec` (columns with logical types, key, what the
importer must check). Storage adapters generate their DDL from these specs,
the importer validates mappings against them, and the simulator writes rows
in exactly these shapes, so the three never drift apart.

Personal fields follow PIPL practice: a customer's name, phone and ID number
are stored encrypted (`*_enc`) with a keyed hash beside them (`*_hash`) for
exact lookup; the ID number is kept only as a keyed hash. `name_prefix`
(the family name) is kept in clear for prefix search.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LogicalType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"  # money: DECIMAL(18, 2)
    DOUBLE = "double"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"


class RiskTolerance(StrEnum):
    """Customer risk tolerance from the suitability questionnaire (风险承受能力)."""

    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"


class ProductRisk(StrEnum):
    """Product risk level (产品风险等级); offered only where tolerance >= level (适当性)."""

    R1 = "R1"
    R2 = "R2"
    R3 = "R3"
    R4 = "R4"
    R5 = "R5"


class ProductType(StrEnum):
    DEPOSIT = "deposit"  # 存款 (demand and time)
    WEALTH = "wealth"  # 理财
    FUND = "fund"  # 基金
    INSURANCE = "insurance"  # 保险
    LOAN = "loan"  # 贷款 (incl. mortgage)
    CREDIT_CARD = "credit_card"  # 信用卡


ASSET_TYPES = frozenset({ProductType.DEPOSIT, ProductType.WEALTH, ProductType.FUND, ProductType.INSURANCE})
LIABILITY_TYPES = frozenset({ProductType.LOAN, ProductType.CREDIT_CARD})


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class TransactionChannel(StrEnum):
    MOBILE = "mobile"  # 手机银行
    COUNTER = "counter"  # 柜面
    ATM = "atm"
    ONLINE = "online"  # 网银
    POS = "pos"
    WECHAT = "wechat"
    THIRD_PARTY = "third_party"  # 第三方支付


class CounterpartyType(StrEnum):
    SELF = "self"  # own account in this bank
    SAME_BANK = "same_bank"
    OTHER_BANK = "other_bank"  # 他行
    MERCHANT = "merchant"
    EMPLOYER = "employer"  # salary (代发)
    GOVERNMENT = "government"


def tolerance_allows(tolerance: RiskTolerance, product: ProductRisk) -> bool:
    """Suitability: a C-n customer may be offered products up to R-n."""
    return int(tolerance.value[1]) >= int(product.value[1])


# VIP tiers by AUM (yuan), the thresholds most Chinese retail banks use.
VIP_THRESHOLDS: tuple[tuple[int, str], ...] = (
    (6_000_000, "private"),  # 私人银行 ≥ 600万
    (500_000, "diamond"),  # ≥ 50万
    (50_000, "gold"),  # ≥ 5万
    (0, "standard"),
)


def vip_tier(aum: float) -> str:
    for threshold, tier in VIP_THRESHOLDS:
        if aum >= threshold:
            return tier
    return "standard"


@dataclass(frozen=True, kw_only=True)
class Column:
    name: str
    type: LogicalType
    required: bool = False
    description: str = ""
    allowed: tuple[str, ...] = ()
    personal: bool = False  # encrypted or hashed at rest; masked by role


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


T = LogicalType


def _c(name: str, type_: LogicalType, description: str = "", **kwargs: object) -> Column:
    return Column(name=name, type=type_, description=description, **kwargs)  # type: ignore[arg-type]


BRANCHES = TableSpec(
    name="branches",
    description="Branch hierarchy: head office → branch → sub-branch (总行/分行/支行)",
    key=("branch_id",),
    columns=(
        _c("branch_id", T.TEXT, required=True),
        _c("name", T.TEXT, required=True),
        _c("parent_id", T.TEXT, "null for head office"),
        _c("level", T.INTEGER, "0 head office, 1 branch, 2 sub-branch", required=True),
        _c("city", T.TEXT),
    ),
)

RELATIONSHIP_MANAGERS = TableSpec(
    name="relationship_managers",
    description="Relationship managers (客户经理)",
    key=("rm_id",),
    columns=(
        _c("rm_id", T.TEXT, required=True),
        _c("name", T.TEXT, required=True),
        _c("branch_id", T.TEXT, required=True),
        _c("phone", T.TEXT),
    ),
)

CUSTOMERS = TableSpec(
    name="customers",
    description="Retail customers with natural attributes, risk tolerance, VIP level, branch and RM",
    key=("cust_no",),
    columns=(
        _c("cust_no", T.TEXT, "customer number (客户号)", required=True),
        _c("name_enc", T.TEXT, "encrypted full name", personal=True),
        _c("name_prefix", T.TEXT, "family name, for prefix search"),
        _c("phone_enc", T.TEXT, "encrypted mobile number", personal=True),
        _c("phone_hash", T.TEXT, "keyed hash of the normalised mobile number", personal=True),
        _c("id_card_hash", T.TEXT, "keyed hash of the ID number (GB 11643)", personal=True),
        _c("email_enc", T.TEXT, personal=True),
        _c("gender", T.TEXT, allowed=("M", "F")),
        _c("birth_date", T.DATE),
        _c("city", T.TEXT),
        _c("city_tier", T.INTEGER, "1..5"),
        _c("occupation", T.TEXT),
        _c("marital_status", T.TEXT, allowed=("single", "married", "divorced", "widowed")),
        _c("education", T.TEXT),
        _c("risk_tolerance", T.TEXT, allowed=tuple(r.value for r in RiskTolerance)),
        _c("risk_assessed_at", T.DATE),
        _c("vip_level", T.TEXT, allowed=tuple(t for _, t in VIP_THRESHOLDS)),
        _c("branch_id", T.TEXT, required=True),
        _c("rm_id", T.TEXT),
        _c("open_date", T.DATE, required=True),
        _c("status", T.TEXT, allowed=("active", "dormant", "closed")),
        _c("credit_rating", T.TEXT, "internal credit grade"),
        _c("fraud_flag", T.BOOLEAN),
    ),
)

ACCOUNTS = TableSpec(
    name="accounts",
    description="Accounts: debit cards, e-accounts, pension accounts, credit cards",
    key=("account_no",),
    columns=(
        _c("account_no", T.TEXT, required=True),
        _c("cust_no", T.TEXT, required=True),
        _c("account_type", T.TEXT, allowed=("debit", "e_account", "pension", "credit_card", "loan"), required=True),
        _c("open_date", T.DATE, required=True),
        _c("status", T.TEXT, allowed=("active", "dormant", "closed", "inactive")),
        _c("branch_id", T.TEXT),
    ),
)

PRODUCTS = TableSpec(
    name="products",
    description="Products: deposits, wealth R1–R5, funds, insurance, loans, credit cards",
    key=("product_code",),
    columns=(
        _c("product_code", T.TEXT, required=True),
        _c("name", T.TEXT, required=True),
        _c("product_type", T.TEXT, allowed=tuple(p.value for p in ProductType), required=True),
        _c("risk_level", T.TEXT, allowed=tuple(r.value for r in ProductRisk)),
        _c("term_days", T.INTEGER),
        _c("expected_rate", T.DOUBLE, "annual rate / performance benchmark"),
        _c("min_amount", T.DECIMAL),
        _c("on_sale", T.BOOLEAN),
    ),
)

HOLDINGS = TableSpec(
    name="holdings",
    description="Holdings: one row per customer, product and balance interval (daily balances as SCD-2)",
    key=("holding_id", "valid_from"),
    columns=(
        _c("holding_id", T.TEXT, required=True),
        _c("cust_no", T.TEXT, required=True),
        _c("account_no", T.TEXT),
        _c("product_code", T.TEXT, required=True),
        _c("balance", T.DECIMAL, "balance (loans and cards: outstanding amount)", required=True),
        _c("valid_from", T.DATE, "first day with this balance", required=True),
        _c("valid_to", T.DATE, "last day with this balance; null = still"),
        _c("start_date", T.DATE),
        _c("maturity_date", T.DATE),
        _c("credit_limit", T.DECIMAL, "credit cards and credit lines"),
    ),
)

TRANSACTIONS = TableSpec(
    name="transactions",
    description="Account transactions: channel, counterparty type, amount, direction",
    key=("txn_id",),
    columns=(
        _c("txn_id", T.TEXT, required=True),
        _c("cust_no", T.TEXT, required=True),
        _c("account_no", T.TEXT),
        _c("ts", T.TIMESTAMP, required=True),
        _c("amount", T.DECIMAL, required=True),
        _c("direction", T.TEXT, allowed=tuple(d.value for d in Direction), required=True),
        _c("channel", T.TEXT, allowed=tuple(c.value for c in TransactionChannel)),
        _c("counterparty_type", T.TEXT, allowed=tuple(c.value for c in CounterpartyType)),
        _c("counterparty_name", T.TEXT),
        _c("category", T.TEXT, "salary, transfer, consumption, investment, repayment, …"),
        _c("product_code", T.TEXT),
    ),
)

PAYROLL = TableSpec(
    name="payroll",
    description="Salary-payroll (代发) relationships",
    key=("cust_no", "employer_id"),
    columns=(
        _c("cust_no", T.TEXT, required=True),
        _c("employer_id", T.TEXT, required=True),
        _c("employer_name", T.TEXT),
        _c("salary_day", T.INTEGER, "day of month"),
        _c("monthly_amount", T.DECIMAL),
        _c("start_date", T.DATE, required=True),
        _c("end_date", T.DATE),
    ),
)

RM_ASSIGNMENTS = TableSpec(
    name="rm_assignments",
    description="Which RM manages which customer, over time (管户关系)",
    key=("cust_no", "valid_from"),
    columns=(
        _c("cust_no", T.TEXT, required=True),
        _c("rm_id", T.TEXT, required=True),
        _c("valid_from", T.DATE, required=True),
        _c("valid_to", T.DATE),
    ),
)

BANK_TABLES: tuple[TableSpec, ...] = (
    BRANCHES,
    RELATIONSHIP_MANAGERS,
    CUSTOMERS,
    ACCOUNTS,
    PRODUCTS,
    HOLDINGS,
    TRANSACTIONS,
    PAYROLL,
    RM_ASSIGNMENTS,
)
TABLES_BY_NAME = {table.name: table for table in BANK_TABLES}
