"""The import service on real stores: merge, idempotent re-runs, updates, preview, rejects, atomicity, OneID hook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.bank import CUSTOMERS, TableSpec
from marketloop.core.errors import MarketloopError
from marketloop.ports.bank import BankStore, MergeResult
from marketloop.profiles.imports import ImportRequest, ImportService
from marketloop.testing.bank_files import id_card, write_csv, wrong_check_digit

HEADER = ["客户号", "姓名", "证件号码", "手机号", "开户日期", "所属机构", "风险等级"]
MAPPING = """
table: customers
columns:
  cust_no: 客户号
  name: 姓名
  id_card: 证件号码
  phone: 手机号
  open_date: 开户日期
  branch_id: 所属机构
  risk_tolerance: {from: 风险等级, map: {稳健型: C3, 积极型: C4}}
"""
ZHANG = ["C001", "张伟", id_card("19850312", sequence="123"), "138 0013 8001", "2015-06-01", "010101", "稳健型"]
OUYANG = ["C002", "欧阳娜娜", id_card("19951105", sequence="368"), "+86 13700138002", "2020-11-20", "010102", "积极型"]
WANG = ["C003", "王芳", id_card("19900721", sequence="246"), "13900138003", "2018-03-15", "010101", "稳健型"]


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    yield opened
    opened.close()


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "customers.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    return path


def run(container: Container, file: Path, mapping: Path, **options: object) -> dict[str, object]:
    request = ImportRequest(table="customers", file=file, mapping=mapping, **options)  # type: ignore[arg-type]
    return ImportService(container.bank, container.cipher).run(request).summary()


def stored(container: Container) -> pl.DataFrame:
    return container.warehouse.cursor().sql("SELECT * FROM customers ORDER BY cust_no").pl()


def test_import_then_the_same_file_again_changes_nothing(container: Container, tmp_path: Path, mapping: Path) -> None:
    file = write_csv(tmp_path / "customers.csv", HEADER, [ZHANG, OUYANG, WANG])
    first = run(container, file, mapping)
    assert {k: first[k] for k in ("read", "inserted", "updated", "unchanged", "rejected", "duplicates")} == {
        "read": 3,
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "duplicates": 0,
    }
    before = stored(container)
    again = run(container, file, mapping)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert stored(container).equals(before)  # not even a ciphertext rewritten


def test_personal_fields_are_protected_at_rest(container: Container, tmp_path: Path, mapping: Path) -> None:
    run(container, write_csv(tmp_path / "customers.csv", HEADER, [ZHANG, OUYANG]), mapping)
    rows = stored(container).to_dicts()
    cipher = container.cipher
    assert [r["name_prefix"] for r in rows] == ["张", "欧阳"]
    assert cipher.decrypt(rows[0]["name_enc"], context="name_enc") == "张伟"
    assert cipher.decrypt(rows[1]["phone_enc"], context="phone_enc") == "13700138002"
    assert rows[1]["phone_hash"] == cipher.keyed_hash("phone", "13700138002")
    assert rows[0]["id_card_hash"] == cipher.keyed_hash("id_card", ZHANG[2])
    assert (rows[0]["gender"], str(rows[0]["birth_date"])) == ("M", "1985-03-12")  # from the ID number
    assert "张伟" not in str(rows)
    assert ZHANG[2] not in str(rows)
    assert "13700138002" not in str(rows)


def test_a_changed_row_is_updated_and_the_others_keep_their_ciphertexts(
    container: Container, tmp_path: Path, mapping: Path
) -> None:
    run(container, write_csv(tmp_path / "v1.csv", HEADER, [ZHANG, OUYANG]), mapping)
    before = stored(container)
    moved = [*OUYANG[:3], "13700139999", *OUYANG[4:]]
    result = run(container, write_csv(tmp_path / "v2.csv", HEADER, [ZHANG, moved, WANG]), mapping)
    assert (result["inserted"], result["updated"], result["unchanged"]) == (1, 1, 1)
    after = stored(container)
    assert container.cipher.decrypt(after["phone_enc"][1], context="phone_enc") == "13700139999"
    assert after["name_enc"][1] == before["name_enc"][1]  # the name did not change: same ciphertext
    assert after.row(0) == before.row(0)


def test_an_import_of_some_columns_keeps_the_others(container: Container, tmp_path: Path, mapping: Path) -> None:
    run(container, write_csv(tmp_path / "full.csv", HEADER, [ZHANG]), mapping)
    risk_only = tmp_path / "risk.yaml"
    risk_only.write_text(
        "table: customers\ncolumns:\n  cust_no: 客户号\n  branch_id: 机构\n  open_date: 开户\n  risk_tolerance: 风险\n"
    )
    result = run(
        container,
        write_csv(tmp_path / "risk.csv", ["客户号", "机构", "开户", "风险"], [["C001", "010101", "2015-06-01", "C5"]]),
        risk_only,
    )
    assert result["updated"] == 1
    row = stored(container).row(0, named=True)
    assert row["risk_tolerance"] == "C5"
    assert container.cipher.decrypt(row["name_enc"], context="name_enc") == "张伟"
    assert row["phone_hash"] is not None


def test_rejects_file_holds_each_refused_row_as_read_with_line_and_reasons(
    container: Container, tmp_path: Path, mapping: Path
) -> None:
    bad_id = ["C004", "孙磊", wrong_check_digit(WANG[2]), "13800138004", "2012-07-01", "010101", "稳健型"]
    bad_phone_and_date = ["C005", "周杰", id_card("19791111"), "0574-8888", "2011-13-05", "020101", "稳健型"]
    unknown_risk = ["C006", "吴静", id_card("19920808"), "13500138006", "2019-01-01", "010101", "保守型"]
    file = write_csv(tmp_path / "customers.csv", HEADER, [ZHANG, bad_id, bad_phone_and_date, unknown_risk])
    result = run(container, file, mapping)
    assert (result["inserted"], result["rejected"], result["rejects_file"]) == (
        1,
        3,
        str(tmp_path / "customers.rejects.csv"),
    )
    raw = (tmp_path / "customers.rejects.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese correctly
    rejects = pl.read_csv(raw, infer_schema=False)
    assert rejects.columns == ["_line", "_reason", *HEADER]
    assert rejects["_line"].to_list() == ["3", "4", "5"]
    assert rejects["_reason"].to_list() == [
        "id_card (证件号码) has a wrong check digit (GB 11643)",
        "phone (手机号) is not a mainland mobile number; open_date (开户日期): '2011-13-05' is not a date",
        "risk_tolerance (风险等级): '保守型' is not one of C1, C2, C3, C4, C5",
    ]
    assert rejects.row(1)[2:] == tuple(bad_phone_and_date)  # the row exactly as it was in the file


def test_duplicate_keys_keep_the_last_row_and_report_the_others(
    container: Container, tmp_path: Path, mapping: Path
) -> None:
    older = [*ZHANG[:6], "积极型"]
    file = write_csv(tmp_path / "customers.csv", HEADER, [older, OUYANG, ZHANG, older[:1] + ZHANG[1:]])
    result = run(container, file, mapping)
    assert (result["inserted"], result["duplicates"], result["rejected"]) == (2, 2, 0)
    rejects = pl.read_csv(tmp_path / "customers.rejects.csv", infer_schema=False)
    assert rejects["_line"].to_list() == ["2", "4"]
    assert rejects["_reason"].to_list() == ["duplicate key cust_no=C001 (line 5 kept)"] * 2


def test_dedupe_keep_first(container: Container, tmp_path: Path, mapping: Path) -> None:
    mapping.write_text(MAPPING + "dedupe: {keep: first}\n", encoding="utf-8")
    older = [*ZHANG[:6], "积极型"]
    run(container, write_csv(tmp_path / "customers.csv", HEADER, [older, ZHANG]), mapping)
    assert stored(container)["risk_tolerance"].to_list() == ["C4"]


def test_preview_writes_nothing(container: Container, tmp_path: Path, mapping: Path) -> None:
    file = write_csv(tmp_path / "customers.csv", HEADER, [ZHANG, [*WANG[:3], "12", *WANG[4:]]])
    request = ImportRequest(table="customers", file=file, mapping=mapping, preview=True, preview_rows=5)
    result = ImportService(container.bank, container.cipher).run(request)
    assert container.bank.count(CUSTOMERS) == 0
    assert not (tmp_path / "customers.rejects.csv").exists()
    assert (result.read, result.rejected, result.merged, result.rejects_file) == (2, 1, None, None)
    sample = result.sample.row(0, named=True)
    assert (sample["name"], sample["phone"], sample["id_card"]) == ("张*", "138****8001", "3301**********1231")
    assert result.reject_sample["_reason"].to_list() == ["phone (手机号) is not a mainland mobile number"]


def test_preview_counts_keys_already_stored(container: Container, tmp_path: Path, mapping: Path) -> None:
    run(container, write_csv(tmp_path / "v1.csv", HEADER, [ZHANG]), mapping)
    request = ImportRequest(
        table="customers", file=write_csv(tmp_path / "v2.csv", HEADER, [ZHANG, WANG]), mapping=mapping, preview=True
    )
    assert ImportService(container.bank, container.cipher).run(request).existing == 1


class FailingMerge:
    """A bank store whose merge breaks half-way: the real merge is given a row the table refuses (NULL branch)."""

    def __init__(self, bank: BankStore) -> None:
        self._bank = bank

    def merge(self, table: TableSpec, rows: pl.DataFrame) -> MergeResult:
        broken = rows.with_columns(
            pl.when(pl.col("cust_no") == "C003").then(None).otherwise(pl.col("branch_id")).alias("branch_id")
        )
        return self._bank.merge(table, broken)

    def append(self, table: TableSpec, rows: pl.DataFrame) -> int:
        return self._bank.append(table, rows)

    def count(self, table: TableSpec) -> int:
        return self._bank.count(table)

    def fetch(self, table: TableSpec, keys: pl.DataFrame) -> pl.DataFrame:
        return self._bank.fetch(table, keys)


def test_a_failed_merge_leaves_nothing_half_loaded(container: Container, tmp_path: Path, mapping: Path) -> None:
    run(container, write_csv(tmp_path / "v1.csv", HEADER, [ZHANG]), mapping)
    before = stored(container)
    changed = [*ZHANG[:6], "积极型"]
    file = write_csv(tmp_path / "v2.csv", HEADER, [changed, OUYANG, WANG])
    with pytest.raises(Exception, match="NOT NULL"):
        ImportService(FailingMerge(container.bank), container.cipher).run(
            ImportRequest(table="customers", file=file, mapping=mapping)
        )
    assert stored(container).equals(before)  # neither the update of C001 nor the insert of C002


def test_bad_input_is_refused_before_anything_is_loaded(container: Container, tmp_path: Path, mapping: Path) -> None:
    missing = write_csv(tmp_path / "missing.csv", HEADER[:-1], [ZHANG[:-1]])
    with pytest.raises(MarketloopError, match="lacks columns the mapping reads"):
        run(container, missing, mapping)
    gbk = write_csv(tmp_path / "gbk.csv", HEADER, [ZHANG], encoding="gbk")
    with pytest.raises(MarketloopError, match="set `encoding: gbk`"):
        run(container, gbk, mapping)
    assert container.bank.count(CUSTOMERS) == 0


def test_a_declared_gbk_file_imports(container: Container, tmp_path: Path, mapping: Path) -> None:
    mapping.write_text(MAPPING + "encoding: gbk\n", encoding="utf-8")
    run(container, write_csv(tmp_path / "gbk.csv", HEADER, [ZHANG, OUYANG], encoding="gbk"), mapping)
    names = [container.cipher.decrypt(v, context="name_enc") for v in stored(container)["name_enc"]]
    assert names == ["张伟", "欧阳娜娜"]


def test_the_customers_hook_gets_the_identifiers_for_oneid(container: Container, tmp_path: Path, mapping: Path) -> None:
    seen: list[pl.DataFrame] = []
    service = ImportService(container.bank, container.cipher, on_customers=seen.append)
    file = write_csv(tmp_path / "customers.csv", HEADER, [ZHANG, OUYANG])
    result = service.run(ImportRequest(table="customers", file=file, mapping=mapping))
    assert len(seen) == 1
    assert result.customers is not None
    assert seen[0].equals(result.customers)
    assert seen[0].columns == ["cust_no", "phone", "phone_hash", "id_card", "id_card_hash"]
    assert seen[0].row(1) == (
        "C002",
        "13700138002",
        container.cipher.keyed_hash("phone", "13700138002"),
        OUYANG[2],
        container.cipher.keyed_hash("id_card", OUYANG[2]),
    )


def test_an_old_rejects_file_does_not_outlive_a_clean_run(container: Container, tmp_path: Path, mapping: Path) -> None:
    (tmp_path / "customers.rejects.csv").write_text("_line,_reason\n9,old\n")
    result = run(container, write_csv(tmp_path / "customers.csv", HEADER, [ZHANG]), mapping)
    assert result["rejects_file"] is None
    assert pl.read_csv(tmp_path / "customers.rejects.csv").height == 0


def test_other_tables_import_too(container: Container, tmp_path: Path) -> None:
    mapping = tmp_path / "products.yaml"
    columns = "  product_code: 代码\n  name: 名称\n  product_type: {from: 类型, map: {理财: wealth}}\n"
    columns += "  on_sale: {default: true}\n"
    mapping.write_text(f"table: products\ncolumns:\n{columns}")
    file = write_csv(tmp_path / "products.csv", ["代码", "名称", "类型"], [["WM90", "稳享90天", "理财"]])
    request = ImportRequest(table="products", file=file, mapping=mapping)
    result = ImportService(container.bank, container.cipher).run(request)
    assert (result.merged, result.customers) == (MergeResult(inserted=1, updated=0, unchanged=0), None)


def test_an_import_through_the_container_links_each_customer_in_oneid(
    container: Container, tmp_path: Path, mapping: Path
) -> None:
    container.imports.run(
        ImportRequest(table="customers", file=write_csv(tmp_path / "c.csv", HEADER, [ZHANG, OUYANG]), mapping=mapping)
    )
    identity = container.identity
    by_number = identity.resolve(identity.identifier("cust_no", "C002"))
    assert by_number is not None
    assert identity.resolve(identity.identifier("phone", "+86 137 0013 8002")) == by_number
    assert identity.resolve(identity.identifier("id_card", OUYANG[2])) == by_number
    assert identity.resolve(identity.identifier("phone", "13800138001")) not in (None, by_number)
    # Importing the same file again links nothing new: the same OneIDs.
    container.imports.run(
        ImportRequest(table="customers", file=write_csv(tmp_path / "c.csv", HEADER, [ZHANG, OUYANG]), mapping=mapping)
    )
    assert identity.resolve(identity.identifier("cust_no", "C002")) == by_number


def test_a_phone_moving_to_another_customer_number_is_not_a_merge(
    container: Container, tmp_path: Path, mapping: Path
) -> None:
    moved = [*WANG[:3], ZHANG[3], *WANG[4:]]  # 王芳 now has 张伟's old phone number
    file = write_csv(tmp_path / "c.csv", HEADER, [ZHANG, moved])
    container.imports.run(ImportRequest(table="customers", file=file, mapping=mapping))
    identity = container.identity
    assert identity.resolve(identity.identifier("cust_no", "C001")) != identity.resolve(
        identity.identifier("cust_no", "C003")
    ), "two customer numbers never merge"
