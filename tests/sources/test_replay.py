"""The multi-night replay generator: deliveries per night, late and repeated files, truth."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sources import load_sources_config
from sources.demo.replay import ReplaySettings, replay_nights

SETTINGS = ReplaySettings(nights=6, entities=120, late_every=3, repeat_every=2)


def test_replay_writes_each_night_with_late_and_repeated_files(tmp_path: Path) -> None:
    nights = list(replay_nights(tmp_path, SETTINGS))
    assert [n.night for n in nights] == list(range(7))
    assert nights[1].run_date == "2026-11-24"
    # night 3 holds its sales export and marketing delta back; they land two nights later
    assert not any("sales" in p.as_posix() for p in nights[3].files)
    late = [p.relative_to(tmp_path / "landing").as_posix() for p in nights[5].late]
    assert late == ["sales/2026-11-26/crm_customers.csv", "marketing/2026-11-26/leads.jsonl"]
    assert any(p.name == "crm_customers (1).csv" for p in nights[2].repeated)
    for night in nights[1:]:
        assert sum(night.new.values()) >= 1 and night.changed["sales"] >= 1
    # every record delivered is in the truth
    truth = pd.read_csv(tmp_path / "truth.csv", dtype=str)
    leads = {
        json.loads(line)["lead_id"]
        for f in (tmp_path / "landing" / "marketing").rglob("*.jsonl")
        for line in f.read_text(encoding="utf-8").splitlines()
    }
    assert leads <= set(truth.loc[truth["source_system"] == "marketing", "source_record_id"])


def test_deletion_markers_use_the_configured_flag(tmp_path: Path) -> None:
    nights = list(replay_nights(tmp_path, ReplaySettings(nights=1, entities=400)))
    delta = next(p for p in nights[1].files if p.suffix == ".jsonl")
    markers = [json.loads(x) for x in delta.read_text(encoding="utf-8").splitlines()]
    deleted = [m for m in markers if m.get("deleted") == "1"]
    assert len(deleted) == nights[1].deleted["marketing"] >= 1
    config = load_sources_config(
        Path("sources/sources.yml"), landing_dir=tmp_path / "landing", check_files=True
    )
    marketing = config.source("marketing")
    assert marketing.delivery == "delta" and marketing.deleted_flag is not None
    assert marketing.deleted_flag.headers == ["deleted"]
    assert config.source("sales").delivery == "full"


def test_replay_is_reproducible(tmp_path: Path) -> None:
    small = ReplaySettings(nights=2, entities=60)
    for folder in ("a", "b"):
        list(replay_nights(tmp_path / folder, small))
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.csv"))
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
