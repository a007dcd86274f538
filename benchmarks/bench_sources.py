"""Benchmark: read N rows of GBK CSV and of XLSX through ingest_source (rows/s, peak RSS)."""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xlsxwriter

from sources import SourceConfig, ingest_source

HEADERS = ["客户编号", "客户名称", "联系人", "手机", "邮箱", "地址", "签约日期", "合同金额", "备注"]
COLUMNS: dict[str, str | list[str]] = {
    "source_record_id": "客户编号",
    "customer_name": "客户名称",
    "contact_name": "联系人",
    "phone": "手机",
    "email": "邮箱",
    "address": "地址",
    "registered_date": "签约日期",
    "txn_amount": "合同金额",
}


def _row(i: int, r: random.Random) -> list[str]:
    city = r.choice(["北京市海淀区", "上海市浦东新区", "广州市天河区", "深圳市南山区"])
    return [
        f"KH{i:08d}",
        f"{r.choice(['星辰', '浦江', '华信', '锦帆'])}科技有限公司{i % 9973}",
        r.choice(["张伟经理", "王女士", "李娜", ""]),
        f"1{r.randint(3, 9)}{r.randint(0, 999999999):09d}",
        f"user{i}@example.com",
        f"{city}中关村大街{i % 500}号",
        f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
        f"{r.randint(1000, 999999)}.00",
        "重点客户" if i % 7 == 0 else "",
    ]


def write_inputs(folder: Path, rows: int) -> None:
    """Write crm/big.csv (GBK) and crm/big.xlsx with ``rows`` data rows each."""
    r = random.Random(7)
    (folder / "csv").mkdir(parents=True, exist_ok=True)
    (folder / "xlsx").mkdir(parents=True, exist_ok=True)
    with (folder / "csv" / "big.csv").open("w", encoding="gb18030", newline="") as handle:
        handle.write(",".join(HEADERS) + "\r\n")
        for i in range(rows):
            handle.write(",".join(_row(i, r)) + "\r\n")
    book = xlsxwriter.Workbook(str(folder / "xlsx" / "big.xlsx"), {"constant_memory": True})
    sheet = book.add_worksheet("客户")
    sheet.write_row(0, 0, HEADERS)
    r = random.Random(7)
    for i in range(rows):
        sheet.write_row(i + 1, 0, _row(i, r))
    book.close()


def measure(folder: Path, kind: str) -> dict[str, float]:
    """Ingest one format in this process and report rows/s and peak RSS."""
    source = SourceConfig(name="bench", path=f"{kind}/*", columns=COLUMNS)
    start = time.perf_counter()
    result = ingest_source(source, folder, "bench", "2024-01-01T00:00:00")
    seconds = time.perf_counter() - start
    rows = len(result.rows) + len(result.quarantined_rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mb = (folder / kind / f"big.{kind}").stat().st_size / 2**20
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": round(peak_mb),
        "file_mb": round(size_mb, 1),
    }


def main() -> None:
    """Write the inputs, then measure each format in a fresh process (clean peak memory)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_inputs(folder, args.rows)
        for kind in ("csv", "xlsx"):
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(folder), kind],
                check=True,
                capture_output=True,
                text=True,
            )
            print(kind, out.stdout.strip())


if __name__ == "__main__":
    main()
