"""The repeated-header check's Arrow pre-filter never hides a header: same flags as per cell."""

from __future__ import annotations

import random

import pandas as pd

from sources.headers import normalize_header
from sources.row_checks import _flags, _not_header_pattern

HEADERS = ("客户名称", "*联系人：", "Email", "手机号", "Addr#", "ID", "≠")
NAMES = {normalize_header(h) for h in HEADERS}


def _cells(rng: random.Random) -> list[str]:
    """Header-like and data-like texts: header chars mixed with what NFKC, casefold and the
    whitespace/edge-mark removal change (full-width forms, combining marks, spaces, ＊ ：)."""
    alphabet = [
        *"客户名称联系人手机号emailEMAILaddrid", *"张三北京市路1-@.#*:：",
        "ｅ", "Ｅ", "\u0301", "\u0338", "\u3000", "\u200b", " ", "\t", "=", "ﬁ", "㈱", "ß", "İ",
        "\uf900", "\u2f00", "①",
    ]  # fmt: skip
    cells = [normalize_header(h) for h in NAMES]
    cells += ["客户名称", " 客户 名称 ", "＊联系人：", "ＥＭＡＩＬ", "e\u0301mail", "Ｉｄ"]
    cells += ["i\u0307d", "=\u0338"]  # = + combining long solidus overlay: NFKC makes it ≠
    cells += ["".join(rng.choices(alphabet, k=rng.randrange(1, 9))) for _ in range(20_000)]
    return cells


def test_prefilter_rejects_only_non_headers() -> None:
    pattern = _not_header_pattern(NAMES)
    assert pattern is not None
    cells = _cells(random.Random(3))
    test = lambda v: normalize_header(v) in NAMES  # noqa: E731
    plain = _flags(pd.Series(cells, dtype="string"), test)
    filtered = _flags(pd.Series(cells, dtype="string"), test, pattern)
    assert plain.sum() > 10  # headers are among the cells
    assert (plain == filtered).all()
    # and the pre-filter does the work: most data-like cells never reach the per-cell test
    import pyarrow as pa
    import pyarrow.compute as pc

    skipped = pc.match_substring_regex(pa.array(["张三", "138-1234-5678", "北京市1号"]), pattern)
    assert skipped.to_pylist() == [True, True, True]


def test_summary_prefilter_skips_only_texts_that_are_no_summary() -> None:
    """Texts the Arrow pre-filter rules out are never summary markers (合计, 共N条, Total)."""
    from sources.row_checks import _NOT_SUMMARY, summary_text

    rng = random.Random(5)
    alphabet = [*"合计总小共汇统累本全页部数条行:：( 0123456789", *"TotalSUMGrandsubſK", "\u3000"]
    cells = ["合计：200条", "共 12 条", "Total: 3", "小计", "Sum:", "合计科技有限公司", "KH1001"]
    cells += ["".join(rng.choices(alphabet, k=rng.randrange(1, 9))) for _ in range(20_000)]
    plain = _flags(pd.Series(cells, dtype="string"), summary_text)
    filtered = _flags(pd.Series(cells, dtype="string"), summary_text, _NOT_SUMMARY)
    assert plain.sum() > 10
    assert (plain == filtered).all()
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pa.array(["KH1001", "星辰科技", "13912345678"])
    skipped = pc.match_substring_regex(texts, _NOT_SUMMARY)
    assert skipped.to_pylist() == [True, True, True]


def test_stored_composable_table_equals_a_scan_of_the_unicode_database() -> None:
    """The stored code points (no scan of 1.1 M code points per run) are what a scan finds."""
    import unicodedata

    from sources import row_checks

    assert unicodedata.unidata_version == row_checks._COMPOSABLE_UNIDATA  # else it scans
    assert row_checks._composable() == row_checks._scan_composable()
    assert {ord("e"), 0x301, ord("="), 0x338} <= row_checks._composable()


def test_summary_prefilter_rules_out_latin_ids_by_their_second_char() -> None:
    """Ids and words starting with g/s/t (GD2016…, Sales, T-1) need no per-cell test unless
    their second char can continue a marker (grand total, sub/sum, total)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from sources.row_checks import _NOT_SUMMARY, summary_text

    ruled_out = ["GD201601080001", "Sales", "SH-1", "T-1", "tk0001", "g2", "Gx total"]
    kept = ["Grand total: 3", "subtotal 5", "Sum: 2", "TOTAL", "total(3)", "Gr", "su", "To"]
    skipped = pc.match_substring_regex(pa.array(ruled_out + kept), _NOT_SUMMARY).to_pylist()
    assert skipped == [True] * len(ruled_out) + [False] * len(kept)
    assert not any(summary_text(c) for c in ruled_out)
    assert [summary_text(c) for c in kept[:5]] == [True] * 5


def test_whole_column_prefilter_keeps_nulls_false_and_falls_back_for_non_text() -> None:
    """The column searched whole (Arrow) gives the per-distinct-text flags, nulls included;
    a column that is not all text takes the general path with the same result."""
    pattern = _not_header_pattern(NAMES)
    assert pattern is not None
    test = lambda v: normalize_header(v) in NAMES  # noqa: E731
    cells = [*_cells(random.Random(11))[:5_000], None, "客户名称", None]
    text = pd.Series(cells, dtype="string")
    assert (_flags(text, test, pattern) == _flags(text, test)).all()
    assert not _flags(text, test, pattern)[[i for i, c in enumerate(cells) if c is None]].any()
    mixed = pd.Series([*cells, 7, 3.5], dtype=object)  # not all text: no Arrow string array
    assert (_flags(mixed, test, pattern) == _flags(mixed, test)).all()
    assert _flags(mixed, test, pattern)[len(cells) - 2]  # "客户名称" is a header
