"""The simulated bank's product catalogue: deposits, wealth R1–R5, funds, insurance, loans, credit cards.

Rates are what a large Chinese retail bank listed in 2025 (demand 0.05 %,
one-year time deposit about 1 %, wealth benchmarks 1.6–7 % by risk). Each
product has a `kind`, the simulator's finer category (demand deposit, time
deposit, cash-management wealth …), which decides who holds it and how its
balance moves. Deposits, loans and cards carry no risk level: suitability
(适当性) applies to wealth, funds and investment-linked insurance.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from marketloop.core.bank import PRODUCTS, ProductType


@dataclass(frozen=True, kw_only=True)
class Product:
    code: str
    name: str
    type: ProductType
    kind: str
    risk: int | None  # 1..5 for R1..R5
    term_days: int | None
    rate: float  # annual rate or performance benchmark, percent
    min_amount: float
    on_sale: bool = True


D, W, F, INS, L, C = (
    ProductType.DEPOSIT,
    ProductType.WEALTH,
    ProductType.FUND,
    ProductType.INSURANCE,
    ProductType.LOAN,
    ProductType.CREDIT_CARD,
)


def _p(
    code: str,
    name: str,
    type_: ProductType,
    kind: str,
    risk: int | None,
    term: int | None,
    rate: float,
    min_amount: float,
    *,
    on_sale: bool = True,
) -> Product:
    return Product(
        code=code,
        name=name,
        type=type_,
        kind=kind,
        risk=risk,
        term_days=term,
        rate=rate,
        min_amount=min_amount,
        on_sale=on_sale,
    )


CATALOGUE: tuple[Product, ...] = (
    _p("DEP-DEMAND", "活期存款", D, "demand", None, None, 0.05, 0),
    _p("DEP-TD-3M", "整存整取三个月", D, "time", None, 90, 0.65, 50),
    _p("DEP-TD-6M", "整存整取六个月", D, "time", None, 180, 0.85, 50),
    _p("DEP-TD-1Y", "整存整取一年", D, "time", None, 365, 0.95, 50),
    _p("DEP-TD-2Y", "整存整取两年", D, "time", None, 730, 1.05, 50),
    _p("DEP-TD-3Y", "整存整取三年", D, "time", None, 1095, 1.25, 50),
    _p("DEP-TD-5Y", "整存整取五年", D, "time", None, 1825, 1.30, 50),
    _p("DEP-LCD-1Y", "大额存单一年期", D, "time", None, 365, 1.20, 200_000),
    _p("DEP-LCD-3Y", "大额存单三年期", D, "time", None, 1095, 1.55, 200_000),
    _p("WM-R1-CASH1", "天天盈现金管理1号", W, "cash", 1, None, 1.65, 1),
    _p("WM-R1-CASH2", "日日薪现金管理", W, "cash", 1, None, 1.72, 1),
    _p("WM-R2-030D", "稳享30天持有期", W, "fixed", 2, 30, 2.10, 10_000),
    _p("WM-R2-090D", "稳享90天持有期", W, "fixed", 2, 90, 2.45, 10_000),
    _p("WM-R2-180D", "稳享180天持有期", W, "fixed", 2, 180, 2.70, 10_000),
    _p("WM-R2-365D", "安盈一年定开", W, "fixed", 2, 365, 2.95, 10_000),
    _p("WM-R2-090D-OLD", "稳享90天(2023年第3期)", W, "fixed", 2, 90, 3.10, 10_000, on_sale=False),
    _p("WM-R3-365D", "固收+一年持有", W, "fixed", 3, 365, 3.40, 10_000),
    _p("WM-R3-730D", "稳健增利两年持有", W, "fixed", 3, 730, 3.80, 10_000),
    _p("WM-R4-MIX", "混合优选18个月", W, "fixed", 4, 540, 4.80, 10_000),
    _p("WM-R4-EQ", "权益精选一年持有", W, "fixed", 4, 365, 5.50, 10_000),
    _p("WM-R5-COM", "商品及衍生品策略", W, "fixed", 5, 365, 7.00, 100_000),
    _p("FD-MMF", "货币市场基金A", F, "fund", 1, None, 1.45, 1),
    _p("FD-BOND1", "纯债债券基金", F, "fund", 2, None, 3.00, 10),
    _p("FD-BOND2", "中短债债券基金", F, "fund", 2, None, 2.60, 10),
    _p("FD-MIX", "平衡配置混合基金", F, "fund", 3, None, 5.00, 10),
    _p("FD-PENSION", "养老目标日期2045三年持有FOF", F, "fund", 3, None, 4.50, 10),
    _p("FD-CSI300", "沪深300指数基金", F, "fund", 4, None, 6.00, 10),
    _p("FD-TECH", "科技成长股票基金", F, "fund", 4, None, 8.00, 10),
    _p("FD-QDII", "纳斯达克100指数(QDII)", F, "fund", 5, None, 9.00, 10),
    _p("INS-WL", "增额终身寿险", INS, "insurance", None, None, 2.50, 10_000),
    _p("INS-ANN", "十年期年金保险", INS, "insurance", None, 3650, 2.50, 10_000),
    _p("INS-CI", "重大疾病保险", INS, "insurance", None, None, 0.0, 3_000),
    _p("INS-ILP", "投资连结保险", INS, "insurance", 4, None, 4.00, 50_000),
    _p("LN-MORT", "个人住房贷款", L, "mortgage", None, 10_950, 3.10, 100_000),
    _p("LN-CONS", "个人消费贷款", L, "consumer_loan", None, 365, 3.60, 1_000),
    _p("LN-BIZ", "个人经营贷款", L, "business_loan", None, 1095, 3.30, 50_000),
    _p("LN-CAR", "汽车贷款", L, "car_loan", None, 1095, 3.80, 30_000),
    _p("CC-STD", "标准信用卡", C, "card", None, None, 18.25, 0),
    _p("CC-GOLD", "金卡信用卡", C, "card", None, None, 18.25, 0),
    _p("CC-PLAT", "白金信用卡", C, "card", None, None, 18.25, 0),
)


def codes(kind: str, *, risk: int | None = None, on_sale: bool = True) -> tuple[str, ...]:
    """Product codes of one kind (and risk level), on sale unless asked otherwise."""
    return tuple(
        p.code for p in CATALOGUE if p.kind == kind and (risk is None or p.risk == risk) and (p.on_sale or not on_sale)
    )


def products_frame() -> pl.DataFrame:
    """The catalogue as rows of the `products` table."""
    return pl.DataFrame(
        {
            "product_code": [p.code for p in CATALOGUE],
            "name": [p.name for p in CATALOGUE],
            "product_type": [p.type.value for p in CATALOGUE],
            "risk_level": [f"R{p.risk}" if p.risk else None for p in CATALOGUE],
            "term_days": [p.term_days for p in CATALOGUE],
            "expected_rate": [p.rate for p in CATALOGUE],
            "min_amount": [p.min_amount for p in CATALOGUE],
            "on_sale": [p.on_sale for p in CATALOGUE],
        },
        schema_overrides={"term_days": pl.Int64, "min_amount": pl.Float64},
    ).select(PRODUCTS.names)


def lookup(codes_: pl.Expr, field: str) -> pl.Expr:
    """An expression for a catalogue attribute (`risk`, `term_days`, `rate`, `min_amount`, `kind`) of product codes."""
    return codes_.replace_strict([p.code for p in CATALOGUE], [getattr(p, field) for p in CATALOGUE], default=None)
