"""The project configuration is validated on load with messages naming the file and key."""

from pathlib import Path

import pytest

from pipelines.settings import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def test_repo_config_loads_and_resolves_against_its_folder() -> None:
    cfg = load_config(REPO / "archive.yml")
    assert cfg.resolve(cfg.warehouse) == REPO / "data" / "warehouse.duckdb"
    assert cfg.schedule.timezone == "Asia/Shanghai"
    assert cfg.schedule.cron == "0 2 * * *"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("landing_dirr: x\n", "landing_dirr"),  # typo in a top-level key
        ("schedule:\n  cron: 5\n  timezon: UTC\n", "schedule.timezon"),  # typo in a nested key
        ("- just\n- a list\n", "mapping at the top level"),
        ("matching: {match_threshold: 'high'}\n", "matching.match_threshold"),
        # the archive calendar: a bad date, an unknown day kind, an unknown key
        ("filing:\n  calendar:\n    overrides: {2026-02-30: holiday}\n", "out of range"),
        ("filing:\n  calendar:\n    overrides: {'2026-13-01': holiday}\n", "filing.calendar"),
        ("filing:\n  calendar:\n    overrides: {2026-10-09: off}\n", "filing.calendar"),
        ("filing:\n  calender: {}\n", "filing.calender"),
        ("filing:\n  reverify_months: 0\n", "filing.reverify_months"),
    ],
)
def test_invalid_config_names_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "archive.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_filing_calendar_overrides_load(tmp_path: Path) -> None:
    from datetime import date

    path = tmp_path / "archive.yml"
    path.write_text(
        "filing:\n  calendar:\n    overrides:\n      2027-01-01: holiday\n"
        "      '2027-02-07': workday\n",
        encoding="utf-8",
    )
    overrides = load_config(path).filing.calendar.overrides
    assert overrides == {date(2027, 1, 1): "holiday", date(2027, 2, 7): "workday"}


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yml")


def test_override_replaces_file_value(tmp_path: Path) -> None:
    path = tmp_path / "archive.yml"
    path.write_text("warehouse: a.duckdb\n", encoding="utf-8")
    cfg = load_config(path, warehouse=str(tmp_path / "b.duckdb"))
    assert cfg.resolve(cfg.warehouse) == tmp_path / "b.duckdb"
