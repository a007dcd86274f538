"""The analyst model: dictionary vs schema, every view returns rows, comments, docs up to date."""

from __future__ import annotations

import pytest

from warehouse import DATA_DICTIONARY, render_data_dictionary, run_sql
from warehouse.dictionary import DOC_PATH
from warehouse.views_sql import VIEW_SQL


def _schema(con, name: str) -> list[tuple[str, str]]:
    schema, table = name.split(".")
    return [
        (r[0], r[1])
        for r in con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
            [schema, table],
        ).fetchall()
    ]


@pytest.mark.parametrize("name", list(DATA_DICTIONARY))
def test_dictionary_and_schema_agree(warehouse_two_runs, name):
    documented = [(c.name, c.type) for c in DATA_DICTIONARY[name].columns]
    actual = _schema(warehouse_two_runs, name)
    if name == "golden.customer_ids":  # written by the pipeline: compare as sets
        assert sorted(actual) == sorted(documented)
    else:
        assert actual == documented


@pytest.mark.parametrize("name", [n for n, d in DATA_DICTIONARY.items() if d.kind == "view"])
def test_every_documented_view_exists_and_returns_rows(warehouse_two_runs, name):
    assert name in VIEW_SQL
    assert len(run_sql(warehouse_two_runs, f"SELECT * FROM {name}")) > 0


def test_every_view_is_documented():
    assert set(VIEW_SQL) <= set(DATA_DICTIONARY)


def test_dictionary_is_stored_as_comments(warehouse_two_runs):
    comments = dict(
        warehouse_two_runs.execute(
            "SELECT column_name, comment FROM duckdb_columns() "
            "WHERE schema_name = 'golden' AND table_name = 'customers'"
        ).fetchall()
    )
    assert comments["credit_code"].startswith("统一社会信用代码")
    assert all(comments.values())
    views = dict(
        warehouse_two_runs.execute(
            "SELECT view_name, comment FROM duckdb_views() WHERE schema_name = 'analytics'"
        ).fetchall()
    )
    assert views["tier_summary"] == DATA_DICTIONARY["analytics.tier_summary"].description


def test_data_dictionary_doc_is_up_to_date():
    assert DOC_PATH.read_text(encoding="utf-8") == render_data_dictionary(), (
        "docs/data_dictionary.md is stale: run "
        "`python -c 'import warehouse; warehouse.write_data_dictionary()'`"
    )


def test_customer_360_and_summaries_agree_with_golden(warehouse_two_runs):
    c360 = run_sql(
        warehouse_two_runs,
        "SELECT * FROM analytics.customer_360 WHERE customer_id = 'C20240315001'",
    ).iloc[0]
    assert c360["source_systems"] == "marketing,sales,service"
    assert (c360["transaction_count"], c360["interaction_count"]) == (2, 1)
    assert c360["transaction_total"] == 250000.0
    lifecycle = run_sql(warehouse_two_runs, "SELECT * FROM analytics.lifecycle_summary")
    assert dict(zip(lifecycle["lifecycle"], lifecycle["customers"], strict=True)) == {
        "active": 1,
        "dormant": 1,
        "potential": 1,
    }
    dormant = run_sql(warehouse_two_runs, "SELECT customer_id FROM analytics.dormant_archive")
    assert dormant["customer_id"].tolist() == ["C20200101001"]
    tiers = run_sql(warehouse_two_runs, "SELECT sum(share) AS s FROM analytics.tier_summary")
    assert tiers["s"].iloc[0] == pytest.approx(1.0)
