"""Regression: realistic demo exports, cleaned, must not collapse into giant clusters."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from dedupe import bcubed_scores, link_records, pairwise_scores

_ROOT = Path(__file__).resolve().parents[2]
_SOURCES = ("sales", "service", "marketing")


def _canonical(frame: pd.DataFrame, source: str, config: dict[str, object]) -> pd.DataFrame:
    """Rename one department export to canonical fields as `sources/sources.yml` maps them."""
    entry = next(e for e in config["sources"] if e["name"] == source)  # type: ignore[index]
    out = pd.DataFrame(index=frame.index)
    for field, aliases in entry["columns"].items():
        aliases = aliases if isinstance(aliases, list) else [aliases]
        header = next((a for a in aliases if a in frame.columns), None)
        if header is not None:
            out[field] = frame[header].astype("string")
    out["source_system"] = source
    out["record_key"] = source + ":" + out["source_record_id"]
    return out


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, pd.DataFrame]:
    """3,000 demo entities (~7,000 records) through header mapping and cleaning, with truth."""
    from cleaning import clean_records
    from sources.demo import generate_demo_data

    data = generate_demo_data(3000, 7)
    config = yaml.safe_load((_ROOT / "sources" / "sources.yml").read_text(encoding="utf-8"))
    raw = pd.concat([_canonical(getattr(data, s), s, config) for s in _SOURCES], ignore_index=True)
    truth = data.truth.assign(
        record_key=data.truth["source_system"] + ":" + data.truth["source_record_id"].astype(str)
    )[["record_key", "entity_id"]]
    return clean_records(raw).records, truth


def test_demo_data_links_accurately_without_giant_clusters(
    demo: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    records, truth = demo
    result = link_records(records)
    largest = int(result.clusters.groupby("cluster_key").size().max())
    largest_entity = int(truth.groupby("entity_id").size().max())
    assert largest <= 2 * largest_entity + 2, f"cluster of {largest} records: chaining"
    pairwise = pairwise_scores(result.clusters, truth)
    assert pairwise.f1 >= 0.98, pairwise  # 0.9895 with the declared built-in set (issue #17)
    assert pairwise.precision >= 0.97, pairwise
    assert bcubed_scores(result.clusters, truth).f1 >= 0.97
    # λ is the chance that two random records match: far below 1 % on any real customer base.
    assert result.params.prior < 0.01
