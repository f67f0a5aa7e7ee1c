"""Import throughput of `marketloop import customers` on a generated core-banking export, against a raw baseline.

What it does, as a user would:

1. writes a customers CSV with Chinese headers (default 1,000,000 rows; valid GB 11643 ID numbers, phones in
   several spellings, ~0.2% bad ID numbers or phones, ~0.1% repeated customer numbers);
2. runs `marketloop import customers FILE --mapping examples/import/customers.yaml --json` into a fresh data
   directory, then the same command again (idempotent: inserted 0, updated 0);
3. raw: DuckDB's own `read_csv` of the same file into a plain table in a fresh database: no cleaning, no
   validation, no encryption: what loading the bytes costs.

Prints one JSON line. `--rows N` for a smaller run; `--keep DIR` keeps the file and data directory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "examples" / "import" / "customers.yaml"
WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
CHECK = np.array(list("10X98765432"))
SURNAMES = [*list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"), "欧阳", "司马", "诸葛"]
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰")
REGIONS = ["110101", "310104", "330106", "330203", "440305", "510107", "420106", "320102"]
RISK = ["保守型", "谨慎型", "稳健型", "积极型", "激进型"]


def id_numbers(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid 18-character ID numbers (vectorised GB 11643 check digit) and their birth dates (YYYYMMDD)."""
    born = np.datetime64("1950-01-01") + rng.integers(0, 55 * 365, n).astype("timedelta64[D]")
    birth = np.char.replace(np.datetime_as_string(born, unit="D"), "-", "")
    sequence = np.char.zfill(rng.integers(0, 1000, n).astype(str), 3)
    first17 = np.char.add(np.char.add(rng.choice(REGIONS, n), birth), sequence)
    digits = np.frombuffer("".join(first17).encode(), dtype=np.uint8).reshape(n, 17) - ord("0")
    return np.char.add(first17, CHECK[(digits * WEIGHTS).sum(axis=1) % 11]), birth


def generate(path: Path, n: int, seed: int = 20240601) -> None:
    rng = np.random.default_rng(seed)
    ids, birth = id_numbers(rng, n)
    bad = rng.random(n)
    ids = np.where(bad < 0.001, np.char.add(ids.astype("<U17"), "0"), ids)  # mostly a wrong check digit
    phone = np.char.add("13", np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9))
    spelled = rng.integers(0, 4, n)
    phone = np.where(spelled == 1, np.char.add("+86 ", phone), phone)
    phone = np.where(spelled == 2, np.char.add("0086", phone), phone)
    phone = np.where(spelled == 3, np.char.add(np.char.add(" ", phone), " "), phone)
    phone = np.where((bad >= 0.001) & (bad < 0.002), "0571-8888", phone)
    cust = np.char.add("C", np.char.zfill(np.arange(n).astype(str), 9))
    cust = np.where(rng.random(n) < 0.001, np.roll(cust, 1), cust)  # repeated keys
    name = np.char.add(rng.choice(SURNAMES, n), np.char.add(rng.choice(GIVEN, n), rng.choice(GIVEN, n)))
    gender = np.where(ids.astype("<U17").view("<U1").reshape(n, 17)[:, 16].astype(int) % 2, "男", "女")
    opened = np.datetime_as_string(np.datetime64("2000-01-01") + rng.integers(0, 24 * 365, n).astype("timedelta64[D]"))
    frame = pl.DataFrame(
        {
            "客户号": cust,
            "姓名": name,
            "证件类型": "身份证",
            "证件号码": ids,
            "手机号": phone,
            "电子邮箱": np.where(rng.random(n) < 0.3, np.char.add(cust, "@example.com"), ""),
            "性别": gender,
            "出生日期": birth,
            "开户日期": opened,
            "所属机构": rng.choice(["010101", "010102", "020101"], n),
            "客户经理": rng.choice(["RM001", "RM002", "RM003", ""], n),
            "风险等级": rng.choice(RISK, n),
            "婚姻状况": rng.choice(["未婚", "已婚", "离异", "丧偶"], n),
            "所在城市": rng.choice(["杭州", "宁波", "温州"], n),
            "职业": rng.choice(["工程师", "教师", "医生", "销售", "退休"], n),
            "客户状态": rng.choice(["正常", "正常", "正常", "睡眠"], n),
        }
    )
    frame.write_csv(path)


def run_import(csv: Path, data_dir: Path) -> tuple[dict[str, object], float]:
    command = [sys.executable, "-m", "marketloop", "import", "customers", str(csv), "--mapping", str(MAPPING)]
    started = time.perf_counter()
    done = subprocess.run([*command, "--data-dir", str(data_dir), "--json"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout), time.perf_counter() - started


def raw_baseline(csv: Path, database: Path) -> float:
    started = time.perf_counter()
    con = duckdb.connect(str(database))
    con.execute(f"CREATE TABLE customers_raw AS SELECT * FROM read_csv('{csv}', all_varchar = true)")
    con.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="marketloop-import-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = work / "customers.csv"
    generate(csv, args.rows)
    first, first_wall = run_import(csv, work / "data")
    again, again_wall = run_import(csv, work / "data")
    raw = raw_baseline(csv, work / "raw.duckdb")
    result = {
        "rows": args.rows,
        "file_mb": round(csv.stat().st_size / 1e6, 1),
        "import": first,
        "import_wall_seconds": round(first_wall, 2),
        "reimport": again,
        "reimport_wall_seconds": round(again_wall, 2),
        "raw_duckdb_read_csv_seconds": round(raw, 2),
        "ratio_to_raw": round(first_wall / raw, 1),
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
