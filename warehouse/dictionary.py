"""The data dictionary (数据字典): every golden table and analytics view, columns and lineage.

``DATA_DICTIONARY`` is the single source of ``docs/data_dictionary.md`` and of the DuckDB
``COMMENT``s that ``create_views`` sets; a test checks it against the built warehouse schema.
"""

from __future__ import annotations

from pathlib import Path

from warehouse._doc_model import ColumnDoc, TableDoc
from warehouse._table_docs import TABLE_DOCS
from warehouse._view_docs import VIEW_DOCS

DATA_DICTIONARY: dict[str, TableDoc] = {t.name: t for t in (*TABLE_DOCS, *VIEW_DOCS)}
DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "data_dictionary.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_data_dictionary() -> str:
    """The data dictionary as Markdown (the content of ``docs/data_dictionary.md``).

    Returns:
        Markdown text: one section per table or view, one table row per column.
    """
    lines = [
        "# Data dictionary (数据字典)",
        "",
        "Generated from `warehouse.DATA_DICTIONARY` by `warehouse.write_data_dictionary()`; "
        "do not edit by hand. The same text is stored as DuckDB `COMMENT`s "
        "(`SELECT * FROM duckdb_columns() WHERE schema_name IN ('golden', 'analytics')`).",
        "",
    ]
    for kind, title in (("table", "Tables"), ("view", "Views")):
        lines += [f"## {title}", ""]
        for doc in DATA_DICTIONARY.values():
            if doc.kind != kind:
                continue
            lines += [f"### `{doc.name}`", "", doc.description, ""]
            lines += ["| column | type | meaning | lineage |", "|---|---|---|---|"]
            lines += [
                f"| `{c.name}` | {c.type} | {_cell(c.meaning)} | {_cell(c.lineage)} |"
                for c in doc.columns
            ]
            lines.append("")
    return "\n".join(lines)


def write_data_dictionary(path: Path | None = None) -> Path:
    """Write the Markdown data dictionary.

    Args:
        path: target file (default ``docs/data_dictionary.md`` of the repository).

    Returns:
        The file written.
    """
    target = path or DOC_PATH
    target.write_text(render_data_dictionary(), encoding="utf-8")
    return target


__all__ = ["DATA_DICTIONARY", "ColumnDoc", "TableDoc", "render_data_dictionary",
           "write_data_dictionary"]  # fmt: skip
