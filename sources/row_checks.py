"""Structural row checks: rows of a file that are not records (repeated headers, totals, odd ids).

Run on a file after its headers are mapped and before its rows become records. Each check
returns a reason per rejected row; the rows go to ``quarantine.rows`` with that reason and
their raw content, so ``rows read = kept + quarantined`` still holds.

* **repeated header**: two exports concatenated (``cat a.csv b.csv``) leave the second
  header line mid-file; a row whose cells are the file's own headers is not a record.
* **summary / footer rows**: ``合计：200条``, ``总计``, ``小计``, ``共200条``, ``Total: 200``
  under the data are not customers.
* **id pattern**: when the source declares ``id_pattern`` (a regular expression the whole
  trimmed id must match), a row whose id does not fit is quarantined.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sources.config import SourceConfig
from sources.headers import _EDGE_MARKS, HeaderMapping, normalize_header
from sources.raw_table import ROW_NUMBER, RawTable
from sources.records import row_raw_content

REPEATED_HEADER = "repeated header row (two exports concatenated?)"
"""Reason recorded for a header line found among the data rows."""
SUMMARY_ROW = "summary/footer row (合计/总计/小计/共N条), not a record"
"""Reason recorded for a totals line under (or among) the data."""

_SUMMARY = re.compile(
    r"""^(?:
        (?:本页|全部|总|累计)?(?:合计|总计|小计|共计|汇总|总数|统计|累计)   # 合计 总计 小计 …
        (?:\s*[:：]|\s*\d|\s*[(（]|\s*$)                                   # then : / digit / end
      | 共\s*[0-9０-９,，]+\s*(?:条|行|家|个|户|笔|项|名|位|人|项记录|条记录)  # 共200条
      | (?:grand\s*)?(?:sub)?total(?:s)?\b\s*(?:[:：]|\d|\(|$)                  # Total: 200
      | sum\s*[:：]
    )""",
    re.IGNORECASE | re.VERBOSE,
)


_SUMMARY_FIRST = "本全总累合小共汇统gstGST"
"""Every char a summary marker can start with (the first chars of ``_SUMMARY``'s branches)."""


_LATIN_SECOND = {"g": "r", "s": "u", "t": "o"}
"""The second char of every Latin summary marker by its first (grand total, sub/sum, total):
under ``re.IGNORECASE`` only ASCII ``r``/``u``/``o`` (either case) match these."""


def _not_summary_pattern() -> str:
    """A regex matching texts that start with an ASCII letter or digit, or a CJK ideograph,
    that no summary marker starts with, or with ``g``/``s``/``t`` and then a char no marker
    has there (``GD2016…``, ``Sales``, ``T-1``): ``summary_text`` is False for them (no
    leading space to strip, no case folding onto ``g``/``s``/``t``), so they need no Python
    test."""
    codes = (*range(0x30, 0x3A), *range(0x41, 0x5B), *range(0x61, 0x7B),
             *range(_CJK_FIRST, _CJK_LAST + 1))  # fmt: skip
    first = "[" + _class_ranges(c for c in codes if chr(c) not in _SUMMARY_FIRST) + "]"
    latin = [f"[{a}{a.upper()}][^{b}{b.upper()}]" for a, b in _LATIN_SECOND.items()]
    return "^(?:" + "|".join([first, *latin]) + ")"


def _class_ranges(codes: Iterable[int]) -> str:
    """The inside of a regex character class matching these code points (ascending order),
    consecutive ones folded into ranges."""
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)


def summary_text(cell: object) -> bool:
    """Whether a cell reads like a summary/footer line (合计：200条, 总计, 小计, 共N条, Total).

    A company called 合计科技有限公司 is not a summary: the word must stand alone or be
    followed by a colon, a number or a bracket.

    Args:
        cell: A cell as read (text or null).

    Returns:
        True for a summary/footer marker.
    """
    if not isinstance(cell, str):
        return False
    text = cell.strip()
    return bool(text) and _SUMMARY.match(text) is not None


@dataclass(frozen=True)
class RowRejections:
    """Rows of a file the structural checks reject: ``reasons`` aligned with ``table.data``."""

    reasons: pd.Series

    @property
    def mask(self) -> pd.Series:
        """Boolean selector of the rejected rows."""
        return self.reasons.notna()


def _flags(
    cells: pd.Series, test: Callable[[str], bool], certainly_not: str | None = None
) -> np.ndarray:
    """Apply ``test`` to every text cell (null cells are False), as a boolean array.

    ``test`` runs once per distinct cell text (exports repeat values: cities, statuses, dates),
    and not at all on texts matching the regular expression ``certainly_not`` (an Arrow/RE2
    search over all distinct texts at once), for which ``test`` must be False.

    A column of text is searched whole first (RE2 over every cell costs less than hashing
    every cell), so only the cells that may pass are factorized and tested: in a large export
    most cells of a column hold a char no header or summary marker has.
    """
    if certainly_not is not None and len(cells):
        try:
            texts = pa.array(cells, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: the general path below
            texts = None
        if texts is not None:
            ruled_out = pc.fill_null(pc.match_substring_regex(texts, certainly_not), True)
            maybe = np.flatnonzero(~np.asarray(ruled_out, dtype=bool))
            passed = np.zeros(len(cells), dtype=bool)
            if len(maybe):
                passed[maybe] = _flags(cells.iloc[maybe], test)
            return passed
    codes, uniques = pd.factorize(cells, use_na_sentinel=True)
    passed = np.zeros(len(uniques) + 1, dtype=bool)  # code -1 (null) takes the trailing False
    todo = np.arange(len(uniques))
    if certainly_not is not None and len(uniques):
        try:
            texts = pa.array(uniques, type=pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: test the texts only
            texts = pa.array([v if isinstance(v, str) else None for v in uniques], pa.string())
        skip = pc.fill_null(pc.match_substring_regex(texts, certainly_not), True)
        todo = np.flatnonzero(~skip.to_numpy(zero_copy_only=False))
    values = uniques.take(todo).tolist() if len(todo) < len(uniques) else uniques.tolist()
    passed[todo] = [isinstance(v, str) and test(v) for v in values]
    return passed[codes]


_CJK_FIRST, _CJK_LAST = 0x4E00, 0x9FFF
_NOT_SUMMARY = _not_summary_pattern()


_COMPOSABLE_UNIDATA = "14.0.0"
# ``_scan_composable()`` under Unicode 14.0.0 (Python 3.11), as hex code point ranges: the scan
# visits all 1.1 M code points (≈ 0.7 CPU s), which every run paid in its first ingest
_COMPOSABLE_RANGES = (
    "3C-3E 41-50 52-5A 61-70 72-7A A8 C2 C4-C7 CA CF D4-D6 D8 DC E2 E4-E7 EA EF F4-F6 F8 FC "
    "102-103 112-113 14C-14D 15A-15B 160-161 168-16B 17F 1A0-1A1 1AF-1B0 1B7 1EA-1EB 226-229 "
    "22E-22F 292 300-304 306-30C 30F 311 313-314 31B 323-328 32D-32E 330-331 338 342 345 391 "
    "395 397 399 39F 3A1 3A5 3A9 3AC 3AE 3B1 3B5 3B7 3B9 3BF 3C1 3C5 3C9-3CB 3CE 3D2 406 410 "
    "413 415-418 41A 41E 423 427 42B 42D 430 433 435-438 43A 43E 443 447 44B 44D 456 474-475 "
    "4D8-4D9 4E8-4E9 5B4 5B7-5B9 5BC 5BF 5C1-5C2 5D0-5D6 5D8-5DC 5DE 5E0-5E1 5E3-5E4 5E6-5EA "
    "5F2 627 648 64A 653-655 6C1 6D2 6D5 915-917 91C 921-922 928 92B 92F-930 933 93C 9A1-9A2 "
    "9AF 9BC 9BE 9C7 9D7 A16-A17 A1C A2B A32 A38 A3C B21-B22 B3C B3E B47 B56-B57 B92 BBE "
    "BC6-BC7 BD7 C46 C56 CBF CC2 CC6 CCA CD5-CD6 D3E D46-D47 D57 DCA DCF DD9 DDC DDF F40 F42 "
    "F4C F51 F56 F5B F71-F72 F74 F80 F90 F92 F9C FA1 FA6 FAB FB2-FB3 FB5 FB7 1025 102E 1B05 "
    "1B07 1B09 1B0B 1B0D 1B11 1B35 1B3A 1B3C 1B3E-1B3F 1B42 1E36-1E37 1E5A-1E5B 1E62-1E63 "
    "1EA0-1EA1 1EB8-1EB9 1ECC-1ECD 1F00-1F11 1F18-1F19 1F20-1F31 1F38-1F39 1F40-1F41 1F48-1F49 "
    "1F50-1F51 1F59 1F60-1F70 1F74 1F7C 1FB6 1FBF 1FC6 1FF6 1FFE 2190 2192 2194 21D0 21D2 21D4 "
    "2203 2208 220B 2223 2225 223C 2243 2245 2248 224D 2261 2264-2265 2272-2273 2276-2277 "
    "227A-227D 2282-2283 2286-2287 2291-2292 22A2 22A8-22A9 22AB 22B2-22B5 2ADD 3046 304B 304D "
    "304F 3051 3053 3055 3057 3059 305B 305D 305F 3061 3064 3066 3068 306F 3072 3075 3078 307B "
    "3099-309A 309D 30A6 30AB 30AD 30AF 30B1 30B3 30B5 30B7 30B9 30BB 30BD 30BF 30C1 30C4 30C6 "
    "30C8 30CF 30D2 30D5 30D8 30DB 30EF-30F2 30FD FB49 11099 1109B 110A5 110BA 11127 "
    "11131-11132 1133E 11347 11357 114B0 114B9-114BA 114BD 115AF 115B8-115B9 11930 11935 "
    "1D157-1D158 1D15F 1D165 1D16E-1D172 1D1B9-1D1BC"
)


@lru_cache(maxsize=1)
def _composable() -> frozenset[int]:
    """Code points that are part of a canonical decomposition into two or more chars.

    Only these can merge with a neighbour under NFKC's composition (e + ◌́ → é, = + ◌̸ → ≠);
    a singleton decomposition (a compatibility ideograph → its unified one) never composes.
    The stored table when Python's Unicode database is the one it was made from, else a scan.
    """
    if unicodedata.unidata_version != _COMPOSABLE_UNIDATA:
        return _scan_composable()
    found: set[int] = set()
    for token in _COMPOSABLE_RANGES.split():
        first, _, last = token.partition("-")
        found.update(range(int(first, 16), int(last or first, 16) + 1))
    return frozenset(found)


def _scan_composable() -> frozenset[int]:
    """``_composable`` by a scan of every code point's decomposition."""
    found: set[int] = set()
    for code in range(sys.maxunicode + 1):
        parts = unicodedata.decomposition(chr(code)).split()
        if len(parts) >= 2 and not parts[0].startswith("<"):
            found.update(int(p, 16) for p in parts)
    return frozenset(found)


def _not_header_pattern(names: set[str] | frozenset[str]) -> str | None:
    """``_header_free_pattern`` of these names (cached: every batch of a file asks again)."""
    return _header_free_pattern(frozenset(names))


@lru_cache(maxsize=8)
def _header_free_pattern(names: frozenset[str]) -> str | None:
    """A regex found only in texts whose ``normalize_header`` is none of ``names`` (or None).

    ``normalize_header`` keeps some chars of a text whatever surrounds them: a CJK unified
    ideograph or a printable ASCII char, other than a space or an edge mark, that composes
    with no neighbour (NFKC leaves it alone; casefold maps it to one char). A text holding
    such a char whose casefold no header key holds is no header.
    """
    allowed = {c for name in names for c in name}
    composable = _composable()
    inside = _class_ranges(
        code
        for code in (*range(0x21, 0x7F), *range(_CJK_FIRST, _CJK_LAST + 1))
        if not (chr(code) in _EDGE_MARKS or code in composable or chr(code).casefold() in allowed)
    )
    return "[" + inside + "]" if inside else None


def _repeated_header(table: RawTable, mapping: HeaderMapping, source: SourceConfig) -> pd.Series:
    """Rows whose mapped cells read as headers (the file's own or any alias of the mapping).

    At least two mapped cells (one when a single column is mapped) must be header names,
    and at least half of the row's filled mapped cells. Cells holding a char no header has
    are ruled out at once over all distinct cells (:func:`_not_header_pattern`).
    """
    data = table.data
    columns = list(dict.fromkeys(mapping.fields.values()))
    names = {normalize_header(h) for h in table.headers}
    names |= {normalize_header(a) for aliases in source.header_aliases().values() for a in aliases}
    names.discard("")
    hits = np.zeros(len(data), dtype=np.int64)
    filled = np.zeros(len(data), dtype=np.int64)
    certainly_not = _not_header_pattern(names)
    for header in columns:
        hits += _flags(data[header], lambda v: normalize_header(v) in names, certainly_not)
        filled += data[header].notna().to_numpy(dtype=bool)
    needed = max(1, min(2, len(columns)))
    return pd.Series((hits >= needed) & (hits * 2 >= filled), index=data.index)


def _summary_rows(table: RawTable, mapping: HeaderMapping) -> pd.Series:
    """Rows whose id, name or first filled cell is a summary marker."""
    data = table.data
    flags = np.zeros(len(data), dtype=bool)
    headers = list(table.headers)
    if not headers or data.empty:
        return pd.Series(flags, index=data.index)
    first = data[headers[0]]
    filled = False
    for header in headers[1:]:
        if not first.isna().any():
            break
        first, filled = first.fillna(data[header]), True
    candidates = [first]
    for field in ("source_record_id", "customer_name"):
        header = mapping.fields.get(field)
        if header is not None and (filled or header != headers[0]):  # not the same cells again
            candidates.append(data[header])
    for cells in candidates:
        flags |= _flags(cells, summary_text, _NOT_SUMMARY)
    return pd.Series(flags, index=data.index)


def _id_mismatch(table: RawTable, mapping: HeaderMapping, source: SourceConfig) -> pd.Series:
    data = table.data
    header = mapping.fields.get("source_record_id")
    if source.id_pattern is None or header is None:
        return pd.Series(False, index=data.index)
    pattern = re.compile(source.id_pattern)
    # an empty id is left to the ``empty key`` check of the records step
    misfit = _flags(data[header], lambda v: bool(v.strip()) and not pattern.fullmatch(v.strip()))
    return pd.Series(misfit, index=data.index)


def structural_rejections(
    table: RawTable, mapping: HeaderMapping, source: SourceConfig
) -> RowRejections:
    """Run the structural row checks over one mapped file (first failing check gives the reason).

    Args:
        table: The file as read.
        mapping: Its header mapping.
        source: The source (``id_pattern``).

    Returns:
        The reason of every rejected row (null for rows that pass).
    """
    reasons = pd.Series(pd.NA, index=table.data.index, dtype="string")
    if table.data.empty:
        return RowRejections(reasons)
    mismatch = f"id does not match id_pattern {source.id_pattern!r}"
    checks = [
        (_repeated_header(table, mapping, source), REPEATED_HEADER),
        (_summary_rows(table, mapping), SUMMARY_ROW),
        (_id_mismatch(table, mapping, source), mismatch),
    ]
    for flags, reason in checks:
        reasons = reasons.mask(reasons.isna() & flags.to_numpy(), reason)
    return RowRejections(reasons)


def without_rows(table: RawTable, mask: pd.Series) -> RawTable:
    """The table with the selected rows removed (row numbers and reader findings kept).

    ``rows_read`` of the result is smaller by the removed rows; callers record the file's
    ``rows_read`` before removing rows they quarantine themselves.
    """
    kept = table.data.loc[~mask.to_numpy()].reset_index(drop=True)
    kept[ROW_NUMBER] = kept[ROW_NUMBER].astype("int64")
    return RawTable(
        headers=table.headers,
        data=kept,
        bad_rows=table.bad_rows,
        warnings=table.warnings,
        blank_rows=table.blank_rows,
    )


_KEYED_FORMATS = frozenset({"json", "jsonl"})


def absent_not_drift(
    missing: list[str], mapping: HeaderMapping, source: SourceConfig, path: str
) -> list[str]:
    """Of the required fields a file lacks, those that are schema drift.

    In JSON and JSON Lines a key is written only when the record has a value: a mapped key
    that no record carries (every lead without ``company``) is a missing value, not a
    changed export. It is drift only when unknown keys came instead (``firm_name`` where
    ``company`` was), i.e. the file has keys the mapping does not know. The record id is
    always needed. Delimited, Excel and Parquet files always have a header per column, so
    any missing required header there is drift.

    Args:
        missing: Required canonical fields no header covers.
        mapping: The file's header mapping.
        source: The source.
        path: The file (its format decides).

    Returns:
        The fields that make the file schema drift (empty: load the file).
    """
    try:
        keyed = source.file_format(Path(path)) in _KEYED_FORMATS
    except ValueError:
        keyed = False
    if not keyed or mapping.unmapped:
        return missing
    return [name for name in missing if name == "source_record_id"]


def quarantine_structural(
    table: RawTable,
    mapping: HeaderMapping,
    source: SourceConfig,
    path: str,
    quarantine: Callable[[str, list[int], list[str], list[str]], None],
) -> RawTable:
    """Quarantine the rows the structural checks reject and return the table without them.

    Args:
        table: The file as read.
        mapping: Its header mapping.
        source: The source.
        path: The file's path (relative to the landing folder).
        quarantine: ``(file, rows, raw_content, reasons)`` sink for rejected rows.

    Returns:
        The table of the remaining rows.
    """
    rejected = structural_rejections(table, mapping, source)
    mask = rejected.mask
    if not mask.any():
        return table
    quarantine(
        path,
        table.data.loc[mask, ROW_NUMBER].astype("int64").tolist(),
        row_raw_content(table, mask),
        rejected.reasons[mask].astype(str).tolist(),
    )
    return without_rows(table, mask)
