"""`customer-archive sql`: run one query read-only and print or write the result."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from warehouse import connect

from .settings import ArchiveConfig

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula with a quote (CSV injection)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            s = out[col]
            mask = s.notna() & s.astype(str).str.startswith(_FORMULA_START)
            if mask.any():
                out[col] = s.astype(object).where(~mask, "'" + s.astype(str))
    return out


def run_query(
    cfg: ArchiveConfig, query: str, fmt: str, output: str | None, max_rows: int = 50
) -> int:
    """Run ``query`` on a read-only connection and render it as table/CSV/JSON/Parquet.

    Returns:
        The process exit code (0 on success).
    """
    path = cfg.resolve(cfg.warehouse)
    if not path.exists():
        print(f"warehouse {path} does not exist: run `customer-archive run` first", file=sys.stderr)
        return 2
    with connect(path, read_only=True) as con:
        frame = con.execute(query).df()
    if fmt == "parquet":
        if not output:
            print("--format parquet needs --output FILE", file=sys.stderr)
            return 2
        frame.to_parquet(output, index=False)
        print(f"wrote {len(frame)} rows to {output}")
        return 0
    if fmt == "csv":
        text = neutralize_formulas(frame).to_csv(index=False)
    elif fmt == "json":
        text = frame.to_json(orient="records", force_ascii=False, date_format="iso")
    else:
        with pd.option_context("display.max_columns", 50, "display.width", 200):
            text = frame.head(max_rows).to_string(index=False)
        if len(frame) > max_rows:
            text += f"\n… {len(frame) - max_rows} more rows ({len(frame)} in all)"
        else:
            text += f"\n({len(frame)} rows)"
    if output:
        Path(output).write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
        print(f"wrote {len(frame)} rows to {output}")
    else:
        print(text)
    return 0
