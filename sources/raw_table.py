"""What a format reader hands back: text cells by header, row numbers and rejected rows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

ROW_NUMBER = "__source_row__"
"""Column of ``RawTable.data`` holding each row's 1-based number in the file."""


class FileRejected(Exception):
    """A whole delivered file cannot be used (empty, corrupt, unreadable); goes to quarantine."""


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read as a record, kept with its raw text for quarantine."""

    source_row: int
    raw_content: str
    reason: str


@dataclass
class RawTable:
    """A file read as text: one ``string`` column per (unique) header plus ``ROW_NUMBER``."""

    headers: list[str]
    data: pd.DataFrame
    bad_rows: list[BadRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blank_rows: int = 0

    @property
    def rows_read(self) -> int:
        """Data rows read from the file (kept + rejected; blank rows are not data)."""
        return len(self.data) + len(self.bad_rows)


_UNNAMED = re.compile(r"^column_\d+$")  # sources.headers.unique_headers' name of an empty header


def finish_table(
    headers: list[str],
    data: pd.DataFrame,
    bad_rows: list[BadRow] | None = None,
    warnings: list[str] | None = None,
    drop_unnamed: list[str] | None = None,
) -> RawTable:
    """Normalize a reader's frame: ``string`` dtype, empty text → null, blank rows dropped.

    Args:
        headers: Unique headers, in file order (the data columns besides ``ROW_NUMBER``).
        data: The frame as read, with ``ROW_NUMBER``.
        bad_rows: Rows rejected while reading.
        warnings: Reader warnings.
        drop_unnamed: For a later batch of a file read in batches, the unnamed empty columns
            its first batch dropped: those are dropped again where this batch leaves them
            empty too (a value in one keeps it, so nothing is lost). None: drop every
            unnamed column that is empty here (a whole file, or a first batch).

    Returns:
        The finished table; rows whose every cell is empty are counted in ``blank_rows``.
    """
    frame = pd.DataFrame(index=data.index)
    for header in headers:
        column = data[header].astype("string")
        frame[header] = column.mask(column == "")
    frame[ROW_NUMBER] = data[ROW_NUMBER].astype("int64")
    # a trailing delimiter on every line makes an unnamed, empty column: not data, no warning
    candidates = headers if drop_unnamed is None else drop_unnamed
    unnamed_empty = [h for h in candidates if _UNNAMED.match(h) and frame[h].isna().all()]
    if unnamed_empty:
        frame = frame.drop(columns=unnamed_empty)
        headers = [h for h in headers if h not in unnamed_empty]
    blank = frame[headers].isna().all(axis=1) if headers else pd.Series(True, index=frame.index)
    blank_rows = int(blank.sum())
    if blank_rows:
        frame = frame.loc[~blank]
    return RawTable(
        headers=headers,
        data=frame.reset_index(drop=True),
        bad_rows=list(bad_rows or []),
        warnings=list(warnings or []),
        blank_rows=blank_rows,
    )
