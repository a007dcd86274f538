"""The 客户档案 PDF: seed naming and folders, CJK font embedded, text holds name, id and history."""

from __future__ import annotations

import os
from datetime import date

import pytest

from warehouse import read_table
from warehouse.dossier import (
    FontNotFoundError,
    collect_dossiers,
    dossier_path,
    find_cjk_font,
    render_dossier,
)

TABLES = ("customers", "contacts", "addresses", "transactions", "interactions",
          "customers_history", "attribute_lineage")  # fmt: skip


def cjk_font():
    """The system CJK font; missing is a failure in CI (`make test` installs it), else a skip."""
    try:
        return find_cjk_font()
    except FontNotFoundError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


def golden(con) -> dict:
    return {t: read_table(con, f"golden.{t}") for t in TABLES}


def test_dossier_path_follows_the_seed(tmp_path):
    path = dossier_path(tmp_path, "C20240315001", date(2026, 11, 30))
    assert path == tmp_path / "C20240315001-2026-Q4" / "C20240315001_档案_20261130.pdf"


def test_font_not_found_names_the_fix(tmp_path):
    with pytest.raises(FontNotFoundError, match="make fonts"):
        find_cjk_font(tmp_path / "missing.ttf")


def test_collect_dossiers_splits_by_customer(warehouse_two_runs):
    dossiers = collect_dossiers(golden(warehouse_two_runs), ["C20240315001", "C99999999999"])
    assert [d.customer_id for d in dossiers] == ["C20240315001"]  # unknown ids skipped
    d = dossiers[0]
    assert set(d.transactions["txn_id"]) == {"H1", "H2"}
    assert len(d.history) == 2  # created, then the phone change
    assert set(d.lineage["customer_id"]) == {"C20240315001"}


def test_rendered_dossier_text(warehouse_two_runs, tmp_path):
    from pypdf import PdfReader

    font = cjk_font()
    on = date(2025, 7, 31)
    (dossier,) = collect_dossiers(golden(warehouse_two_runs), ["C20240315001"])
    path = render_dossier(dossier, dossier_path(tmp_path, dossier.customer_id, on), font, on)
    assert path.name == "C20240315001_档案_20250731.pdf"
    reader = PdfReader(path)
    text = "".join(page.extract_text() for page in reader.pages)
    compact = "".join(text.split())
    assert "C20240315001" in compact
    assert "北京星河科技有限公司" in compact
    assert "A类" in compact or "B类" in compact or "C类" in compact
    history = read_table(warehouse_two_runs, "golden.customers_history")
    mine = history[history["customer_id"] == "C20240315001"]
    for row in mine.itertuples():
        assert str(row.valid_from)[:10] in compact  # every version's date …
        assert "".join(str(row.change_reason).split()) in compact  # … and its reason
    assert "+8613900000003" in compact  # the current phone
    # the font is embedded (a FontFile2/FontFile3 stream), not referenced
    fonts = [
        obj.get_object() for page in reader.pages for obj in page["/Resources"]["/Font"].values()
    ]
    descendant = fonts[0]["/DescendantFonts"][0].get_object()
    descriptor = descendant["/FontDescriptor"].get_object()
    assert "/FontFile2" in descriptor or "/FontFile3" in descriptor
