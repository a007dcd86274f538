"""Multi-night replay of the demo departments: full re-exports, deltas, deletions, late files.

Night 0 is the ordinary demo delivery (``write_demo``). Every later night the departments
deliver the way real ones do:

* **sales** (CRM, ``delivery: full``): the whole customer export again, in
  ``sales/<date>/crm_customers.csv``, with new customers, changed phones / contacts /
  addresses (``更新时间`` bumped) and customers deleted in the CRM (missing from the export);
* **service** (tickets, ``delivery: delta``): the new tickets and tickets whose outcome changed;
* **marketing** (leads, ``delivery: delta`` with ``deleted_flag: deleted``): new leads, leads
  with a changed mobile or e-mail, and deletion markers (``{"lead_id": …, "deleted": "1"}``).

Now and then a file is **late** (every ``late_every`` nights that night's sales export and
marketing delta are held back and arrive two nights later, in their own older date folder,
after a newer export was already loaded) or **repeated** (byte-identical copy under a
second name, which ingest skips). The ground truth (``truth.csv``) grows with the new records.

Iterate ``replay_nights`` and run the pipeline between nights (``--run-date`` = the night).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sources.demo.generator import _generate, write_demo
from sources.demo.records import SourceTable
from sources.demo.writers import write_marketing_jsonl, write_sales_csv, write_service_xlsx

__all__ = ["ReplayNight", "ReplaySettings", "replay_nights"]

_ID = {"sales": "客户编号", "service": "工单号", "marketing": "lead_id"}


@dataclass(frozen=True)
class ReplaySettings:
    """How many nights and how much changes each night (shares of the source's records).

    Attributes:
        nights: Nights after the initial delivery (night 0).
        entities: True customers of the initial delivery (≈ 2.4 source records each).
        seed: Random seed; the same settings give the same files.
        start: Date of night 0 (``YYYY-MM-DD``); night *n* is ``start + n`` days.
        new_share: New customers a night, as a share of ``entities``.
        change_share: Records with a changed contact, phone or address a night.
        delete_share: Records deleted at source a night (sales and marketing).
        late_every: Every *k*-th night a file arrives late (0: never).
        repeat_every: Every *k*-th night a file is re-sent byte-identical (0: never).
    """

    nights: int = 5
    entities: int = 400
    seed: int = 42
    start: str = "2026-11-23"
    new_share: float = 0.01
    change_share: float = 0.01
    delete_share: float = 0.003
    late_every: int = 4
    repeat_every: int = 3


@dataclass
class ReplayNight:
    """What one night delivered: its date, the files written and the changes they carry."""

    night: int
    date: dt.date
    files: list[Path] = field(default_factory=list)
    new: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    late: list[Path] = field(default_factory=list)
    repeated: list[Path] = field(default_factory=list)

    @property
    def run_date(self) -> str:
        """The night as ``YYYY-MM-DD`` (the pipeline's ``--run-date``)."""
        return self.date.isoformat()


def _take(table: SourceTable, rows: np.ndarray) -> SourceTable:
    """Rows of a table (positions), hints kept aligned."""
    pick = rows.tolist()

    def hint(values: list[bool] | None) -> list[bool] | None:
        return None if values is None else [values[i] for i in pick]

    return SourceTable(
        frame=table.frame.iloc[pick].reset_index(drop=True),
        entity=[table.entity[i] for i in pick],
        date_cells=hint(table.date_cells),
        number_cells=hint(table.number_cells),
    )


def _concat(first: SourceTable, second: SourceTable) -> SourceTable:
    def hints(a: list[bool] | None, b: list[bool] | None, na: int, nb: int) -> list[bool] | None:
        if a is None and b is None:
            return None
        return (a or [False] * na) + (b or [False] * nb)

    na, nb = len(first.frame), len(second.frame)
    return SourceTable(
        frame=pd.concat([first.frame, second.frame], ignore_index=True),
        entity=[*first.entity, *second.entity],
        date_cells=hints(first.date_cells, second.date_cells, na, nb),
        number_cells=hints(first.number_cells, second.number_cells, na, nb),
    )


def _mobile(r: random.Random) -> str:
    return r.choice(["139", "138", "186", "158", "177"]) + f"{r.randrange(10**8):08d}"


class _Replay:
    """The departments' current state between nights (tables, entity truth)."""

    def __init__(self, out_dir: Path, settings: ReplaySettings) -> None:
        self.out = Path(out_dir)
        self.landing = self.out / "landing"
        self.settings = settings
        self.rng = random.Random(settings.seed * 7919 + 1)
        files = write_demo(self.out, settings.entities, settings.seed, settings.start)
        base = _generate(settings.entities, settings.seed)
        self.tables = {k: base.tables[k] for k in ("sales", "service", "marketing")}
        for name in ("sales", "service"):
            self.tables[name] = SourceTable(
                frame=self.tables[name].frame.replace({"": None}),
                entity=self.tables[name].entity,
                date_cells=self.tables[name].date_cells,
                number_cells=self.tables[name].number_cells,
            )
        self.entity_ids = {k: base.data.entities["entity_id"].tolist() for k in self.tables}
        self.truth = pd.read_csv(files.truth_csv, dtype=str)
        self.held: dict[str, tuple[int, dt.date, SourceTable]] = {}
        self.start = dt.date.fromisoformat(settings.start)
        self.night0 = ReplayNight(
            0,
            self.start,
            files=[files.sales_csv, files.service_xlsx, files.marketing_jsonl],
            new={k: v for k, v in files.record_counts.items() if k in self.tables},
        )

    # -- the night's changes ---------------------------------------------------------------

    def _new_records(self, night: int) -> dict[str, SourceTable]:
        count = max(1, round(self.settings.entities * self.settings.new_share))
        fresh = _generate(count, self.settings.seed * 1000 + night)
        prefix = {
            "sales": f"KHN{night:03d}",
            "service": f"GDN{night:03d}",
            "marketing": f"LN{night:03d}",
        }
        entity = fresh.data.entities["entity_id"].tolist()
        out: dict[str, SourceTable] = {}
        for name, table in fresh.tables.items():
            frame = table.frame.replace({"": None}) if name != "marketing" else table.frame.copy()
            frame[_ID[name]] = prefix[name] + "-" + frame[_ID[name]].astype(str)
            out[name] = SourceTable(frame, table.entity, table.date_cells, table.number_cells)
            truth = pd.DataFrame(
                {
                    "source_system": name,
                    "source_record_id": frame[_ID[name]].to_numpy(),
                    "entity_id": [f"N{night:03d}-{entity[i]}" for i in table.entity],
                }
            )
            self.truth = pd.concat([self.truth, truth], ignore_index=True)
        return out

    def _changed_rows(self, table: SourceTable, share: float) -> np.ndarray:
        n = len(table.frame)
        k = min(n, round(n * share))
        return np.array(sorted(self.rng.sample(range(n), k)), dtype=int)

    def _change_sales(self, date: dt.date) -> int:
        table = self.tables["sales"]
        rows = self._changed_rows(table, self.settings.change_share)
        frame = table.frame
        stamp = f"{date.isoformat()} 0{self.rng.randrange(1, 9)}:{self.rng.randrange(60):02d}:00"
        for i in rows:
            what = self.rng.random()
            if what < 0.5:
                frame.iat[i, frame.columns.get_loc("手机")] = _mobile(self.rng)
            elif what < 0.75:
                frame.iat[i, frame.columns.get_loc("联系人")] = self.rng.choice(
                    ["王芳", "李强", "张敏", "刘洋", "陈静", "杨磊"]
                )
            else:
                old = frame.iat[i, frame.columns.get_loc("地址")] or ""
                frame.iat[i, frame.columns.get_loc("地址")] = (
                    old.rstrip("号") + f"{self.rng.randrange(2, 99)}号" if old else None
                )
            frame.iat[i, frame.columns.get_loc("更新时间")] = stamp
        return len(rows)

    def _delete(self, name: str) -> SourceTable:
        table = self.tables[name]
        gone = self._changed_rows(table, self.settings.delete_share)
        keep = np.setdiff1d(np.arange(len(table.frame)), gone)
        self.tables[name] = _take(table, keep)
        return _take(table, gone)

    def _release(self, name: str, n: int) -> tuple[dt.date, SourceTable] | None:
        """A held-back file due tonight (its date folder is older than tonight's files)."""
        held = self.held.get(name)
        if held is None or held[0] > n:
            return None
        del self.held[name]
        return held[1], held[2]

    # -- one night -------------------------------------------------------------------------

    def night(self, n: int) -> ReplayNight:
        s = self.settings
        date = self.start + dt.timedelta(days=n)
        out = ReplayNight(n, date)
        fresh = self._new_records(n)
        folder = date.isoformat()
        late_night = bool(s.late_every) and n % s.late_every == 0
        repeat_night = bool(s.repeat_every) and n % s.repeat_every == 0

        # sales: the whole export again (full), with changes, deletions and new customers
        deleted_sales = self._delete("sales")
        out.changed["sales"] = self._change_sales(date)
        self.tables["sales"] = _concat(self.tables["sales"], fresh["sales"])
        out.new["sales"], out.deleted["sales"] = len(fresh["sales"].frame), len(deleted_sales.frame)
        export = _take(self.tables["sales"], np.arange(len(self.tables["sales"].frame)))
        held = self._release("sales", n)
        if held is not None:  # an export held back arrives after a newer one
            path = self.landing / "sales" / held[0].isoformat() / "crm_customers.csv"
            write_sales_csv(held[1], path)
            out.late.append(path)
        if late_night and n < s.nights:
            self.held["sales"] = (min(n + 2, s.nights), date, export)  # arrives later
        else:
            path = self.landing / "sales" / folder / "crm_customers.csv"
            write_sales_csv(export, path)
            out.files.append(path)
            if repeat_night:
                copy = path.with_name("crm_customers (1).csv")
                copy.write_bytes(path.read_bytes())
                out.repeated.append(copy)

        # service: new tickets and tickets whose outcome changed (delta)
        service = self.tables["service"]
        rows = self._changed_rows(service, s.change_share / 2)
        outcome = service.frame.columns.get_loc("处理结果")
        for i in rows:
            service.frame.iat[i, outcome] = self.rng.choice(["已解决", "已回访", "已关闭"])
        changed = _take(service, rows)
        self.tables["service"] = _concat(service, fresh["service"])
        delta = _concat(changed, fresh["service"])
        out.changed["service"], out.new["service"] = len(rows), len(fresh["service"].frame)
        out.deleted["service"] = 0
        path = self.landing / "service" / folder / "tickets.xlsx"
        write_service_xlsx(
            delta,
            path,
            title=f"客服工单增量（{folder}）",
            created=dt.datetime.combine(date, dt.time(8, 0)),
        )
        out.files.append(path)

        # marketing: new and changed leads, deletion markers (delta)
        marketing = self.tables["marketing"]
        rows = self._changed_rows(marketing, s.change_share)
        mobile, email = (
            marketing.frame.columns.get_loc("mobile"),
            marketing.frame.columns.get_loc("email"),
        )
        for i in rows:
            if self.rng.random() < 0.6:
                marketing.frame.iat[i, mobile] = _mobile(self.rng)
            else:
                marketing.frame.iat[i, email] = f"lead{self.rng.randrange(10**6)}@example.cn"
        changed = _take(marketing, rows)
        deleted = self._delete("marketing")
        markers = pd.DataFrame(
            {
                "lead_id": deleted.frame["lead_id"].to_numpy(),
                "company": deleted.frame["company"].to_numpy(),
                "deleted": "1",
            }
        )
        self.tables["marketing"] = _concat(self.tables["marketing"], fresh["marketing"])
        delta_frame = pd.concat(
            [changed.frame, fresh["marketing"].frame, markers], ignore_index=True
        ).astype(object)
        delta_frame = delta_frame.where(delta_frame.notna(), None)
        delta = SourceTable(delta_frame, [0] * len(delta_frame))
        out.changed["marketing"], out.new["marketing"] = len(rows), len(fresh["marketing"].frame)
        out.deleted["marketing"] = len(deleted.frame)
        held = self._release("marketing", n)
        if held is not None:
            path = self.landing / "marketing" / held[0].isoformat() / "leads.jsonl"
            write_marketing_jsonl(held[1], path)
            out.late.append(path)
        if late_night and n < s.nights:
            self.held["marketing"] = (min(n + 2, s.nights), date, delta)  # arrives later
        else:
            path = self.landing / "marketing" / folder / "leads.jsonl"
            write_marketing_jsonl(delta, path)
            out.files.append(path)
        if repeat_night and n > 1:
            # yesterday's delta re-sent byte-identical under tonight's folder: skipped
            before = self.landing / "marketing" / (date - dt.timedelta(days=1)).isoformat()
            for earlier in sorted(before.glob("leads.jsonl")):
                copy = self.landing / "marketing" / folder / "leads_resend.jsonl"
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_bytes(earlier.read_bytes())
                out.repeated.append(copy)
        self.truth.to_csv(
            self.out / "truth.csv", index=False, encoding="utf-8", lineterminator="\n"
        )
        return out


def replay_nights(out_dir: Path, settings: ReplaySettings | None = None) -> Iterator[ReplayNight]:
    """Write night 0, then each later night's deliveries, yielding after each night.

    Run the pipeline on the landing folder (``out_dir/landing``) with the night's
    ``run_date`` between iterations; the files of night *n* are written only when the
    iteration reaches it.

    Args:
        out_dir: Output folder (``landing/``, ``truth.csv``, ``entities.csv``).
        settings: Nights, size and change rates (defaults: 5 nights of 400 customers).

    Yields:
        One ``ReplayNight`` per night, night 0 first.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     nights = list(replay_nights(Path(tmp), ReplaySettings(nights=2, entities=40)))
        >>> [n.run_date for n in nights]
        ['2026-11-23', '2026-11-24', '2026-11-25']
    """
    replay = _Replay(out_dir, settings or ReplaySettings())
    yield replay.night0
    for n in range(1, replay.settings.nights + 1):
        yield replay.night(n)
