"""Working days (法定节假日, 调休, overrides), the dormant archive and the 回访 list."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from python_calamine import CalamineWorkbook

from warehouse import read_table
from warehouse.archive import first_work_week_end, last_business_day
from warehouse.dormant import (
    approve_dormant,
    dormant_candidates,
    dormant_events,
    dormant_ids,
    hide_customers,
    reactivate_resumed,
)
from warehouse.dossier import collect_dossiers
from warehouse.reverify import reverification_list, write_reverification_xlsx
from warehouse.security import role_database
from warehouse.workdays import CalendarUnavailableError, WorkdayCalendar

DAYS = [
    {"day": date(2026, 2, 14), "workday": True},  # Saturday, 调休 make-up day (春节)
    {"day": date(2026, 2, 17), "workday": False},  # 春节 Tuesday
    {"day": date(2026, 10, 1), "workday": False},  # 国庆节
    {"day": date(2026, 11, 30), "workday": True},  # ordinary Monday
    {"day": date(2026, 11, 28), "workday": False},  # ordinary Saturday
]


@pytest.mark.parametrize("case", DAYS, ids=lambda c: c["day"].isoformat())
def test_chinese_working_days(case):
    assert WorkdayCalendar()(case["day"]) is case["workday"]


def test_overrides_win_and_unknown_years():
    cal = WorkdayCalendar({date(2026, 11, 30): "holiday", date(2027, 1, 1): "holiday"})
    assert cal(date(2026, 11, 30)) is False
    assert last_business_day(2026, 11, cal) == date(2026, 11, 27)
    # 2027 is not in chinesecalendar 1.11: weekdays + overrides, noted for the manifest
    assert first_work_week_end(2027, cal) == date(2027, 1, 8)
    assert cal.note()["approximated_years"] == [2027]
    with pytest.raises(CalendarUnavailableError, match="overrides"):
        WorkdayCalendar(unknown_years="error")(date(2027, 3, 1))
    with pytest.raises(ValueError, match="workday"):
        WorkdayCalendar({date(2026, 1, 1): "weekend"})  # type: ignore[dict-item]


def test_month_end_follows_the_holiday_calendar():
    cal = WorkdayCalendar()
    # September 2026 ends on a Wednesday; 31 January 2026 is a Saturday → Friday 30th
    assert last_business_day(2026, 9, cal) == date(2026, 9, 30)
    assert last_business_day(2026, 1, cal) == date(2026, 1, 30)


def test_dormant_approval_reactivation_and_roles(warehouse_two_runs_copy):
    con = warehouse_two_runs_copy
    customers = read_table(con, "golden.customers")
    candidates = dormant_candidates(customers, set())
    assert candidates["customer_id"].tolist() == ["C20200101001"]  # 王芳, last contract 2021
    with pytest.raises(ValueError, match="not dormant candidates"):
        approve_dormant(con, ["C20240315001"], actor="li", reason="x", on=date(2025, 7, 2))
    moved = approve_dormant(con, ["C20200101001"], actor="li", reason="审批 7", on=date(2025, 7, 2))
    assert moved == ["C20200101001"] and dormant_ids(con) == {"C20200101001"}
    assert dormant_candidates(read_table(con, "golden.customers"), dormant_ids(con)).empty
    steward = role_database(con, "steward")
    base = steward.execute("SELECT customer_name FROM dormant.customers").fetchall()
    assert base == [("王芳",)]  # base information kept for tracing
    tables = role_database(con, "analyst").execute("SELECT * FROM information_schema.tables")
    assert not any(r[1] == "dormant" for r in tables.fetchall())
    # business resumes: the run classifies the customer active again → reactivated
    con.execute(
        "UPDATE golden.customers SET lifecycle = 'active' WHERE customer_id = 'C20200101001'"
    )
    assert reactivate_resumed(con, date(2025, 8, 1), actor="run r3") == ["C20200101001"]
    assert dormant_ids(con) == set()
    events = dormant_events(con)
    assert events[["event", "actor"]].values.tolist() == [
        ["archived", "li"],
        ["reactivated", "run r3"],
    ]
    assert con.execute("SELECT count(*) FROM dormant.customers").fetchone() == (0,)
    # the dossier shows both events in its history
    tables = {t: read_table(con, f"golden.{t}") for t in ("customers", "customers_history")}
    (d,) = collect_dossiers({**tables, "events": events}, ["C20200101001"])
    assert d.events["event"].tolist() == ["archived", "reactivated"]


def test_hide_customers():
    t = pa.table({"customer_id": ["C1", "C2", None], "x": [1, 2, 3]})
    out = hide_customers({"golden.t": t, "golden.u": pa.table({"y": [1]})}, {"C2"})
    assert out["golden.t"].column("x").to_pylist() == [1, 3]
    assert out["golden.u"].num_rows == 1


def test_reverification_list(warehouse_two_runs, tmp_path):
    customers = read_table(warehouse_two_runs, "golden.customers")
    lineage = read_table(warehouse_two_runs, "golden.attribute_lineage")
    departments = {"sales": "销售部", "service": "客服部", "marketing": "市场部"}
    listing = reverification_list(customers, lineage, date(2025, 7, 1), departments=departments)
    assert "C20200101001" not in set(listing["customer_id"])  # dormant: not called back
    star = listing[listing["customer_id"] == "C20240315001"].iloc[0]
    # service confirmed contact, phone and address on 2025-06-28; the email survives from a
    # sales record of 2024-01-15: sales (销售部) owns the call-back
    assert star["stale"] == "电子邮箱"
    assert star["last_confirmed"] == "2024-01-15"
    assert star["department"] == "销售部"
    later = reverification_list(customers, lineage, date(2026, 7, 1), departments=departments)
    assert (
        later.set_index("customer_id").loc["C20240315001", "stale"]
        == "联系人、联系电话、电子邮箱、地址"
    )
    path = write_reverification_xlsx(listing, tmp_path / "r.xlsx")
    sheets = CalamineWorkbook.from_path(str(path)).sheet_names
    assert set(sheets) == set(listing["department"])
