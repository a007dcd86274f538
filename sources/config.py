"""Source mappings (sources.yml): typed and validated, errors naming file, source and key."""

from __future__ import annotations

import codecs
import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sources.model import ATTRIBUTES_COLUMN, CANONICAL_FIELDS, REQUIRED_FIELDS_DEFAULT

SourceFormat = Literal["auto", "csv", "tsv", "xlsx", "xls", "json", "jsonl", "parquet"]
DateOrder = Literal["auto", "ymd", "dmy", "mdy"]
DeliveryKind = Literal["full", "delta"]
"""``full``: each delivery is the source's whole current state; ``delta``: changes only."""

DELETED_VALUES_DEFAULT: tuple[str, ...] = (
    "1",
    "true",
    "t",
    "y",
    "yes",
    "d",
    "deleted",
    "delete",
    "是",
    "删除",
    "已删除",
)
"""Cell values (case-insensitive, trimmed) that mark a delta row as a deletion by default."""

_SUFFIX_FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xls",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


class SourceConfigError(ValueError):
    """A sources.yml that cannot be used; the message names the file, the source and the key."""


Headers = str | list[str]
"""A header, or aliases tried in order."""

SplitKind = Literal["address_phone", "bank_account"]
SPLIT_PARTS: dict[str, tuple[str, ...]] = {
    "address_phone": ("address", "phone"),
    "bank_account": ("bank", "account"),
}
"""Parts of each combined-cell parse (地址电话: address, phone; 开户行及账号: bank, account)."""
_SPLIT_DEFAULT_INTO: dict[str, dict[str, str]] = {
    "address_phone": {"address": "address", "phone": "phone"},
    "bank_account": {"bank": "bank_name", "account": "bank_account"},
}
_ATTRIBUTE_NAME = r"^[a-z][a-z0-9_]*$"


def _header_list(headers: Headers) -> list[str]:
    names = [headers] if isinstance(headers, str) else list(headers)
    if not names or any(not str(h).strip() for h in names):
        raise ValueError("maps to an empty header")
    return names


class JoinSpec(BaseModel):
    """A field made of several columns, joined in order (blank parts skipped).

    ``{join: [given_name, surname], sep: " "}``; each part is a header or a list of aliases.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    join: list[Headers] = Field(min_length=1)
    sep: str = " "

    @field_validator("join")
    @classmethod
    def _parts(cls, value: list[Headers]) -> list[Headers]:
        for part in value:
            _header_list(part)
        return value


class SplitSpec(BaseModel):
    """A combined cell parsed into several fields (VAT invoice 地址电话, 开户行及账号).

    ``into`` maps each part of the parse (``address``/``phone``, ``bank``/``account``) to a
    canonical field or an attribute name; the defaults are address → address, phone → phone,
    bank → bank_name, account → bank_account (the last two as attributes).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: Headers
    kind: SplitKind
    into: dict[str, str] = Field(default_factory=dict)

    @field_validator("column")
    @classmethod
    def _column(cls, value: Headers) -> Headers:
        _header_list(value)
        return value

    def targets(self) -> dict[str, str]:
        """Part → target field (defaults filled in)."""
        return {**_SPLIT_DEFAULT_INTO[self.kind], **self.into}

    @model_validator(mode="after")
    def _check_into(self) -> SplitSpec:
        parts = SPLIT_PARTS[self.kind]
        for part, target in self.into.items():
            if part not in parts:
                raise ValueError(f"{self.kind} yields {', '.join(parts)}; cannot map part {part!r}")
            if target not in CANONICAL_FIELDS and not re.match(_ATTRIBUTE_NAME, target):
                raise ValueError(
                    f"part {part!r}: {target!r} is neither a canonical field "
                    "nor an attribute name (lowercase letters, digits, _)"
                )
        return self


