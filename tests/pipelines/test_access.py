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


@pytest.mark.parametrize(
    ("machine_mib", "expected"),
    [
        (24_064, "2.0 GiB"),  # a quarter of 23.5 GiB, capped at 2 GiB
        (4_096, "1.0 GiB"),  # a quarter of a 4 GiB container
        (512, "256.0 MiB"),  # never below 256 MiB
    ],
)
def test_auto_memory_limit_is_bounded_by_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine_mib: int, expected: str
) -> None:
    from pipelines import settings

    monkeypatch.setattr(settings, "machine_memory_mib", lambda: machine_mib)
    cfg_file = tmp_path / "archive.yml"
    cfg_file.write_text(
        "warehouse: state/warehouse.duckdb\nsecurity:\n  encrypt_warehouse: false\n", "utf-8"
    )
    cfg = load_config(cfg_file)
    assert cfg.duckdb.memory_limit == "auto"  # the default
    with open_warehouse(cfg) as con:
        assert _setting(con, "memory_limit") == expected


def test_memory_limit_null_leaves_duckdbs_default_and_a_bad_size_is_refused(
    tmp_path: Path,
) -> None:
    from pipelines.settings import ConfigError

    cfg_file = tmp_path / "archive.yml"
    cfg_file.write_text("duckdb:\n  memory_limit: null\n", encoding="utf-8")
    assert load_config(cfg_file).duckdb.resolved_memory_limit() is None
    cfg_file.write_text("duckdb:\n  memory_limit: lots\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="memory_limit"):
        load_config(cfg_file)
