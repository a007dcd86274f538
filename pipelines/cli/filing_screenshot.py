"""Render a page of one dossier as PNG (pdftoppm) for the docs: ``make dossier-screenshot``.

Usage: ``python -m pipelines.cli.filing_screenshot OUT.png [--config archive.yml]
[--customer C…]``. Without ``--customer`` the customer with the most history versions is
shown (the most informative page).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path

from warehouse.dormant import dormant_events
from warehouse.dossier import collect_dossiers, render_dossier
from warehouse.packages import golden_frames

from ..access import open_warehouse
from ..filing import font
from ..settings import default_config_path, load_config


def main(argv: list[str] | None = None) -> int:
    """Write the PNG of the dossier's first page; returns the exit code."""
    parser = argparse.ArgumentParser(prog="filing_screenshot")
    parser.add_argument("out")
    parser.add_argument("--config", default=None)
    parser.add_argument("--customer", default=None)
    parser.add_argument("--resolution", type=int, default=70)
    parser.add_argument("--page", type=int, default=1)
    a = parser.parse_args(argv)
    if shutil.which("pdftoppm") is None:
        raise SystemExit("pdftoppm not found: `make fonts` installs poppler-utils")
    cfg = load_config(a.config or default_config_path())
    with open_warehouse(cfg, read_only=True) as con:
        tables: dict = golden_frames(con)
        tables["events"] = dormant_events(con)
    history = tables["customers_history"]
    if history is None or history.empty:
        raise SystemExit("nothing published yet: run `customer-archive run` first")
    cid = a.customer or str(history["customer_id"].value_counts().index[0])
    (dossier,) = collect_dossiers(tables, [cid])
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        pdf = render_dossier(dossier, Path(work) / "d.pdf", font(cfg), date.today())
        prefix = Path(work) / "page"
        subprocess.run(
            ["pdftoppm", "-png", "-r", str(a.resolution), "-f", str(a.page), "-l", str(a.page),
             "-singlefile",
             str(pdf), str(prefix)],
            check=True,
        )  # fmt: skip
        shutil.move(str(prefix.with_suffix(".png")), out)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
