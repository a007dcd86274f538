"""Erasure over every kind of file the project writes, and a finder for landing files.

Table files (Parquet, CSV, XLSX, JSON Lines / JSON arrays of records) lose the person's rows
(by ``customer_id``, record keys, source ids) and have their phones and e-mails redacted in
the rest; text files (HTML reports, logs, alerts, any other JSON) have the person's phones,
e-mails, names and ids replaced by ``[erased]``. Files are rewritten beside the original and
renamed over it, in the encoding they were written in; encrypted Parquet stays encrypted.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa

from warehouse.security._erase_sql import REDACTED, PersonMatch, erase_in_arrow
from warehouse.security.encryption import (
    is_encrypted_parquet,
    read_parquet_any,
    write_parquet_like,
)
from warehouse.security.excel import neutralize_formulas
from warehouse.security.keys import KeyRing

TEXT_SUFFIXES = frozenset(
    {".html", ".htm", ".txt", ".log", ".md", ".xml", ".json", ".jsonl", ".csv", ".tsv", ".svg"}
)
SKIP_SUFFIXES = frozenset({".lock", ".key", ".duckdb", ".wal", ".tmp"})
LOG = logging.getLogger(__name__)
_ID_EDGE = r"(?<![0-9A-Za-z_]){}(?![0-9A-Za-z_])"


def text_pattern(match: PersonMatch) -> re.Pattern[str] | None:
    """Python pattern for the person's phones (any separators), e-mails, names and ids in text.

    Names and ids are also matched in their ``\\uXXXX`` JSON-escaped form.
    """
    parts = [match.pattern()] if match.pattern() else []
    literals: set[str] = set()
    for value in match.names | match.identifiers():
        value = value.strip()
        if len(value) < 2:
            continue
        literals.add(value)
        escaped = json.dumps(value)[1:-1]
        if escaped != value:
            literals.add(escaped)
    for value in sorted(literals, key=lambda v: (-len(v), v)):
        quoted = re.escape(value)
        parts.append(_ID_EDGE.format(quoted) if value.isascii() else quoted)
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE) if parts else None


def _decode(data: bytes) -> tuple[str, str]:
    """Text and the encoding to write it back in (BOM-marked UTF-16/8, UTF-8, else GB18030)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if data.startswith(b"\xef\xbb\xbf"):
        return data.decode("utf-8-sig"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("gb18030"), "gb18030"


def _replace(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.erase-{secrets.token_hex(4)}")
    temp.write_bytes(data)
    os.replace(temp, path)


def _erase_text(path: Path, match: PersonMatch) -> int | None:
    pattern = text_pattern(match)
    if pattern is None:
        return None
    text, encoding = _decode(path.read_bytes())
    new, count = pattern.subn(REDACTED, text)
    if not count:
        return None
    _replace(path, new.encode(encoding))
    return 0


def _is_linked(record: object, match: PersonMatch) -> bool:
    if not isinstance(record, dict):
        return False
    table = pa.Table.from_pylist([{k: _as_text(v) for k, v in record.items()}])
    _, deleted, _ = erase_in_arrow(table, PersonMatch(
        customer_ids=match.customer_ids, record_keys=match.record_keys,
        source_ids=match.source_ids,
    ))  # fmt: skip
    return deleted > 0


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _erase_json(path: Path, match: PersonMatch) -> int | None:
    """JSON Lines / JSON arrays of records: drop the person's records, then redact the text."""
    text, encoding = _decode(path.read_bytes())
    dropped = 0
    if path.suffix == ".jsonl":
        kept = []
        for line in text.splitlines(keepends=True):
            try:
                record = json.loads(line) if line.strip() else None
            except ValueError:
                record = None
            if record is not None and _is_linked(record, match):
                dropped += 1
                continue
            kept.append(line)
        text = "".join(kept)
    else:
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, list) and document and all(isinstance(r, dict) for r in document):
            kept_records = [r for r in document if not _is_linked(r, match)]
            dropped = len(document) - len(kept_records)
            if dropped:
                text = json.dumps(kept_records, ensure_ascii=False, indent=1)
    pattern = text_pattern(match)
    count = 0
    if pattern is not None:
        text, count = pattern.subn(REDACTED, text)
    if not dropped and not count:
        return None
    _replace(path, text.encode(encoding))
    return dropped


def _erase_table_frame(frame: pd.DataFrame, match: PersonMatch) -> tuple[pd.DataFrame, int, int]:
    as_text = frame.astype("string")
    table, deleted, redacted = erase_in_arrow(
        pa.Table.from_pandas(as_text, preserve_index=False), match
    )
    return table.to_pandas(), deleted, redacted


def _erase_csv(path: Path, match: PersonMatch) -> int | None:
    text, encoding = _decode(path.read_bytes())
    sep = "\t" if path.suffix == ".tsv" else ","
    frame = pd.read_csv(io.StringIO(text), dtype="string", keep_default_na=False, sep=sep)
    new, deleted, redacted = _erase_table_frame(frame, match)
    pattern = text_pattern(match)
    out = new.to_csv(index=False, sep=sep)
    count = 0
    if pattern is not None:  # names and ids in cells that are not link columns
        out, count = pattern.subn(REDACTED, out)
    if not (deleted or redacted or count):
        return None
    _replace(path, out.encode(encoding))
    return deleted


def _erase_xlsx(path: Path, match: PersonMatch) -> int | None:
    """Every sheet: the person's rows dropped, their values redacted in the other cells."""
    sheets = pd.read_excel(
        path, sheet_name=None, dtype=str, keep_default_na=False, engine="calamine"
    )
    pattern = text_pattern(match)
    total_deleted = total_changed = 0
    out: dict[str, pd.DataFrame] = {}
    for name, frame in sheets.items():
        new, deleted, redacted = _erase_table_frame(frame, match)
        total_deleted += deleted
        total_changed += deleted + redacted
        if pattern is not None:
            for column in new.columns:
                values = new[column].astype(object)
                hits = values.map(lambda v: isinstance(v, str) and bool(pattern.search(v)))
                if hits.any():
                    new[column] = values.where(
                        ~hits.astype(bool), values[hits].map(lambda v: pattern.sub(REDACTED, v))
                    )
                    total_changed += int(hits.sum())
        out[str(name)] = new
    if not total_changed:
        return None
    temp = path.with_name(f".{path.name}.erase-{secrets.token_hex(4)}{path.suffix}")
    with pd.ExcelWriter(temp, engine="xlsxwriter") as xl:
        for name, frame in out.items():
            neutralize_formulas(frame).to_excel(xl, sheet_name=name, index=False)
    os.replace(temp, path)
    return total_deleted


def _erase_parquet(path: Path, match: PersonMatch, key: KeyRing | None) -> int | None:
    encrypted = is_encrypted_parquet(path)
    table, deleted, redacted = erase_in_arrow(read_parquet_any(path, key), match)
    if not (deleted or redacted):
        return None
    temp = path.with_name(f".{path.name}.erase-{secrets.token_hex(4)}")
    write_parquet_like(table, temp, key, encrypted)
    os.replace(temp, path)
    return deleted


def erase_in_file(path: Path, match: PersonMatch, key: KeyRing | None = None) -> int | None:
    """Erase the person from one file of any kind the project writes.

    Args:
        path: the file.
        match: the person (link keys, phones, e-mails, names).
        key: the ring for encrypted Parquet files.

    Returns:
        Rows dropped (0 when only text was redacted), or None when the file did not hold them.
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _erase_parquet(path, match, key)
    if suffix in {".xlsx", ".xlsm"}:
        return _erase_xlsx(path, match)
    if suffix in {".csv", ".tsv"}:
        return _erase_csv(path, match)
    if suffix in {".jsonl", ".json"}:
        return _erase_json(path, match)
    if suffix in TEXT_SUFFIXES:
        return _erase_text(path, match)
    return None


def erase_in_tree(
    folder: Path, match: PersonMatch, key: KeyRing | None = None, skip: Iterable[Path] = ()
) -> dict[str, int]:
    """:func:`erase_in_file` over every file under ``folder`` (except ``skip``).

    Returns:
        Changed file → rows dropped.
    """
    skipped = {Path(p).resolve() for p in skip}
    done: dict[str, int] = {}
    if not Path(folder).is_dir():
        return done
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or path.suffix.lower() in SKIP_SUFFIXES:
            continue
        if path.resolve() in skipped or path.name.startswith("."):
            continue
        result = erase_in_file(path, match, key)
        if result is not None:
            done[str(path)] = result
    return done


def files_holding(folder: Path, match: PersonMatch) -> list[Path]:
    """Files under ``folder`` (departments' landing files) that still hold the person.

    Reads CSV/TSV/JSON/text (UTF-8, GBK, UTF-16), XLSX/XLS (all sheets) and Parquet; nothing
    is changed: landing files are the departments' originals (see ``landing_retention_days``).
    """
    pattern = text_pattern(match)
    found: list[Path] = []
    if pattern is None or not Path(folder).is_dir():
        return found
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        try:
            if suffix in {".xlsx", ".xlsm", ".xls"}:
                sheets = pd.read_excel(
                    path, sheet_name=None, dtype=str, header=None, engine="calamine"
                )
                text = "\n".join(f.to_csv(index=False) for f in sheets.values())
            elif suffix == ".parquet":
                text = pd.read_parquet(path).astype("string").to_csv(index=False)
            else:
                text, _ = _decode(path.read_bytes())
        except (OSError, ValueError) as exc:  # unreadable: listed, the person may be in it
            LOG.warning("landing file %s not readable for the erasure report: %s", path, exc)
            found.append(path)
            continue
        if pattern.search(text):
            found.append(path)
    return found
