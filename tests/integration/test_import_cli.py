"""`marketloop import` end to end: the shipped examples, JSON output, preview, exit codes and messages on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from marketloop.cli.main import app, main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "import"
ORDER = (
    "branches",
    "relationship_managers",
    "customers",
    "accounts",
    "products",
    "holdings",
    "transactions",
    "payroll",
    "rm_assignments",
)
runner = CliRunner()


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of examples/import, so rejects files are written beside the copies."""
    return Path(shutil.copytree(EXAMPLES, tmp_path / "examples"))


def imported(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["import", *args, "--json"])
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = orjson.loads(result.stdout)
    return summary


def failed(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(["import", *args])
    return int(exited.value.code or 0), capsys.readouterr().err


def test_every_example_imports_and_a_rerun_changes_nothing(examples: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    first = {
        t: imported(t, str(examples / f"{t}.csv"), "-m", str(examples / f"{t}.yaml"), "--data-dir", data) for t in ORDER
    }
    assert first["customers"] | {"seconds": 0} == {
        "table": "customers",
        "read": 11,
        "inserted": 7,
        "updated": 0,
        "unchanged": 0,
        "rejected": 3,
        "duplicates": 1,
        "rejects_file": str(examples / "customers.rejects.csv"),
        "seconds": 0,
    }
    assert all(
        first[t]["rejected"] == 0 and first[t]["inserted"] == first[t]["read"] for t in ORDER if t != "customers"
    )
    for table in ORDER:
        again = imported(
            table, str(examples / f"{table}.csv"), "-m", str(examples / f"{table}.yaml"), "--data-dir", data
        )
        assert (again["inserted"], again["updated"]) == (0, 0)
    gbk = imported(
        "customers", str(examples / "customers_gbk.csv"), "-m", str(examples / "customers_gbk.yaml"), "--data-dir", data
    )
    assert (gbk["read"], gbk["inserted"], gbk["updated"], gbk["unchanged"]) == (7, 0, 1, 6)  # C0000002 differs


def test_the_table_output_names_the_rejects_file(examples: Path, tmp_path: Path) -> None:
    rejects = tmp_path / "refused.csv"
    args = [
        "customers",
        str(examples / "customers.csv"),
        "-m",
        str(examples / "customers.yaml"),
        "--rejects",
        str(rejects),
    ]
    result = runner.invoke(app, ["import", *args, "--data-dir", str(tmp_path / "data")], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"all 4 are in {rejects}" in result.stdout
    assert "has a wrong check digit" in result.stdout
    assert rejects.exists()
    assert not (examples / "customers.rejects.csv").exists()


def test_preview_masks_personal_values_and_loads_nothing(examples: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    args = ["customers", str(examples / "customers.csv"), "-m", str(examples / "customers.yaml"), "--data-dir", data]
    result = runner.invoke(app, ["import", *args, "--preview", "--rows", "2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "138****8001" in result.stdout
    assert "张*" in result.stdout
    assert "13800138001" not in result.stdout
    assert "张伟" not in result.stdout
    assert "would insert" in result.stdout
    assert not (examples / "customers.rejects.csv").exists()
    assert imported(*args, "--preview")["inserted"] == 0
    count = runner.invoke(app, ["import", *args, "--preview", "--json"])
    assert orjson.loads(count.stdout)["existing"] == 0


def test_wrong_encoding_exit_2_with_the_fix(examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = failed(
        capsys,
        "customers",
        str(examples / "customers_gbk.csv"),
        "-m",
        str(examples / "customers.yaml"),
        "--data-dir",
        str(tmp_path),
    )
    assert code == 2
    assert "is not valid UTF-8" in err
    assert "encoding: gbk" in err


def test_a_bad_mapping_exit_2_naming_the_columns(
    examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "bad.yaml"
    mapping.write_text("table: customers\ncolumns:\n  cust_no: 客户号\n  nickname: 昵称\n")
    code, err = failed(
        capsys, "customers", str(examples / "customers.csv"), "-m", str(mapping), "--data-dir", str(tmp_path)
    )
    assert code == 2
    assert "columns.nickname: customers has no column 'nickname'" in err
    assert "required column branch_id is not mapped" in err


def test_missing_columns_exit_2(examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = failed(
        capsys,
        "customers",
        str(examples / "accounts.csv"),
        "-m",
        str(examples / "customers.yaml"),
        "--data-dir",
        str(tmp_path),
    )
    assert code == 2
    assert "lacks columns the mapping reads" in err
    assert "missing 姓名" in err


def test_a_missing_file_and_a_table_mismatch_exit_2(
    examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = failed(
        capsys,
        "customers",
        str(tmp_path / "nope.csv"),
        "-m",
        str(examples / "customers.yaml"),
        "--data-dir",
        str(tmp_path),
    )
    assert (code, "cannot read" in err) == (2, True)
    code, err = failed(
        capsys,
        "accounts",
        str(examples / "customers.csv"),
        "-m",
        str(examples / "customers.yaml"),
        "--data-dir",
        str(tmp_path),
    )
    assert (code, "the mapping is for 'customers', not 'accounts'" in err) == (2, True)
