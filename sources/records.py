"""Turn a read file into raw-layer records: canonical columns, extra JSON, ids and lineage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from sources.batch_state import SeenKeys, key_hashes
from sources.combined import join_columns, split_column
from sources.config import SPLIT_PARTS, JoinSpec, SourceConfig
from sources.headers import HeaderMapping
from sources.model import ATTRIBUTES_COLUMN, EXTRA_COLUMN, LINEAGE_COLUMNS
from sources.raw_table import ROW_NUMBER, RawTable

_CONTENT = "__content_hash__"


@dataclass
class FileRecords:
    """Records kept from one file and the rows of it that were rejected."""

    rows: pd.DataFrame
    rejected_rows: list[int]
    rejected_raw: list[str]
    rejected_reasons: list[str]
    warnings: list[str]
    repeated: int = 0
    """Kept rows that repeat an earlier row's id with other content (given a ``~n`` suffix)."""


@dataclass
class FileSeen:
    """What the earlier batches of one file kept: (id, content) → first row, id → kept rows."""

    pairs: SeenKeys = dataclass_field(default_factory=SeenKeys)
    ids: SeenKeys = dataclass_field(default_factory=SeenKeys)


def repeated_id_warning(source_file: str, repeated: int) -> str:
    """The warning of a file whose rows repeat an id with different content."""
    return (
        f"{source_file}: {repeated} row(s) repeat an id with different content; "
        "kept with a ~n suffix on source_record_id"
    )


def _exact_repeats(pair: pd.DataFrame, seen: FileSeen | None) -> tuple[pd.Series, pd.Series]:
    """Which keyed rows repeat an earlier row's (id, content), and that earlier row's number.

    ``pair`` holds ``id``, ``content`` and ``row`` of the keyed rows in file order; with
    ``seen``, the pairs of earlier batches count too (and this batch's new ones are added).
    """
    exact = pair.duplicated(subset=["id", "content"], keep="first")
    first_row = pair.groupby(["id", "content"])["row"].transform("first")
    if seen is None or pair.empty:
        return exact, first_row
    hi, lo = key_hashes(pair["id"] + "\x1f" + pair["content"])
    at = seen.pairs.find(hi, lo)
    earlier = at >= 0
    first_row = first_row.where(~earlier, seen.pairs.values_at(at))
    new = ~earlier & ~exact.to_numpy()
    seen.pairs.add(hi[new], lo[new], pair["row"].to_numpy(np.int64)[new])
    return exact | pd.Series(earlier, index=pair.index), first_row


def _occurrences(kept_ids: pd.Series, seen: FileSeen | None) -> pd.Series:
    """0 for the first kept row of an id, 1 for the second … (earlier batches counted)."""
    occurrence = kept_ids.groupby(kept_ids).cumcount()
    if seen is None or kept_ids.empty:
        return occurrence
    hi, lo = key_hashes(kept_ids)
    at = seen.ids.find(hi, lo)
    earlier = at >= 0
    before = seen.ids.values_at(at)
    occurrence = occurrence + before
    last = ~kept_ids.duplicated(keep="last").to_numpy()  # an id's last row: its new count
    counts = occurrence.to_numpy(np.int64) + 1
    known = last & earlier
    seen.ids.value[at[known]] = counts[known]
    fresh = last & ~earlier
    seen.ids.add(hi[fresh], lo[fresh], counts[fresh])
    return occurrence


def row_raw_content(table: RawTable, mask: pd.Series) -> list[str]:
    """Return the selected rows of a file as JSON objects of header → text (file order).

    Args:
        table: The file as read.
        mask: Boolean row selector over ``table.data``.

    Returns:
        One JSON text per selected row.
    """
    subset = table.data.loc[mask, table.headers].astype(object)
    subset = subset.where(subset.notna(), None)
    return [
        json.dumps(dict(zip(table.headers, values, strict=True)), ensure_ascii=False)
        for values in subset.itertuples(index=False, name=None)
    ]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _extra_and_hash_sql(fields: list[str], unmapped: list[str]) -> str:
    """SQL computing the extra JSON (keys sorted) and a content hash over fields + extra.

    The frame it reads names field columns ``f<i>`` and unmapped columns ``u<i>`` so a file
    header can never clash with a canonical name.
    """
    by_name = sorted(range(len(unmapped)), key=lambda i: unmapped[i])
    pairs = ", ".join(f"{_literal(unmapped[i])}, u{i}" for i in by_name)
    extra = f"CAST(json_object({pairs}) AS VARCHAR)" if unmapped else "'{}'"
    ordered = sorted(range(len(fields)), key=lambda i: fields[i])
    parts = [f"coalesce(f{i}, chr(0))" for i in ordered]
    content = f"sha1(concat_ws(chr(31), {', '.join([*parts, 'extra'])}))"
    return (
        f"SELECT extra, {content} AS content FROM (SELECT *, {extra} AS extra FROM frame) "
        "ORDER BY __pos"
    )


