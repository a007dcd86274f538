"""Header matching: tolerant normalization, alias resolution and header-row detection."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_INVISIBLE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
_EDGE_MARKS = "*:：#"
HEADER_SCAN_ROWS = 20
"""How many leading rows are searched for the header row when ``header_row`` is auto."""


def normalize_header(header: object) -> str:
    """Return the match key of a header: NFKC, no whitespace, case-folded, edge marks removed.

    Full-width letters and digits become half-width, so ``ＥＭＡＩＬ`` and `` email `` match;
    a leading required-field star or trailing colon (``*客户名称：``) is ignored.

    Args:
        header: A header cell as read.

    Returns:
        The normalized key ('' for an empty header).
    """
    text = unicodedata.normalize("NFKC", str(header))
    text = _INVISIBLE.sub("", text)
    return text.strip(_EDGE_MARKS).casefold()


def unique_headers(cells: Sequence[object]) -> list[str]:
    """Make display headers unique and non-empty, keeping their original text.

    Empty headers become ``column_<n>`` (1-based position); a repeated header gets a
    ``_<k>`` suffix from its second occurrence on.

    Args:
        cells: The header row as read.

    Returns:
        One unique name per column.
    """
    names: list[str] = []
    seen: dict[str, int] = {}
    for position, cell in enumerate(cells, start=1):
        name = "" if cell is None else str(cell).strip()
        if not name:
            name = f"column_{position}"
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name}_{count}")
    return names


@dataclass(frozen=True)
class HeaderMapping:
    """Which file column feeds each canonical field, and which columns are left over."""

    fields: dict[str, str]
    unmapped: list[str]

    def missing(self, required: Sequence[str]) -> list[str]:
        """Return the required canonical fields no header covers.

        Args:
            required: Canonical fields the file must provide.

        Returns:
            The uncovered ones, in the given order.
        """
        return [name for name in required if name not in self.fields]


def resolve_headers(headers: Sequence[str], aliases: dict[str, list[str]]) -> HeaderMapping:
    """Map file headers to canonical fields, trying each field's aliases in order.

    Args:
        headers: Unique file headers.
        aliases: Canonical field → header aliases in priority order.

    Returns:
        The mapping; a header may feed several canonical fields.
    """
    by_key: dict[str, str] = {}
    for header in headers:
        by_key.setdefault(normalize_header(header), header)
    fields: dict[str, str] = {}
    for canonical, names in aliases.items():
        for name in names:
            found = by_key.get(normalize_header(name))
            if found is not None:
                fields[canonical] = found
                break
    used = set(fields.values())
    return HeaderMapping(fields=fields, unmapped=[h for h in headers if h not in used])


def detect_header_row(
    rows: Sequence[Sequence[object]], aliases: dict[str, list[str]], scan: int = HEADER_SCAN_ROWS
) -> int:
    """Find the header row among the first rows (title rows and blank rows above it skipped).

    The header is the first row matching at least ``min(2, number of aliases)`` known
    headers; failing that, the row matching most; failing that, the first non-blank row.

    Args:
        rows: Leading rows of the file as text cells.
        aliases: Canonical field → header aliases.
        scan: How many rows to look at.

    Returns:
        The 0-based index of the header row (0 when every row is blank).
    """
    keys = {normalize_header(n) for names in aliases.values() for n in names}
    keys.discard("")
    threshold = max(1, min(2, len(keys)))
    best_index, best_score, first_non_blank = -1, 0, -1
    for index, row in enumerate(rows[:scan]):
        cells = {normalize_header(c) for c in row if c is not None and str(c).strip()}
        if not cells:
            continue
        if first_non_blank < 0:
            first_non_blank = index
        score = len(cells & keys)
        if score >= threshold:
            return index
        if score > best_score:
            best_index, best_score = index, score
    if best_index >= 0:
        return best_index
    return max(first_non_blank, 0)
