"""`marketloop compliance check`: check marketing copy against the content rules (营销内容合规检查)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from marketloop.app.governance import compliance_rules
from marketloop.campaigns.compliance import ComplianceReport, check_content, check_send
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, print_json, settings_for
from marketloop.core.bank import ProductRisk, ProductType, RiskTolerance

app = typer.Typer(help="Marketing content compliance.", no_args_is_help=True)

EXIT_FINDINGS = 1


def _report_dict(report: ComplianceReport) -> dict[str, object]:
    return {
        "passed": report.passed,
        "findings": [
            {
                "code": f.code,
                "span": list(f.span),
                "matched": f.matched,
                "severity": f.severity.value,
                "message": f.message,
                "suggestion": f.suggestion,
            }
            for f in report.findings
        ],
    }


@app.command()
def check(
    text: Annotated[str, typer.Option("--text", help="The copy to check.")],
    product_type: Annotated[ProductType | None, typer.Option(help="Product type it promotes.")] = None,
    product_risk: Annotated[ProductRisk | None, typer.Option(help="Product risk level R1–R5.")] = None,
    channel: Annotated[str | None, typer.Option(help="Channel, e.g. sms (adds signature and opt-out rules).")] = None,
    customer_tolerance: Annotated[
        RiskTolerance | None, typer.Option(help="Customer risk tolerance C1–C5: also check suitability.")
    ] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Report banned claims, missing risk notices, SMS signature and opt-out, suitability; exit 1 on an error."""
    rules = compliance_rules(settings_for(data_dir, config))
    if customer_tolerance is not None:
        report = check_send(
            text,
            product_type=product_type,
            product_risk=product_risk,
            channel=channel or "",
            customer_tolerance=customer_tolerance,
            rules=rules,
        )
    else:
        report = check_content(text, product_type=product_type, product_risk=product_risk, channel=channel, rules=rules)
    if as_json:
        print_json(_report_dict(report))
    else:
        table = Table("severity", "code", "where", "matched", "message", "suggestion")
        for f in report.findings:
            table.add_row(f.severity.value, f.code, f"{f.span[0]}–{f.span[1]}", f.matched, f.message, f.suggestion)
        console.print(table if report.findings else "no findings")
    if not report.passed:
        raise typer.Exit(EXIT_FINDINGS)