class DeletedFlag(BaseModel):
    """The column of a delivery that marks a row as deleted at source (删除标记).

    ``column`` is the header (or aliases tried in order); a row whose cell, trimmed and
    lower-cased, is one of ``values`` is a deletion of that record as of the delivery.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | list[str]
    values: tuple[str, ...] = DELETED_VALUES_DEFAULT

    @field_validator("column")
    @classmethod
    def _named(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names or any(not str(n).strip() for n in names):
            raise ValueError("deleted_flag.column must name a header")
        return value

    @property
    def headers(self) -> list[str]:
        """The header aliases, in priority order."""
        return [self.column] if isinstance(self.column, str) else list(self.column)


class SourceConfig(BaseModel):
    """How one department's exports are found and mapped to canonical fields.

    ``columns`` maps a canonical field to the header of the department's column, or to a
    list of aliases tried in order (手机 → 手机号码 → 联系电话 after a CRM upgrade). One
    header may feed several canonical fields. ``id_column`` is a shortcut for
    ``columns["source_record_id"]`` (the source's own id, e.g. 客户编号).

    ``delivery`` says what one delivery is (docs/configuration.md, "Delivery semantics"):
    ``full`` (the complete current state: a record missing from a later full delivery is
    deleted at source) or ``delta`` (changes only, the default; ``deleted_flag`` names the
    column marking deletions). ``updated_at`` is a shortcut for ``columns["updated_at"]``: the
    record's last-change time, which orders versions delivered on the same date.

    ``id_pattern`` (optional) is a regular expression every record id must match in full;
    rows whose id does not fit are quarantined (``sources/row_checks.py``). ``sheet: auto``
    reads the workbook sheet whose header matches the mapping best.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    department: str = ""
    path: str = Field(min_length=1)
    format: SourceFormat = "auto"
    encoding: str = "auto"
    delimiter: str | None = None
    sheet: str | int = 0
    header_row: Literal["auto"] | int = "auto"
    id_column: str | list[str] | None = None
    columns: dict[str, Headers | JoinSpec] = Field(default_factory=dict)
    attributes: dict[str, Headers | JoinSpec] = Field(default_factory=dict)
    split: list[SplitSpec] = Field(default_factory=list)
    required: tuple[str, ...] = REQUIRED_FIELDS_DEFAULT
    date_order: DateOrder = "auto"
    enabled: bool = True
    delivery: DeliveryKind = "delta"
    deleted_flag: DeletedFlag | None = None
    updated_at: str | list[str] | None = None
    id_pattern: str | None = None
    """Regular expression the whole (trimmed) record id must match, e.g. ``KH\\d{8}``."""

    @field_validator("id_pattern")
    @classmethod
    def _valid_id_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        return value

    @field_validator("deleted_flag", mode="before")
    @classmethod
    def _flag_shortcut(cls, value: Any) -> Any:
        # `deleted_flag: 删除标记` is short for `deleted_flag: {column: 删除标记}`
        if isinstance(value, str | list):
            return {"column": value}
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_char_delimiter(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"delimiter must be one character, got {value!r}")
        return value

    @field_validator("header_row")
    @classmethod
    def _positive_header_row(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value < 1:
            raise ValueError("header_row is 1-based: use 1 for the first row or 'auto'")
        return value

    @field_validator("columns")
    @classmethod
    def _canonical_columns(
        cls, value: dict[str, Headers | JoinSpec]
    ) -> dict[str, Headers | JoinSpec]:
        for canonical, headers in value.items():
            if canonical not in CANONICAL_FIELDS:
                raise ValueError(
                    f"unknown canonical field {canonical!r} (known: {', '.join(CANONICAL_FIELDS)})"
                    + (
                        " — declare it under 'attributes:'"
                        if re.match(_ATTRIBUTE_NAME, canonical)
                        else ""
                    )
                )
            if not isinstance(headers, JoinSpec):
                try:
                    _header_list(headers)
                except ValueError as exc:
                    raise ValueError(f"field {canonical!r} {exc}") from exc
        return value

    @field_validator("attributes")
    @classmethod
    def _attribute_names(
        cls, value: dict[str, Headers | JoinSpec]
    ) -> dict[str, Headers | JoinSpec]:
        for name, headers in value.items():
            if not re.match(_ATTRIBUTE_NAME, name):
                raise ValueError(
                    f"attribute name {name!r}: use lowercase letters, digits and _ (wechat_id)"
                )
            if name in CANONICAL_FIELDS or name == ATTRIBUTES_COLUMN:
                raise ValueError(f"attribute {name!r} is a canonical field: map it under columns")
            if not isinstance(headers, JoinSpec):
                try:
                    _header_list(headers)
                except ValueError as exc:
                    raise ValueError(f"attribute {name!r} {exc}") from exc
        return value

    @field_validator("required")
    @classmethod
    def _canonical_required(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for canonical in value:
            if canonical not in CANONICAL_FIELDS:
                raise ValueError(f"unknown canonical field {canonical!r}")
        return value

    def field_aliases(self) -> dict[str, list[str]]:
        """Return canonical field → header aliases of the one-column mappings (id merged in).

        Fields built by ``join`` or ``split`` are not here: see :meth:`header_aliases`.

        Returns:
            A dict in mapping order; ``source_record_id`` first when the source has an id.
        """
        aliases: dict[str, list[str]] = {}
        if self.id_column is not None:
            ids = [self.id_column] if isinstance(self.id_column, str) else list(self.id_column)
            aliases["source_record_id"] = ids
        for canonical, headers in self.columns.items():
            if isinstance(headers, JoinSpec):
                continue
            names = [headers] if isinstance(headers, str) else list(headers)
            merged = aliases.get(canonical, []) + [
                h for h in names if h not in aliases.get(canonical, [])
            ]
            aliases[canonical] = merged
        if self.updated_at is not None:
            stamps = [self.updated_at] if isinstance(self.updated_at, str) else self.updated_at
            known = aliases.get("updated_at", [])
            aliases["updated_at"] = [*stamps, *(h for h in known if h not in stamps)]
        return aliases

    def header_aliases(self) -> dict[str, list[str]]:
        """Every header lookup the source needs, keyed for :func:`sources.headers.resolve_headers`.

        Keys: a canonical field (one column), ``<field>#<i>`` (the i-th part of a join),
        ``@<attribute>`` / ``@<attribute>#<i>`` (attributes) and ``split#<i>`` (combined cells).
        """
        aliases = self.field_aliases()
        for prefix, mapping in (("", self.columns), ("@", self.attributes)):
            for name, headers in mapping.items():
                if isinstance(headers, JoinSpec):
                    for i, part in enumerate(headers.join):
                        aliases[f"{prefix}{name}#{i}"] = _header_list(part)
                elif prefix:
                    aliases[f"@{name}"] = _header_list(headers)
        for i, spec in enumerate(self.split):
            aliases[f"split#{i}"] = _header_list(spec.column)
        return aliases

    def mapping_sha256(self) -> str:
        """Fingerprint of how this source's files are read and mapped (every key but
        ``enabled``): a file quarantined whole under one mapping is read again once it
        changes (``sources.deliveries.plan_deliveries``)."""
        text = self.model_dump_json(exclude={"enabled"})
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def output_fields(self) -> list[str]:
        """Canonical fields this source fills (one-column, joined or parsed), mapping order."""
        fields = list(self.field_aliases())
        fields += [f for f, h in self.columns.items() if isinstance(h, JoinSpec)]
        fields += [t for s in self.split for t in s.targets().values() if t in CANONICAL_FIELDS]
        return list(dict.fromkeys(fields))

    def attribute_names(self) -> list[str]:
        """Attributes this source fills (declared or parsed from combined cells)."""
        names = list(self.attributes)
        names += [t for s in self.split for t in s.targets().values() if t not in CANONICAL_FIELDS]
        return list(dict.fromkeys(names))

    @property
    def has_id(self) -> bool:
        """Whether the source declares its own id column (else a content hash is used)."""
        return "source_record_id" in self.output_fields()

    def required_fields(self) -> tuple[str, ...]:
        """Return the canonical fields a delivered file must cover (the id when declared).

        A joined field is covered when any of its parts is found; a parsed one when its
        combined column is.
        """
        extra = ("source_record_id",) if self.has_id else ()
        return tuple(dict.fromkeys((*extra, *self.required)))

    def file_format(self, path: Path) -> str:
        """Return the reader format for ``path`` (``format`` or guessed from the suffix).

        Args:
            path: A delivered file.

        Returns:
            One of ``csv, tsv, xlsx, xls, json, jsonl, parquet``.

        Raises:
            ValueError: when the format is ``auto`` and the suffix is unknown.
        """
        if self.format != "auto":
            return self.format
        suffix = path.suffix.lower()
        if suffix not in _SUFFIX_FORMATS:
            raise ValueError(f"cannot tell the format of {path.name!r} from its suffix")
        return _SUFFIX_FORMATS[suffix]


DEFAULT_INGEST_BATCH_ROWS = 500_000
"""``ingest_batch_rows`` unless sources.yml sets it: a file of more rows is read, checked and
staged in batches of this many, so ingest memory follows the batch, not the file. Batching
costs CPU (+19 % for a 2-batch file, +36 % for 10 batches: BENCHMARKS.md, branch
``ingest10m``) and only lowers the peak once a file is several batches long, so the default
keeps files up to half a million rows on the one-pass path."""


class SourcesConfig(BaseModel):
    """All sources of a project and the landing folder their globs are relative to."""

    model_config = ConfigDict(frozen=True)

    landing_dir: Path
    sources: list[SourceConfig]
    ingest_batch_rows: int | None = Field(default=DEFAULT_INGEST_BATCH_ROWS, ge=1)
    """Files of more rows are ingested in batches of this many (None: every file whole)."""

    def source(self, name: str) -> SourceConfig:
        """Return the source called ``name``.

        Args:
            name: Source system name.

        Returns:
            Its configuration.

        Raises:
            KeyError: when no source has that name.
        """
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"no source named {name!r}")


def find_source_files(source: SourceConfig, landing_dir: Path) -> list[Path]:
    """List the files a source's glob matches, sorted, skipping hidden and Office lock files.

    Args:
        source: The source.
        landing_dir: Folder the glob is relative to.

    Returns:
        Matching regular files in path order (landing/<dept>/YYYY-MM-DD/… sorts by date).
    """
    matches = [
        p
        for p in landing_dir.glob(source.path)
        if p.is_file() and not p.name.startswith((".", "~$"))
    ]
    return sorted(matches, key=lambda p: p.relative_to(landing_dir).as_posix())


def _error(path: Path, source: str, key: str, message: str) -> SourceConfigError:
    return SourceConfigError(f"{path}: source {source!r}: key {key!r}: {message}")


def _validate_source(path: Path, index: int, raw: Any) -> SourceConfig:
    if not isinstance(raw, dict):
        raise _error(path, f"#{index + 1}", "sources", "each source must be a mapping")
    label = str(raw.get("name") or f"#{index + 1}")
    try:
        source = SourceConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # a mapping value is a header, a list of aliases or a {join: …}: report the error of
        # the form the user wrote (a mapping → the JoinSpec branch), without the branch tags
        joins = [e for e in errors if "JoinSpec" in e["loc"] and e["type"] != "model_type"]
        first = joins[0] if joins else errors[0]
        tags = {"str", "list[str]", "JoinSpec"}
        key = ".".join(str(part) for part in first["loc"] if part not in tags) or "?"
        message = first["msg"].removeprefix("Value error, ")
        raise _error(path, label, key, message) from exc
    mapped = source.output_fields()
    if source.id_pattern is not None and not source.has_id:
        raise _error(
            path, label, "id_pattern", "needs an id column (id_column or columns.source_record_id)"
        )
    for canonical in source.required:
        if canonical not in mapped:
            raise _error(
                path, label, f"columns.{canonical}", "required field has no header mapping"
            )
    return source


def load_sources_config(
    path: Path, landing_dir: Path | None = None, check_files: bool = True
) -> SourcesConfig:
    """Load and validate a sources.yml.

    Args:
        path: The YAML file (``landing_dir`` optional, ``sources`` a list of source mappings).
        landing_dir: Overrides the YAML's ``landing_dir``. A relative ``landing_dir`` in
            the YAML resolves against the YAML file's folder.
        check_files: Also require each enabled source's glob to match at least one file.

    Returns:
        The validated configuration.

    Raises:
        SourceConfigError: naming the file, the source and the key at fault (unknown
            canonical field, missing required mapping, duplicate source names, bad
            format, glob matching nothing, unreadable YAML).
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SourceConfigError(f"{path}: cannot read sources config: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("sources"), list):
        raise SourceConfigError(f"{path}: key 'sources': expected a list of source mappings")
    unknown = set(document) - {"landing_dir", "sources", "ingest_batch_rows"}
    if unknown:
        raise SourceConfigError(f"{path}: unknown top-level key(s): {', '.join(sorted(unknown))}")

    if landing_dir is None and document.get("landing_dir"):
        landing_dir = Path(str(document["landing_dir"]))
        if not landing_dir.is_absolute():
            landing_dir = path.parent / landing_dir
    if landing_dir is None:
        if check_files:
            raise SourceConfigError(
                f"{path}: key 'landing_dir': not in the file and not given by the caller"
            )
        landing_dir = Path("landing")

    sources: list[SourceConfig] = []
    seen: set[str] = set()
    for index, raw in enumerate(document["sources"]):
        source = _validate_source(path, index, raw)
        if source.name in seen:
            raise _error(path, source.name, "name", "duplicate source name")
        seen.add(source.name)
        if check_files and source.enabled and not find_source_files(source, landing_dir):
            raise _error(
                path, source.name, "path", f"glob {source.path!r} matches no file in {landing_dir}"
            )
        sources.append(source)
    batch_rows = document.get("ingest_batch_rows", DEFAULT_INGEST_BATCH_ROWS)
    try:
        return SourcesConfig(landing_dir=landing_dir, sources=sources, ingest_batch_rows=batch_rows)
    except ValidationError as exc:
        raise SourceConfigError(
            f"{path}: key 'ingest_batch_rows': a whole number of rows >= 1 (or null), "
            f"not {batch_rows!r}"
        ) from exc