def covered_fields(mapping: HeaderMapping, source: SourceConfig) -> set[str]:
    """Canonical fields a file provides: one-column ones found, joins with any part found,
    and the canonical targets of combined columns found."""
    found = {k for k in mapping.fields if "#" not in k and not k.startswith("@")}
    for name, headers in source.columns.items():
        if isinstance(headers, JoinSpec) and any(
            f"{name}#{i}" in mapping.fields for i in range(len(headers.join))
        ):
            found.add(name)
    for i, spec in enumerate(source.split):
        if f"split#{i}" in mapping.fields:
            found.update(spec.targets().values())
    return found


def _mapped_values(
    data: pd.DataFrame, mapping: HeaderMapping, source: SourceConfig
) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """(canonical field → values, attribute → values) of one file, joins and splits applied.

    A field filled both by its own column and by a combined cell keeps its own column's value
    where that is not blank.
    """
    null = pd.Series(pd.NA, index=data.index, dtype="string")

    def one(key: str, headers: object, prefix: str = "") -> pd.Series:
        if isinstance(headers, JoinSpec):
            parts = [
                data[mapping.fields[f"{prefix}{key}#{i}"]]
                for i in range(len(headers.join))
                if f"{prefix}{key}#{i}" in mapping.fields
            ]
            return join_columns(parts, headers.sep) if parts else null
        header = mapping.fields.get(f"{prefix}{key}")
        return data[header] if header is not None else null

    fields = {f: one(f, None) for f in source.field_aliases()}
    fields.update({f: one(f, h) for f, h in source.columns.items() if isinstance(h, JoinSpec)})
    attributes = {a: one(a, h, "@") for a, h in source.attributes.items()}
    for i, spec in enumerate(source.split):
        header = mapping.fields.get(f"split#{i}")
        values = split_column(data[header], spec.kind) if header is not None else [null, null]
        for part, parsed in zip(SPLIT_PARTS[spec.kind], values, strict=True):
            target = spec.targets()[part]
            into = fields if target in source.output_fields() else attributes
            before = into.get(target)
            if before is None:
                into[target] = parsed
            else:
                blank = before.isna() | (before.astype("string").str.strip() == "")
                into[target] = before.astype("string").where(~blank, parsed)
    return fields, attributes


def attributes_json(attributes: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    """One JSON object per row of the non-blank attribute values (keys sorted), '{}' if none."""
    if not attributes:
        return pd.Series("{}", index=index, dtype="string")
    frame = pd.DataFrame({k: v.astype("string").str.strip() for k, v in sorted(attributes.items())})
    frame = frame.mask(frame == "")
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    texts = [
        json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False)
        for r in records
    ]
    return pd.Series(texts, index=index, dtype="string")


