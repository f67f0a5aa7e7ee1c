"""`marketloop experiment analyze` on CSV and Parquet: the numbers, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest
from scipy import stats as sps

from marketloop.testing.cli import run_cli


@pytest.fixture
def ab_frame() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    n = 4000
    variant = rng.choice(["holdout", "push", "sms"], n, p=[0.2, 0.4, 0.4])
    pre_aum = rng.gamma(2.0, 50_000.0, n)
    converted = (rng.random(n) < np.where(variant == "holdout", 0.05, 0.08)).astype(np.int64)
    aum = 0.9 * pre_aum + rng.normal(0, 20_000, n) + np.where(variant == "sms", 6_000, 0)
    return pl.DataFrame({"group": variant, "converted": converted, "aum": aum, "pre_aum": pre_aum})


def analyze(monkeypatch, capsys, path: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(monkeypatch, capsys, "experiment", "analyze", "--data", str(path), *extra)


def test_json_has_every_field_and_the_numbers_match_scipy(monkeypatch, capsys, tmp_path, ab_frame) -> None:
    path = tmp_path / "ab.csv"
    ab_frame.write_csv(path)
    code, out, err = analyze(
        monkeypatch, capsys, path, "--variant-col", "group", "--control", "holdout",
        "--metric", "converted", "--metric", "aum", "--planned-split", "holdout=20,push=40,sms=40", "--json",
    )  # fmt: skip
    assert code == 0, err
    found = orjson.loads(out)
    converted, aum = found["metrics"]
    assert converted["kind"] == "binary"
    assert converted["test"].startswith("two-proportion z-test")
    assert aum["kind"] == "continuous"
    assert aum["test"].startswith("Welch")
    assert [v["variant"] for v in aum["variants"]] == ["holdout", "push", "sms"]
    for row in aum["variants"][1:]:
        assert {"n", "mean", "lift_abs", "lift_rel", "ci_low", "ci_high", "p_value", "test", "warnings"} <= set(row)
        a = ab_frame.filter(pl.col("group") == "holdout")["aum"].to_numpy()
        b = ab_frame.filter(pl.col("group") == row["variant"])["aum"].to_numpy()
        reference = sps.ttest_ind(b, a, equal_var=False)
        assert row["n"] == len(b)
        assert row["mean"] == pytest.approx(b.mean())
        assert row["lift_abs"] == pytest.approx(b.mean() - a.mean())
        assert row["lift_rel"] == pytest.approx(b.mean() / a.mean() - 1)
        assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
        low, high = reference.confidence_interval(0.95)
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    control = converted["variants"][0]
    assert control["lift_abs"] is None
    assert control["p_value"] is None
    assert found["sample_ratio"]["mismatch"] is False
    assert found["sample_ratio"]["expected_share"] == {"holdout": 0.2, "push": 0.4, "sms": 0.4}


def test_cuped_narrows_the_interval_on_parquet(monkeypatch, capsys, tmp_path, ab_frame) -> None:
    path = tmp_path / "ab.parquet"
    ab_frame.write_parquet(path)
    base = ["--variant-col", "group", "--control", "holdout", "--metric", "aum", "--json"]
    _, plain, _ = analyze(monkeypatch, capsys, path, *base)
    code, adjusted, err = analyze(monkeypatch, capsys, path, *base, "--covariate", "pre_aum")
    assert code == 0, err
    before = orjson.loads(plain)["metrics"][0]["variants"][2]
    after_metric = orjson.loads(adjusted)["metrics"][0]
    after = after_metric["variants"][2]
    assert after_metric["cuped"]["variance_reduction"] > 0.5
    assert "CUPED" in after_metric["test"]
    assert after["ci_high"] - after["ci_low"] < 0.7 * (before["ci_high"] - before["ci_low"])
    assert after["lift_abs"] == pytest.approx(before["lift_abs"], rel=0.5)  # same effect, less noise


def test_sample_ratio_mismatch_and_early_look_are_warned(monkeypatch, capsys, tmp_path, ab_frame) -> None:
    path = tmp_path / "ab.csv"
    ab_frame.write_csv(path)
    code, out, _ = analyze(
        monkeypatch, capsys, path, "--variant-col", "group", "--control", "holdout", "--metric", "converted",
        "--planned-split", "holdout=1,push=1,sms=1", "--planned-n", "40000", "--json",
    )  # fmt: skip
    assert code == 0
    found = orjson.loads(out)
    codes = {w["code"] for w in found["warnings"]}
    assert {"sample-ratio-mismatch", "peeking"} <= codes
    assert found["peeking"]["early"] is True
    assert found["metrics"][0]["alpha"] == pytest.approx(found["peeking"]["sequential_alpha"])
    assert found["metrics"][0]["alpha"] < 0.001


def test_small_test_is_warned_underpowered(monkeypatch, capsys, tmp_path) -> None:
    path = tmp_path / "small.csv"
    pl.DataFrame({"v": ["a"] * 30 + ["b"] * 30, "y": [0, 1] * 15 + [1, 0, 0] * 10}).write_csv(path)
    code, out, _ = analyze(monkeypatch, capsys, path, "--variant-col", "v", "--control", "a", "--metric", "y", "--json")
    assert code == 0
    warnings = orjson.loads(out)["metrics"][0]["variants"][1]["warnings"]
    assert [w["code"] for w in warnings] == ["underpowered"]


def test_table_output_is_chinese_first(monkeypatch, capsys, tmp_path, ab_frame) -> None:
    path = tmp_path / "ab.csv"
    ab_frame.write_csv(path)
    code, out, _ = analyze(
        monkeypatch, capsys, path, "--variant-col", "group", "--control", "holdout", "--metric", "aum"
    )
    assert code == 0
    assert "对照" in out
    assert "样本比例检查" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variant-col", "arm", "--control", "holdout", "--metric", "aum"], "no column 'arm'"),
        (["--variant-col", "group", "--control", "holdout", "--metric", "nope"], "no column 'nope'"),
        (["--variant-col", "group", "--control", "control", "--metric", "aum"], "the values are holdout, push, sms"),
        (["--variant-col", "group", "--control", "holdout", "--metric", "city"], "column 'city' holds String"),
        (
            ["--variant-col", "group", "--control", "holdout", "--metric", "aum", "--planned-split", "a=x"],
            "variant=weight",
        ),
        (
            [
                "--variant-col",
                "group",
                "--control",
                "holdout",
                "--metric",
                "aum",
                "--planned-split",
                "holdout=1,push=1",
            ],
            "not in the planned split",
        ),
    ],
)
def test_bad_input_is_a_readable_error(monkeypatch, capsys, tmp_path, ab_frame, args, message) -> None:
    path = tmp_path / "ab.csv"
    ab_frame.with_columns(city=pl.lit("上海")).write_csv(path)
    code, out, err = analyze(monkeypatch, capsys, path, *args)
    assert code == 2
    assert message in " ".join(err.split())
    assert out == ""


def test_a_single_variant_and_a_tiny_variant_are_refused(monkeypatch, capsys, tmp_path) -> None:
    path = tmp_path / "one.csv"
    pl.DataFrame({"v": ["a", "a", "a"], "y": [1, 0, 1]}).write_csv(path)
    code, _, err = analyze(monkeypatch, capsys, path, "--variant-col", "v", "--control", "a", "--metric", "y")
    assert code == 2
    assert "Only one variant" in err
    pl.DataFrame({"v": ["a", "a", "a", "b"], "y": [1, 0, 1, 1]}).write_csv(path)
    code, _, err = analyze(monkeypatch, capsys, path, "--variant-col", "v", "--control", "a", "--metric", "y")
    assert code == 2
    assert "variant 'b' has 1 customers" in " ".join(err.split())


def test_an_unreadable_file_is_a_readable_error(monkeypatch, capsys, tmp_path) -> None:
    code, _, err = analyze(
        monkeypatch, capsys, tmp_path / "missing.csv", "--variant-col", "v", "--control", "a", "--metric", "y"
    )
    assert code == 2
    assert "no such file" in " ".join(err.split())
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    code, _, err = analyze(monkeypatch, capsys, broken, "--variant-col", "v", "--control", "a", "--metric", "y")
    assert code == 2
    assert "Cannot read the data file" in err


def test_previous_looks_lower_the_alpha_of_this_look(monkeypatch, capsys, tmp_path, ab_frame) -> None:
    path = tmp_path / "ab.csv"
    ab_frame.write_csv(path)
    base = ["--variant-col", "group", "--control", "holdout", "--metric", "converted", "--planned-n", "8000", "--json"]
    _, first, _ = analyze(monkeypatch, capsys, path, *base)
    code, third, err = analyze(monkeypatch, capsys, path, *base, "--previous-look", "1000", "--previous-look", "2000")
    assert code == 0, err
    one, three = orjson.loads(first)["peeking"], orjson.loads(third)["peeking"]
    assert (one["looks"], three["looks"]) == (1, 3)
    assert three["sequential_alpha"] < one["sequential_alpha"]
    code, _, err = analyze(monkeypatch, capsys, path, *base[:-3], "--previous-look", "10")
    assert code == 2
    assert "--planned-n" in err
