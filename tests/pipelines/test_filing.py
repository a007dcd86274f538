"""The archive office's outputs on a real run: registers, dossiers, replayed packages, dormant.

One small demo (12 entities) run once for the module; the tests that write go in file order.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from pipelines import filing
from pipelines.access import keyring, open_warehouse
from pipelines.cli import main
from pipelines.cli.query import open_for_role
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from sources.demo import write_demo
from warehouse import read_table
from warehouse.packages import verify_package
from warehouse.security import AuditLog, pseudonym_secret, role_database
from warehouse.security.masking import pseudonym

from .conftest import write_project


def _rows(path: Path) -> list[list[object]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()


@pytest.fixture(scope="module")
def filed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("filing")
    write_demo(root / "demo", entities=12, seed=3)
    cfg = write_project(root, root / "demo" / "landing")
    with cfg.open("a", encoding="utf-8") as f:
        f.write(
            "filing:\n"
            "  reviewed_by: 档案室主管\n"
            "  handled_by: 档案管理员\n"
            "  calendar:\n"
            "    overrides:\n"
            "      2027-01-01: holiday   # 元旦; chinesecalendar 1.11 has no 2027 data\n"
        )
    out = run_pipeline(cfg, run_date="2026-11-24")
    assert out.success, out.errors
    return cfg


def test_export_registers(filed: Path) -> None:
    cfg = load_config(filed)
    assert main(["export", "registers", "--config", str(filed), "--period", "2026-11"]) == 0
    folder = filing.filing_dir(cfg) / "registers" / "2026-11" / "admin"
    t1, t2, t3 = (folder / f"{n}_{t}_2026-11.xlsx" for n, t in
                  [("表1", "客户基础信息表"), ("表2", "客户动态信息记录表"),
                   ("表3", "客户资料归档记录表")])  # fmt: skip
    with open_warehouse(cfg, read_only=True) as con:
        customers = read_table(con, "golden.customers")
        interactions = read_table(con, "golden.interactions")
    rows = _rows(t1)
    assert rows[0][:3] == ["客户编号", "客户名称", "客户类型"]
    assert len(rows) - 1 == len(customers)
    assert sorted(r[0] for r in rows[1:]) == sorted(customers["customer_id"])
    assert {r[6] for r in rows[1:]} <= {"A类", "B类", "C类"}
    nov = interactions["interaction_date"].astype(str).str.startswith("2026-11").sum()
    assert len(_rows(t2)) - 1 == nov
    assert len(_rows(t3)) == 1  # headers only: nothing archived yet
    # analysts: pseudonymized ids, masked people
    assert main(["export", "registers", "--config", str(filed), "--period", "2026-11",
                 "--role", "analyst"]) == 0  # fmt: skip
    masked = _rows(filing.filing_dir(cfg) / "registers" / "2026-11" / "analyst" / t1.name)
    assert len(masked) == len(rows)
    assert not {r[0] for r in masked[1:]} & set(customers["customer_id"])
    # ops holds no customer data; dossiers are for steward and admin
    assert main(["export", "registers", "--config", str(filed), "--period", "2026-11",
                 "--role", "ops"]) == 2  # fmt: skip
    assert main(["export", "dossier", "--config", str(filed), "--period", "2026-11",
                 "--role", "analyst"]) == 2  # fmt: skip


def test_export_dossier(filed: Path) -> None:
    cfg = load_config(filed)
    with open_warehouse(cfg, read_only=True) as con:
        cid = str(read_table(con, "golden.customers")["customer_id"].iloc[0])
    assert main(["export", "dossier", "--config", str(filed), "--customer", cid,
                 "--date", "2026-11-30"]) == 0  # fmt: skip
    pdf = filing.filing_dir(cfg) / "dossiers" / f"{cid}-2026-Q4" / f"{cid}_档案_20261130.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert main(["export", "dossier", "--config", str(filed), "--customer", "C20990101999"]) == 1


def test_replayed_dates_make_month_end_and_year_end_packages(filed: Path) -> None:
    cfg = load_config(filed)
    days = [date(2026, 11, 27) + timedelta(days=i) for i in range(4)]  # Fri 27 … Mon 30 Nov
    days += [date(2026, 12, 30) + timedelta(days=i) for i in range(7)]  # … Tue 5 Jan 2027
    for day in days:
        assert main(["package", "due", "--config", str(filed), "--date", day.isoformat()]) == 0
    with open_warehouse(cfg, read_only=True) as con:
        packages = read_table(con, "filing.packages")
        documents = read_table(con, "filing.documents")
        customers = read_table(con, "golden.customers")
    got = dict(zip(packages["package_id"], packages["archived_on"].astype(str), strict=True))
    # last working days of Nov and Dec 2026; yearly on the first working day of 2027
    # (1 January is a holiday by the override, Saturday/Sunday 2–3 January are not working days)
    assert got == {
        "monthly-2026-11": "2026-11-30",
        "monthly-2026-12": "2026-12-31",
        "yearly-2026": "2027-01-04",
    }
    root = filing.filing_dir(cfg) / "packages"
    november = root / "2026" / "monthly-2026-11"
    yearly = root / "2026" / "yearly-2026"
    for folder in (november, root / "2026" / "monthly-2026-12", yearly):
        assert verify_package(folder) == []
    # November: every customer is new (first run 24 Nov) → a dossier each, listed in 表3
    t3 = _rows(november / "registers" / "表3_客户资料归档记录表_2026-11.xlsx")
    manifest = json.loads((november / "manifest.json").read_text(encoding="utf-8"))
    assert len(t3) - 1 == len(customers) == len(manifest["customers"])
    assert {r[1] for r in t3[1:]} == set(customers["customer_id"])
    assert {(r[2], r[6], r[7]) for r in t3[1:]} == {("2026-11-30", "档案管理员", "档案室主管")}
    pdfs = sorted(p.name for p in november.rglob("*.pdf"))
    assert len(pdfs) == len(customers) and all(n.endswith("_档案_20261130.pdf") for n in pdfs)
    # yearly: every customer again, and its 表3 lists the whole year's documents
    yearly_t3 = _rows(yearly / "registers" / "表3_客户资料归档记录表_2026.xlsx")
    assert len(yearly_t3) - 1 == len(customers)  # 2026's documents (the yearly ones are 2027)
    assert len(documents) == 2 * len(customers)
    note = json.loads((yearly / "manifest.json").read_text(encoding="utf-8"))["calendar"]
    assert note["approximated_years"] == [2027]
    # immutable, and tampering is detected
    assert main(["package", "monthly", "--config", str(filed), "--period", "2026-11"]) == 4
    victim = next(november.rglob("*.pdf"))
    victim.write_bytes(victim.read_bytes() + b"%")
    assert verify_package(november) == [f"checksum mismatch {victim.relative_to(november)}"]
    assert main(["package", "verify", "--config", str(filed)]) == 1


def _resume_business(landing: Path, record_id: str, day: str) -> None:
    """The next full CRM export, with a new contract for ``record_id`` signed on ``day``."""
    import csv
    import io

    (old,) = (landing / "sales").glob("*/*.csv")
    rows = list(csv.reader(io.StringIO(old.read_bytes().decode("gb18030"))))
    header = rows[0]
    at = {name: header.index(name) for name in ("客户编号", "签约日期", "合同编号", "合同金额",
                                                  "更新时间")}  # fmt: skip
    (row,) = [r for r in rows[1:] if r[at["客户编号"]] == record_id]
    row[at["签约日期"]], row[at["合同编号"]] = day, "HT-RESUMED-1"
    row[at["合同金额"]], row[at["更新时间"]] = "88000.00", f"{day} 10:00:00"
    target = landing / "sales" / day / old.name
    target.parent.mkdir(parents=True)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    target.write_bytes(out.getvalue().encode("gb18030"))


def test_dormant_archive_hidden_from_analysts_and_reactivated(filed: Path, capsys) -> None:
    cfg = load_config(filed)
    assert main(["dormant", "review", "--config", str(filed)]) == 0
    listing = capsys.readouterr().out
    with open_warehouse(cfg, read_only=True) as con:
        customers = read_table(con, "golden.customers")
        crosswalk = read_table(con, "golden.crosswalk")
    dormant = sorted(customers.loc[customers["lifecycle"] == "dormant", "customer_id"])
    assert dormant and all(c in listing for c in dormant)
    sales = crosswalk[crosswalk["source_system"] == "sales"].drop_duplicates("customer_id")
    sales = sales.set_index("customer_id")["source_record_id"]
    resumed = next(c for c in dormant if c in sales.index)  # gets a new contract below
    kept = next(c for c in dormant if c != resumed)  # stays dormant
    assert main(["dormant", "approve", kept, resumed, "--config", str(filed),
                 "--reason", "审批单 2026-17", "--date", "2026-11-25"]) == 0  # fmt: skip
    # the next night: `resumed` signed a contract; the mart is republished without `kept`
    _resume_business(Path(cfg.resolve(cfg.landing_dir)), str(sales[resumed]), "2026-11-25")
    out = run_pipeline(filed, run_date="2026-11-25")
    assert out.success, out.errors
    secret = pseudonym_secret(keyring(cfg))
    with open_for_role(cfg, "analyst") as mart:
        ids = set(mart.execute("SELECT customer_id FROM mart.customers").df()["customer_id"])
    assert pseudonym(kept, secret) not in ids
    assert pseudonym(resumed, secret) in ids  # reactivated: back in the analysts' view
    with open_warehouse(cfg, read_only=True) as con:
        steward = role_database(con, "steward")
        analyst = role_database(con, "analyst")
    assert steward.execute("SELECT customer_id FROM dormant.customers").fetchall() == [(kept,)]
    status = dict(steward.execute("SELECT customer_id, status FROM dormant.registry").fetchall())
    assert status == {kept: "dormant", resumed: "reactivated"}
    events = steward.execute(
        "SELECT event, event_date::VARCHAR, actor FROM dormant.events "
        "WHERE customer_id = ? ORDER BY event_date, event",
        [resumed],
    ).fetchall()
    assert [e[:2] for e in events] == [("archived", "2026-11-25"), ("reactivated", "2026-11-25")]
    assert events[1][2].startswith("run ")
    tables = analyst.execute("SELECT table_schema FROM information_schema.tables").fetchall()
    assert ("dormant",) not in tables
    entries = AuditLog(cfg.resolve(cfg.security.audit_log)).to_frame()
    approved = entries[entries["action"] == "dormant_approve"]
    assert len(approved) == 1 and set(approved.iloc[0]["customers"].split(",")) == {kept, resumed}
    reactivated = entries[entries["action"] == "dormant_reactivate"]
    assert len(reactivated) == 1 and reactivated.iloc[0]["customers"] == resumed
    assert (entries["action"] == "dormant_review").any()


@pytest.mark.parametrize(
    "when, monthly, yearly",
    [
        ("2026-11-30", "monthly-2026-11", None),  # Monday, last working day of November
        ("2026-11-27", None, None),  # Friday before it
        ("2026-10-30", "monthly-2026-10", None),  # Friday; 31 Oct is a Saturday
        ("2026-01-05", None, "yearly-2025"),  # first working week of 2026 (1–3 Jan holiday)
        ("2026-01-01", None, None),  # 元旦: not a working day
    ],
)
def test_package_schedules(project: Path, when: str, monthly, yearly) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import dagster as dg

    from pipelines.definitions import build_definitions

    defs = build_definitions(str(project))
    at = datetime.fromisoformat(when).replace(hour=18, tzinfo=ZoneInfo("Asia/Shanghai"))
    for name, expected in (
        ("monthly_archive_package", monthly),
        ("yearly_archive_package", yearly),
    ):
        schedule = defs.resolve_schedule_def(name)
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        with dg.build_schedule_context(scheduled_execution_time=at) as ctx:
            result = schedule.evaluate_tick(ctx)
        keys = [r.run_key for r in result.run_requests or []]
        assert keys == ([expected] if expected else []), (name, when)
        if expected:
            config = result.run_requests[0].run_config
            assert config["ops"]["write_due_packages"]["config"]["day"] == when
