"""The analyst mart after nightly runs equals a full rebuild (issue #15: incremental publish).

One small demo (12 entities), nights in file order: a full run; a night with a changed phone, a
record deleted at source, a customer moved to the dormant archive and one reactivated (the
mart is updated as a delta); an erasure (no residue, the next night rebuilds the mart whole).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.access import keyring, open_warehouse
from pipelines.cli import main
from pipelines.runner import RunOutcome, run_pipeline
from pipelines.settings import ArchiveConfig, load_config
from sources.demo import write_demo
from warehouse import read_table
from warehouse.archive._hashing import table_content_hash
from warehouse.dormant import dormant_ids, hide_customers
from warehouse.publish import golden_snapshot_tables
from warehouse.security import (
    analyst_mart_key,
    open_analyst_mart,
    pseudonym_secret,
    read_parquet_any,
)
from warehouse.security.mart import build_analyst_mart_arrow
from warehouse.security.mart_delta import CHANGES_DIR, read_mart_parquet
from warehouse.security.masking import pseudonym

from .conftest import write_project

Rows = list[list[str]]


def _canon(table: pa.Table) -> pa.Table:
    """Values as text (the mart database and Arrow type a few columns differently)."""
    return pa.table({n: table.column(n).cast(pa.string()) for n in table.column_names})


def _full_rebuild(cfg: ArchiveConfig) -> dict[str, str]:
    """Content hash per table of the mart a full rebuild writes from the current golden state."""
    ring = keyring(cfg)
    assert ring is not None
    with open_warehouse(cfg, read_only=True) as con:
        tables = hide_customers(golden_snapshot_tables(con), dormant_ids(con))
    mart = build_analyst_mart_arrow(tables, pseudonym_secret(ring))
    return {name: table_content_hash(_canon(t)) for name, t in mart.items()}


def _mart_database(cfg: ArchiveConfig) -> dict[str, str]:
    ring = keyring(cfg)
    assert ring is not None
    path = cfg.resolve(cfg.security.analyst_mart)
    with open_analyst_mart(path, analyst_mart_key(ring), read_only=True) as mart:
        names = mart.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'mart'"
        ).fetchall()
        return {
            f"mart.{n}": table_content_hash(
                _canon(mart.sql(f"SELECT * FROM mart.{n}").to_arrow_table())
            )
            for (n,) in names
        }


def _mart_parquet(cfg: ArchiveConfig) -> dict[str, str]:
    ring = keyring(cfg)
    assert ring is not None
    folder = cfg.resolve(cfg.security.analyst_mart_parquet)
    return {
        p.stem: table_content_hash(
            _canon(read_mart_parquet(folder, p.stem, analyst_mart_key(ring)))
        )
        for p in sorted(folder.glob("mart.*.parquet"))
    }


def _assert_equals_full_rebuild(cfg: ArchiveConfig) -> None:
    full = _full_rebuild(cfg)
    assert _mart_database(cfg) == full
    assert _mart_parquet(cfg) == full


def _mart_mode(outcome: RunOutcome) -> tuple[str, int | None]:
    stats = outcome.stats.by_stage()["publish"].as_dict()
    return stats["mart"], stats.get("mart_customers")


def _next_export(landing: Path, day: str, edit: Callable[[list[str], Rows], Rows]) -> None:
    """The next full CRM export (the newest one, edited by ``edit(header, rows)``)."""
    old = sorted((landing / "sales").glob("*/*.csv"))[-1]
    rows = list(csv.reader(io.StringIO(old.read_bytes().decode("gb18030"))))
    header, body = rows[0], rows[1:]
    body = edit(header, body)
    target = landing / "sales" / day / old.name
    target.parent.mkdir(parents=True)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *body])
    target.write_bytes(out.getvalue().encode("gb18030"))


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mart")
    write_demo(root / "demo", entities=12, seed=3)
    cfg = write_project(root, root / "demo" / "landing")
    out = run_pipeline(cfg, run_date="2026-11-24")
    assert out.success, out.errors
    return cfg


def test_first_run_writes_the_whole_mart(nights: Path) -> None:
    cfg = load_config(nights)
    _assert_equals_full_rebuild(cfg)
    assert not (cfg.resolve(cfg.security.analyst_mart_parquet) / CHANGES_DIR).exists()


def test_nightly_mart_is_a_delta_equal_to_a_full_rebuild(nights: Path) -> None:
    """A changed phone, a record deleted at source, dormant hide and reactivate in one night."""
    cfg = load_config(nights)
    with open_warehouse(cfg, read_only=True) as con:
        customers = read_table(con, "golden.customers")
        crosswalk = read_table(con, "golden.crosswalk")
    assert customers is not None and crosswalk is not None
    dormant = sorted(customers.loc[customers["lifecycle"] == "dormant", "customer_id"])
    sales = crosswalk[crosswalk["source_system"] == "sales"].drop_duplicates("customer_id")
    sales = sales.set_index("customer_id")["source_record_id"]
    resumed = next(c for c in dormant if c in sales.index)  # gets a new contract below
    kept = next(c for c in dormant if c != resumed)  # stays dormant: hidden from analysts
    assert main(["dormant", "approve", kept, resumed, "--config", str(nights),
                 "--reason", "审批单 2026-18", "--date", "2026-11-25"]) == 0  # fmt: skip
    others = [r for c, r in sales.items() if c not in (kept, resumed)]
    changed_id, deleted_id = others[0], others[1]

    def edit(header: list[str], body: list[list[str]]) -> list[list[str]]:
        at = {n: header.index(n) for n in ("客户编号", "签约日期", "合同编号", "合同金额",
                                            "更新时间", "手机")}  # fmt: skip
        out = []
        for row in body:
            if row[at["客户编号"]] == deleted_id:
                continue  # missing from the full export: deleted at source
            if row[at["客户编号"]] == changed_id:
                row[at["手机"]] = "13900001234"
            if row[at["客户编号"]] == sales[resumed]:
                row[at["签约日期"]], row[at["合同编号"]] = "2026-11-25", "HT-RESUMED-2"
                row[at["合同金额"]], row[at["更新时间"]] = "66000.00", "2026-11-25 10:00:00"
            out.append(row)
        return out

    _next_export(cfg.resolve(cfg.landing_dir), "2026-11-25", edit)
    out = run_pipeline(nights, run_date="2026-11-25")
    assert out.success, out.errors
    mode, touched = _mart_mode(out)
    assert mode == "delta"
    assert touched is not None and 3 <= touched < len(customers)
    _assert_equals_full_rebuild(cfg)
    ring = keyring(cfg)
    assert ring is not None
    secret = pseudonym_secret(ring)
    ids = set(
        read_mart_parquet(
            cfg.resolve(cfg.security.analyst_mart_parquet), "customers", analyst_mart_key(ring)
        )
        .column("customer_id")
        .to_pylist()
    )
    assert pseudonym(kept, secret) not in ids
    assert pseudonym(resumed, secret) in ids  # reactivated: back in the analysts' view
    assert (cfg.resolve(cfg.security.analyst_mart_parquet) / CHANGES_DIR).is_dir()


def test_erasure_leaves_no_mart_residue_and_the_next_night_rebuilds(nights: Path) -> None:
    cfg = load_config(nights)
    ring = keyring(cfg)
    assert ring is not None
    with open_warehouse(cfg, read_only=True) as con:
        (victim,) = con.execute(
            "SELECT customer_id FROM golden.customers WHERE customer_type = 'individual'"
            " ORDER BY customer_id LIMIT 1"
        ).fetchall()[0]
    assert main(["erase", "--customer", victim, "--reason", "PIPL 删除请求",
                 "--config", str(nights)]) == 0  # fmt: skip
    alias = pseudonym(victim, pseudonym_secret(ring))
    folder = cfg.resolve(cfg.security.analyst_mart_parquet)
    for path in sorted(folder.rglob("*.parquet")):  # the full write and every change file
        table = read_parquet_any(path, analyst_mart_key(ring))
        if "customer_id" in table.column_names:
            assert alias not in table.column("customer_id").to_pylist(), path
    _next_export(cfg.resolve(cfg.landing_dir), "2026-11-26", lambda header, body: body[:-1])
    out = run_pipeline(nights, run_date="2026-11-26")
    assert out.success, out.errors
    assert _mart_mode(out)[0] == "full"  # the erasure changed the warehouse outside a run
    _assert_equals_full_rebuild(cfg)
    assert not (folder / CHANGES_DIR).exists()
    assert alias not in _mart_database_ids(cfg)


def _mart_database_ids(cfg: ArchiveConfig) -> set[str]:
    ring = keyring(cfg)
    assert ring is not None
    path = cfg.resolve(cfg.security.analyst_mart)
    with open_analyst_mart(path, analyst_mart_key(ring), read_only=True) as mart:
        return {r[0] for r in mart.execute("SELECT customer_id FROM mart.customers").fetchall()}
