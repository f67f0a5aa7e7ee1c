"""The stored-experiment commands end to end: create, import files, results, compare, the review report (复盘)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from openpyxl import load_workbook

from marketloop.testing.cli import run_cli
from marketloop.testing.experiments import simulate_campaign


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    campaign = simulate_campaign(3, 3000, shares={"holdout": 0.2, "push": 0.4, "sms": 0.4})
    found = {
        "assignments": tmp_path / "assignments.csv",
        "touches": tmp_path / "touches.parquet",
        "conversions": tmp_path / "conversions.csv",
    }
    campaign.assignments.write_csv(found["assignments"])
    campaign.touches.write_parquet(found["touches"])
    campaign.conversions.write_csv(found["conversions"])
    return found


def cli(monkeypatch, capsys, data: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(monkeypatch, capsys, "experiment", *args, "--data-dir", str(data))


def created(monkeypatch, capsys, data: Path, files: dict[str, Path], experiment_id: str = "exp_wake") -> None:
    code, out, err = cli(
        monkeypatch, capsys, data, "create", "--name", "睡眠客户唤醒", "--control", "holdout",
        "--variant", "holdout=20", "--variant", "push=40", "--variant", "sms=40",
        "--goal", "wealth_purchase", "--id", experiment_id, "--holdout", "--campaign", "dormant-wakeup",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = cli(
        monkeypatch, capsys, data, "import", experiment_id,
        "--assignments", str(files["assignments"]), "--touches", str(files["touches"]),
        "--conversions", str(files["conversions"]),
    )  # fmt: skip
    assert code == 0, err
    assert "3,000 new" in out


def test_report_is_self_contained_chinese_html_and_an_xlsx(monkeypatch, capsys, tmp_path, files) -> None:
    data = tmp_path / "data"
    created(monkeypatch, capsys, data, files)
    code, out, err = cli(monkeypatch, capsys, data, "results", "exp_wake", "--json")
    assert code == 0, err
    results = orjson.loads(out)
    html, xlsx = tmp_path / "report.html", tmp_path / "report.xlsx"
    code, out, err = cli(
        monkeypatch, capsys, data, "report", "exp_wake", "--out", str(html), "--xlsx", str(xlsx)
    )  # fmt: skip
    assert code == 0, err
    page = html.read_text(encoding="utf-8")
    assert page.startswith('<!DOCTYPE html><html lang="zh-CN">')
    for section in (
        "实验复盘：睡眠客户唤醒",
        "结论摘要",
        "营销漏斗",
        "转化率",
        "投入产出 (ROI)",
        "分期对比",
        "方法说明",
    ):
        assert section in page
    assert page.count("<svg") >= 4  # funnel, three forest plots (and the period lines when there are months)
    assert "<script" not in page
    assert "<0." not in page  # a tiny p-value is written as &lt;0.0001
    assert "<link" not in page
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")
    book = load_workbook(xlsx)
    assert book.sheetnames == ["摘要", "指标", "漏斗", "ROI", "分期"]
    funnel = list(book["漏斗"].iter_rows(values_only=True))
    assert funnel[0][:3] == ("变体", "目标客户", "策略拦截")
    assert [row[1] for row in funnel[1:]] == [row["targeted"] for row in results["funnel"]]
    metrics = list(book["指标"].iter_rows(values_only=True))
    push_rate = next(row for row in metrics if row[0] == "转化率" and row[2] == "push")
    json_push = results["analysis"]["metrics"][0]["variants"][1]
    assert push_rate[9] == pytest.approx(json_push["p_value"])
    assert push_rate[5] == pytest.approx(json_push["lift_abs"])


def test_results_json_and_compare(monkeypatch, capsys, tmp_path, files) -> None:
    data = tmp_path / "data"
    created(monkeypatch, capsys, data, files)
    code, out, err = cli(monkeypatch, capsys, data, "results", "exp_wake", "--json", "--cuped")
    assert code == 0, err
    found = orjson.loads(out)
    assert found["experiment"]["kind"] == "holdout"
    assert [row["variant"] for row in found["funnel"]] == ["holdout", "push", "sms"]
    assert all(metric["cuped"] is not None for metric in found["analysis"]["metrics"])
    assert {row["variant"] for row in found["roi"]} == {"push", "sms"}
    code, out, err = cli(monkeypatch, capsys, data, "compare", "exp_wake", "--json")
    assert code == 0, err
    periods = {row["period"] for row in orjson.loads(out)}
    assert periods == {"全部", "2026-03", "2026-04"}
    code, out, _ = cli(monkeypatch, capsys, data, "list", "--json")
    assert [e["experiment_id"] for e in orjson.loads(out)] == ["exp_wake"]


def test_errors_are_readable(monkeypatch, capsys, tmp_path, files) -> None:
    data = tmp_path / "data"
    code, _, err = cli(monkeypatch, capsys, data, "results", "exp_missing")
    assert code == 3
    assert "No such experiment" in err
    code, _, err = cli(monkeypatch, capsys, data, "import", "exp_missing")
    assert code == 2
    assert "at least one of" in err
    created(monkeypatch, capsys, data, files)
    code, _, err = cli(monkeypatch, capsys, data, "import", "exp_wake", "--assignments", str(files["touches"]))
    assert code == 2
    assert "missing a column" in err
    code, _, err = cli(
        monkeypatch, capsys, data, "create", "--name", "x", "--control", "a", "--variant", "a=1", "--goal", "g"
    )  # fmt: skip
    assert code == 2
    assert "at least two" in " ".join(err.split())


def test_report_with_a_strategy_comparison(monkeypatch, capsys, tmp_path, files) -> None:
    data = tmp_path / "data"
    created(monkeypatch, capsys, data, files)
    other = simulate_campaign(4, 2000, shares={"holdout": 0.5, "push": 0.5}, lift=0.0)
    paths = {name: tmp_path / f"other-{name}.csv" for name in ("assignments", "conversions")}
    other.assignments.write_csv(paths["assignments"])
    other.conversions.with_columns(conversion_id="o" + other.conversions["conversion_id"]).write_csv(
        paths["conversions"]
    )
    code, _, err = cli(
        monkeypatch, capsys, data, "create", "--name", "只推送", "--control", "holdout", "--variant", "holdout=1",
        "--variant", "push=1", "--goal", "wealth_purchase", "--id", "exp_push_only", "--campaign", "push-only",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = cli(
        monkeypatch, capsys, data, "import", "exp_push_only",
        "--assignments", str(paths["assignments"]), "--conversions", str(paths["conversions"]),
    )  # fmt: skip
    assert code == 0, err
    html, xlsx = tmp_path / "report.html", tmp_path / "report.xlsx"
    code, _, err = cli(
        monkeypatch, capsys, data, "report", "exp_wake", "--out", str(html), "--xlsx", str(xlsx),
        "--compare", "exp_push_only",
    )  # fmt: skip
    assert code == 0, err
    page = html.read_text(encoding="utf-8")
    assert "策略对比" in page
    assert "push-only·push" in page
    assert "dormant-wakeup·sms" in page
    rows = list(load_workbook(xlsx)["策略对比"].iter_rows(values_only=True))
    assert {row[0] for row in rows[1:]} == {"exp_wake", "exp_push_only"}
    code, _, err = cli(monkeypatch, capsys, data, "report", "exp_wake", "--out", str(html), "--compare", "exp_nope")
    assert code == 3
