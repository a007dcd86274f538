"""Incremental ingest planning: which delivered files are new, changed, duplicate or unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from sources.config import SourceConfig, SourcesConfig, find_source_files
from sources.model import MANIFEST_COLUMNS, READ_STATUSES, FileDelivery


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks.

    Args:
        path: The file.

    Returns:
        64 hex digits.
    """
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _prior_rows(source: SourceConfig, manifest: pd.DataFrame | None) -> pd.DataFrame:
    if manifest is None or manifest.empty:
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    missing = [c for c in ("source_system", "path", "sha256") if c not in manifest.columns]
    if missing:
        raise ValueError(f"manifest lacks column(s) {missing}; expected {list(MANIFEST_COLUMNS)}")
    return manifest.loc[manifest["source_system"] == source.name]


Rejected = set[tuple[str, str, str]]
"""Files an earlier run quarantined whole: (path, sha256, run_id) (``quarantine.files``)."""


def plan_deliveries(
    source: SourceConfig,
    landing_dir: Path,
    manifest: pd.DataFrame | None,
    rejected: Rejected | None = None,
) -> list[FileDelivery]:
    """Decide, for each file the source's glob matches, whether this run should read it.

    The manifest holds earlier runs' deliveries in the order they were recorded; the last
    row of a path is its current version. A path whose content is unchanged is
    ``unchanged``; content already delivered under any path (a re-send, even renamed, or a
    second copy in this batch) is ``duplicate``; a known path with new content is
    ``changed`` (its older rows are superseded); anything else is ``new``.

    Content an earlier run **quarantined whole** (schema drift, an unreadable file, no
    matching sheet) is ``retried`` — read again — when the source's mapping has changed since
    that run (a header alias added to ``sources.yml`` after a quarantine): the department's
    file, or the same export sent again under another name, then arrives after all. Under an
    unchanged mapping it stays skipped. A file quarantined before the manifest kept the
    mapping's fingerprint is read again once (its mapping is unknown).

    Args:
        source: The source.
        landing_dir: Folder the source's glob is relative to.
        manifest: Earlier deliveries (``MANIFEST_COLUMNS``), or None on a first run.
        rejected: Files quarantined whole by earlier runs, (path, sha256, run_id).

    Returns:
        One ``FileDelivery`` per matching file, in path order, each with a note.

    Raises:
        ValueError: when the manifest lacks the path/sha256 columns.
    """
    prior = _prior_rows(source, manifest)
    mapping = source.mapping_sha256()
    runs = prior["run_id"] if "run_id" in prior.columns else pd.Series("?", index=prior.index)
    statuses = prior["status"] if "status" in prior.columns else pd.Series("new", index=prior.index)
    read_with = (
        prior["mapping_sha256"].astype("string").fillna("")
        if "mapping_sha256" in prior.columns
        else pd.Series("", index=prior.index)  # recorded before the fingerprint: unknown
    )
    rejected = rejected or set()
    first_by_sha: dict[str, tuple[str, str]] = {}
    latest_by_path: dict[str, tuple[str, str]] = {}
    # content whose every reading so far was quarantined whole, under another mapping
    retry: dict[str, tuple[str, str]] = {}
    accepted: set[str] = set()
    rows = zip(prior["path"], prior["sha256"], runs, statuses, read_with, strict=True)
    for path, sha, run, status, used in rows:
        path, sha, run = str(path), str(sha), str(run)
        first_by_sha.setdefault(sha, (path, run))
        latest_by_path[path] = (sha, run)
        if str(status) not in READ_STATUSES:  # skipped (unchanged, duplicate): not a reading
            continue
        if (path, sha, run) not in rejected:
            accepted.add(sha)
        elif str(used) != mapping:
            retry[sha] = (path, run)
        else:
            retry.pop(sha, None)  # quarantined under the current mapping: reading again won't help
    for sha in accepted:
        retry.pop(sha, None)

    plans: list[FileDelivery] = []
    batch: dict[str, str] = {}
    for file in find_source_files(source, landing_dir):
        rel = file.relative_to(landing_dir).as_posix()
        sha = file_sha256(file)
        size = file.stat().st_size
        known = latest_by_path.get(rel)
        if sha in retry and sha not in batch:
            other, run = retry[sha]
            status = "retried"
            note = f"quarantined whole by run {run} ({other}); read again: the mapping changed"
        elif known is not None and known[0] == sha:
            status, note = "unchanged", f"unchanged since run {known[1]}: skipped"
        elif sha in first_by_sha:
            other, run = first_by_sha[sha]
            status, note = "duplicate", f"same content as {other} (run {run}): skipped"
        elif sha in batch:
            status, note = "duplicate", f"same content as {batch[sha]} in this run: skipped"
        elif known is not None:
            status, note = "changed", f"replaces the version of run {known[1]}"
        else:
            status, note = "new", ""
        plan = FileDelivery(source.name, rel, size, sha, status, note=note, mapping_sha256=mapping)
        if plan.to_ingest:
            batch[sha] = rel
        plans.append(plan)
    return plans


def landing_fingerprint(config: SourcesConfig) -> tuple[str, int]:
    """Fingerprint (path, size, mtime) every landed file the sources declare; also count them.

    A cheap sensor cursor: it changes whenever a file lands, is replaced, touched or removed,
    without hashing contents.

    Args:
        config: the sources and their landing folder.

    Returns:
        The hex digest and the number of files fingerprinted.
    """
    entries: list[str] = []
    for src in config.sources:
        for path in sorted(Path(config.landing_dir).glob(src.path)):
            if path.is_file():
                st = path.stat()
                entries.append(f"{path}|{st.st_size}|{st.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()
    return digest, len(entries)
