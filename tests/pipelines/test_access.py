"""The warehouse connection honours the larger-than-memory settings of archive.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.access import open_warehouse
from pipelines.settings import load_config


def _setting(con, name: str) -> str:
    return con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]


@pytest.mark.parametrize("encrypted", [False, True])
def test_duckdb_limits_reach_the_connection(tmp_path: Path, encrypted: bool) -> None:
    spill = tmp_path / "spill"
    cfg_file = tmp_path / "archive.yml"
    cfg_file.write_text(
        "\n".join(
            [
                "warehouse: state/warehouse.duckdb",
                "duckdb:",
                "  memory_limit: 1GB",
                f"  temp_directory: {spill}",
                "  threads: 1",
                "security:",
                f"  encrypt_warehouse: {str(encrypted).lower()}",
                "  key_file: keys/archive.key",
                "  audit_log: audit/audit.jsonl",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    cfg = load_config(cfg_file)
    with open_warehouse(cfg, create_key=True) as con:
        assert _setting(con, "threads") == 1
        assert _setting(con, "temp_directory") == str(spill)
        assert _setting(con, "memory_limit") == "953.6 MiB"  # 1 GB, in DuckDB's units
        # duckdb.release_memory (default on): freed memory goes back to the system
        assert _setting(con, "allocator_background_threads") in (True, "true")