def build_file_records(
    table: RawTable,
    mapping: HeaderMapping,
    source: SourceConfig,
    source_file: str,
    sha256: str,
    ingested_at: str,
    seen: FileSeen | None = None,
) -> FileRecords:
    """Map a file's columns to canonical fields and give every row its identity.

    ``source_record_id`` is the (whitespace-trimmed) id column, or a sha1 of the row's
    content (mapped fields and extra, independent of file and position) when the source
    declares none. Rows with an empty id are rejected (``empty key``); an exact repeat of
    an earlier row with the same id is rejected as a duplicate; rows sharing an id with
    different content (e.g. one row per contract) keep it with a ``~2``, ``~3`` … suffix so
    ``record_key`` stays unique.

    Args:
        table: The file as read.
        mapping: Header → canonical mapping of this file.
        source: The source.
        source_file: Path relative to the landing folder.
        sha256: The file's sha256.
        ingested_at: Run timestamp (ISO text).
        seen: For a file read in batches, what its earlier batches kept (updated here):
            repeats and ``~n`` suffixes then count across the batches. None: ``table`` is
            the whole file.

    Returns:
        Kept rows (contract columns) and rejected rows with reasons.
    """
    data = table.data
    fields = source.output_fields()
    values, attributes = _mapped_values(data, mapping, source)
    out = pd.DataFrame(index=data.index)
    for field in fields:
        out[field] = values[field]
    if source.attribute_names():
        out[ATTRIBUTES_COLUMN] = attributes_json(attributes, data.index)
    hashed = out.drop(columns=["source_record_id"], errors="ignore")
    frame = pd.concat([hashed, data[mapping.unmapped]], axis=1)
    frame.columns = [
        *(f"f{i}" for i in range(hashed.shape[1])),
        *(f"u{i}" for i in range(len(mapping.unmapped))),
    ]
    frame["__pos"] = range(len(frame))
    con = duckdb.connect()
    try:
        con.register("frame", frame)
        sql = _extra_and_hash_sql(list(hashed.columns), mapping.unmapped)
        extra_hash = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    as_text = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}.get
    out[EXTRA_COLUMN] = pd.Series(
        extra_hash.column("extra").to_pandas(types_mapper=as_text).array, index=data.index
    )
    content = pd.Series(
        extra_hash.column("content").to_pandas(types_mapper=as_text).array, index=data.index
    )
    if source.has_id:
        ids = out["source_record_id"].str.strip()
        ids = ids.mask(ids == "")
    else:
        ids = content
    out["source_record_id"] = ids
    rows = data[ROW_NUMBER]

    rejected = ids.isna()
    reasons = pd.Series("", index=data.index, dtype="string")
    reasons[rejected] = "empty key: source_record_id"
    keyed = ~rejected
    pair = pd.DataFrame({"id": ids, "content": content, "row": rows})[keyed]
    # a whole file whose ids are all distinct (a CRM export): no row repeats another's
    # (id, content) and no id needs a ~n suffix; one hash of the ids decides it
    distinct = seen is None and not pair["id"].duplicated().any()
    if distinct:
        exact, first_row = pd.Series(False, index=pair.index), pair["row"]
    else:
        exact, first_row = _exact_repeats(pair, seen)
    reasons[exact[exact].index] = "duplicate of row " + first_row[exact].astype("string")
    rejected = rejected | reasons.ne("")

    warnings: list[str] = []
    kept_ids = ids[~rejected]
    if distinct:
        occurrence = pd.Series(0, index=kept_ids.index, dtype="int64")
    else:
        occurrence = _occurrences(kept_ids, seen)
    repeated = occurrence > 0
    if repeated.any():
        suffixed = kept_ids[repeated] + "~" + (occurrence[repeated] + 1).astype("string")
        out.loc[suffixed.index, "source_record_id"] = suffixed
        if seen is None:
            warnings.append(repeated_id_warning(source_file, int(repeated.sum())))

    kept = out.loc[~rejected].copy()
    kept.insert(0, "source_system", source.name)
    kept.insert(1, "source_file", source_file)
    kept.insert(2, "source_row", rows[~rejected].astype("int64"))
    kept.insert(3, "source_sha256", sha256)
    kept.insert(4, "ingested_at", ingested_at)
    kept.insert(5, "record_key", source.name + ":" + kept["source_record_id"])
    for column in kept.columns:
        if column != "source_row":
            kept[column] = kept[column].astype("string")
    order = [*LINEAGE_COLUMNS, "source_record_id", *[f for f in fields if f != "source_record_id"]]
    if source.attribute_names():
        order.append(ATTRIBUTES_COLUMN)
    kept = kept[[*order, EXTRA_COLUMN]].reset_index(drop=True)
    return FileRecords(
        rows=kept,
        rejected_rows=rows[rejected].astype("int64").tolist(),
        rejected_raw=row_raw_content(table, rejected),
        rejected_reasons=reasons[rejected].tolist(),
        warnings=warnings,
        repeated=int(repeated.sum()),
    )
