"""Read a run's later sources in a helper process while the ingest stage does its own (#22).

The in-process executor runs the ingest steps one after the other, one per source in the
order of their asset keys (``raw/<source>``: by name). Reading and checking a delivery
(parsing, structural checks, records, repeats) is most of a source's ingest and needs nothing
of the warehouse but a few inputs (``ReadInputs``); publishing it stays in its own stage, in
its one transaction. On the run's first ingest step, :func:`step_read_ahead` hands the later
sources with enough new bytes (``MIN_NEW_BYTES``) to one helper process (the child interpreter
of `cleaning._slices`), **the last first**, while the stage reads its own: the two ends meet in
the middle, so a slow last source (the service XLSX) is read beside the first ones. A source
the helper has not begun when its stage comes is read by the stage as before (the helper
never starts it then).

What a stage publishes is what it would have read itself:

* the same inputs: those given to the helper are compared with the stage's own (the source's
  manifest rows, its files quarantined whole, the suppression list and its keys, the mapping,
  the batch size); on any difference the stage reads the source itself;
* the same rows in the same order: the batches of a large file are spilled to
  ``warehouse.raw.RawStaging`` (in a folder of this process) as the stage spills them; the
  rest comes back through the pipe (kept rows as Arrow, quarantined rows as they are) and is
  inserted after them, as the stage's own read would be; re-delivered rows of erased people
  are screened the same way;
* the stage's own ``ingested_at``, set when the staged rows are published.

A helper that dies, times out or raises leaves the source to its stage (a warning is logged;
an error of the reading itself is then raised by the stage's own read). The module imports
nothing of `pipelines.stages` (the helper imports this module to run :func:`read_source`).
"""

from __future__ import annotations

import atexit
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa

from cleaning._slices import HELPER_TIMEOUT, HelperError, _Helper
from sources import IngestResult, SourceConfig, ingest_source
from sources.config import find_source_files
from warehouse.db import to_duckdb_arrow
from warehouse.ops import concat_frames
from warehouse.raw import RawStaging
from warehouse.security.suppression import drop_suppressed, scrub_quarantined

log = logging.getLogger("customer_archive")

__all__ = [
    "MIN_NEW_BYTES",
    "ReadAhead",
    "ReadInputs",
    "ReadOutcome",
    "close_read_ahead",
    "new_bytes",
    "read_ahead_sources",
    "read_source",
    "screen_suppressed",
    "source_manifest",
    "step_read_ahead",
]

MIN_NEW_BYTES = 8 * 2**20
"""New bytes a source needs to be read ahead (and, for the first step, to be worth a helper):
a helper costs ≈ 1 CPU s to start (BENCHMARKS.md, issue #22, `ingestpar`); a nightly's small
delta files are read by their stages."""


@dataclass(frozen=True)
class ReadInputs:
    """Everything one source's read depends on besides its files: equal inputs, equal rows."""

    source: SourceConfig
    landing_dir: Path
    batch_rows: int | None
    manifest: pd.DataFrame
    """The source's rows of ``ops.deliveries`` (the only ones ``plan_deliveries`` reads)."""
    rejected: frozenset[tuple[str, str, str]]
    suppression: pd.DataFrame | None
    secrets: tuple[bytes, ...]

    def same_as(self, other: ReadInputs) -> bool:
        """Whether a read with ``other`` gives what a read with these gives."""
        return (
            self.source == other.source
            and self.landing_dir == other.landing_dir
            and self.batch_rows == other.batch_rows
            and self.rejected == other.rejected
            and self.secrets == other.secrets
            and _same_frame(self.manifest, other.manifest)
            and _same_frame(self.suppression, other.suppression)
        )


def _same_frame(a: pd.DataFrame | None, b: pd.DataFrame | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return list(a.columns) == list(b.columns) and a.reset_index(drop=True).equals(
        b.reset_index(drop=True)
    )


def source_manifest(manifest: pd.DataFrame | None, source: str) -> pd.DataFrame:
    """The rows of ``ops.deliveries`` that plan a source's deliveries (empty on a first run)."""
    if manifest is None or manifest.empty or "source_system" not in manifest.columns:
        return pd.DataFrame()
    rows = manifest.loc[manifest["source_system"] == source].reset_index(drop=True)
    return rows if len(rows) else pd.DataFrame()  # planned as a first delivery either way


def new_bytes(source: SourceConfig, landing_dir: Path, manifest: pd.DataFrame) -> int:
    """Bytes of the files a source's glob matches whose path and size no delivery recorded.

    A cheap guess (no hashing) of what the source's stage will read; it only decides whether
    reading ahead is worth a helper, never what is read.
    """
    if not source.enabled:
        return 0
    known: set[tuple[str, int]] = set()
    if {"path", "size"} <= set(manifest.columns):
        sizes = zip(manifest["path"], manifest["size"], strict=True)
        known = {(str(p), int(s)) for p, s in sizes if pd.notna(s)}
    total = 0
    for file in find_source_files(source, landing_dir):
        size = file.stat().st_size
        if (file.relative_to(landing_dir).as_posix(), size) not in known:
            total += size
    return total


def screen_suppressed(
    result: IngestResult, suppression: pd.DataFrame | None, secrets: Sequence[bytes]
) -> tuple[IngestResult, int, int]:
    """Quarantine (reason ``erased``, no content) re-delivered rows of erased people.

    Rows the reader already quarantined lose their ``raw_content`` when they belong to an
    erased person. Returns the result and how many quarantined rows were scrubbed and how
    many kept rows were erased.
    """
    if suppression is None or suppression.empty:
        return result, 0, 0
    if result.rows.empty and result.quarantined_rows.empty:
        return result, 0, 0
    quarantined, scrubbed = scrub_quarantined(result.quarantined_rows, suppression, secrets)
    if result.rows.empty:
        return replace(result, quarantined_rows=quarantined), scrubbed, 0
    kept, erased = drop_suppressed(result.rows, suppression, secrets)
    if erased.empty:
        return replace(result, quarantined_rows=quarantined), scrubbed, 0
    both = concat_frames(quarantined, erased)
    return replace(result, rows=kept, quarantined_rows=both), scrubbed, len(erased)


@dataclass
class _ScreenedSink:
    """A ``BatchSink`` that screens each batch for erased people, then spills it."""

    inputs: ReadInputs
    staging: RawStaging
    scrubbed: int = 0
    erased: int = 0

    def append(self, rows: pd.DataFrame, quarantined_rows: pd.DataFrame) -> None:
        batch = IngestResult(rows, quarantined_rows, quarantined_rows.iloc[:0])
        batch, scrubbed, erased = screen_suppressed(
            batch, self.inputs.suppression, self.inputs.secrets
        )
        self.scrubbed += scrubbed
        self.erased += erased
        self.staging.append(batch.rows, batch.quarantined_rows)

    def discard(self, source_file: str) -> None:
        self.staging.discard(source_file)


@dataclass
class ReadRequest:
    """One source for the helper: its inputs and where to spill its rows."""

    inputs: ReadInputs
    run_id: str
    ingested_at: str
    staging: RawStaging


@dataclass
class ReadOutcome:
    """A source read by the helper: the result, the kept rows of the files read whole (as
    Arrow: a buffer copy through the pipe, never on disk) and the staged batches."""

    result: IngestResult
    """``rows`` empty: they are ``rows``; ``quarantined_rows`` as read."""
    rows: pa.Table
    staging: RawStaging
    scrubbed: int
    erased: int
    cpu_seconds: float

    def rows_stamped(self, ingested_at: str) -> pa.Table:
        """``rows`` with the stage's ``ingested_at`` (the helper read them with its own)."""
        at = self.rows.schema.get_field_index("ingested_at")
        if at < 0:
            return self.rows
        stamp = pa.array([ingested_at] * self.rows.num_rows, pa.string())
        return self.rows.set_column(at, "ingested_at", stamp)


def read_source(request: ReadRequest) -> ReadOutcome:
    """Read one source as its stage would (runs in the helper)."""
    started = time.process_time()
    inputs = request.inputs
    sink = _ScreenedSink(inputs, request.staging)
    result = ingest_source(
        inputs.source,
        inputs.landing_dir,
        request.run_id,
        request.ingested_at,
        inputs.manifest,
        batch_rows=inputs.batch_rows,
        sink=sink,
        rejected=set(inputs.rejected),
    )
    result, scrubbed, erased = screen_suppressed(result, inputs.suppression, inputs.secrets)
    rows = to_duckdb_arrow(result.rows)
    return ReadOutcome(
        replace(result, rows=result.rows.iloc[:0]),
        rows,
        request.staging,
        sink.scrubbed + scrubbed,
        sink.erased + erased,
        time.process_time() - started,
    )


@dataclass
class ReadAhead:
    """One run's helper and the sources handed to it (``queue``: the next one last)."""

    run_id: str
    ingested_at: str
    inputs: dict[str, ReadInputs]
    queue: list[str]
    helper: _Helper | None = None
    running: tuple[str, RawStaging] | None = None
    done: dict[str, ReadOutcome | None] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)

    def _submit_next(self) -> None:
        """Hand the next unclaimed source to the helper when it is idle."""
        if self.running is not None or self.helper is None:
            return
        while self.queue and self.queue[-1] in self.claimed:
            self.queue.pop()
        if not self.queue:
            self._close_helper()
            return
        name = self.queue.pop()
        staging = RawStaging(self.run_id)
        request = ReadRequest(self.inputs[name], self.run_id, self.ingested_at, staging)
        self.helper.submit(read_source, request)
        self.running = (name, staging)

    def _harvest(self, wait: bool) -> None:
        """Collect the helper's finished source (waiting for it with ``wait``)."""
        if self.running is None or self.helper is None:
            return
        if not wait and not self.helper.recv_conn.poll():
            return
        name, staging = self.running
        self.running = None
        try:
            ok, value = self.helper.result(time.monotonic() + HELPER_TIMEOUT)
        except HelperError as exc:
            ok, value = False, str(exc)
        if not ok:
            log.warning("ingest     reading %s ahead failed (%s): its stage reads it", name, value)
            staging.close()
            self.done[name] = None
            self.queue.clear()
            self._close_helper()
            return
        staging.adopt(value.staging)
        self.done[name] = replace(value, staging=staging)

    def take(self, name: str, inputs: ReadInputs) -> ReadOutcome | None:
        """The source as read ahead, or None: its stage reads it (and the helper never will)."""
        self.claimed.add(name)
        if self.running is not None and self.running[0] == name:
            self._harvest(wait=True)
        else:
            self._harvest(wait=False)
        outcome = self.done.pop(name, None)
        self._submit_next()
        if outcome is None:
            return None
        if not self.inputs[name].same_as(inputs):
            log.warning("ingest     %s changed since it was read ahead: its stage reads it", name)
            outcome.staging.close()
            return None
        return outcome

    def _close_helper(self) -> None:
        if self.helper is not None:
            self.helper.close()  # waits for its exit: its CPU counts as this stage's children's
            self.helper = None

    def close(self) -> None:
        """Stop the helper and remove whatever it staged that no stage took."""
        self.queue.clear()
        if self.running is not None:
            if self.helper is not None:  # busy reading: it would not hear a request to stop
                self.helper.proc.kill()
            self.running[1].close()
            self.running = None
        self._close_helper()
        for outcome in self.done.values():
            if outcome is not None:
                outcome.staging.close()
        self.done.clear()


def read_ahead_sources(source: str, order: Sequence[str], sizes: dict[str, int]) -> list[str]:
    """The sources after ``source`` in ``order`` a helper should read (in order), or none.

    Those with at least ``MIN_NEW_BYTES`` new bytes, when this step's own source or a second
    one of them leaves this process work to do meanwhile (one large source alone would only
    be waited for).
    """
    if source not in order:
        return []
    later = order[order.index(source) + 1 :]
    big = [n for n in later if sizes.get(n, 0) >= MIN_NEW_BYTES]
    if big and (sizes.get(source, 0) >= MIN_NEW_BYTES or len(big) > 1):
        return big
    return []


_current: tuple[str, ReadAhead | None] | None = None
"""The run whose ingest steps this process serves, and its read-ahead (None: none)."""


def close_read_ahead() -> None:
    """Stop the current run's read-ahead, if any."""
    global _current
    if _current is not None and _current[1] is not None:
        _current[1].close()
    _current = None


atexit.register(close_read_ahead)


def step_read_ahead(
    run_id: str,
    ingested_at: str,
    source: str,
    order: Sequence[str],
    inputs: Callable[[], dict[str, ReadInputs] | None],
) -> ReadAhead | None:
    """The run's read-ahead as seen from the ingest step of ``source``.

    The run's first ingest step starts it: ``order`` is the sources in the steps' order,
    ``inputs`` gives every source's inputs (None: no read-ahead for this run); it is called
    only by that first step, the later ones find the run's read-ahead made. The sources after
    ``source`` with at least ``MIN_NEW_BYTES`` new bytes go to the helper, last first, when
    this step's own source or another one of them leaves work for this process meanwhile.
    """
    global _current
    if _current is not None and _current[0] == run_id:
        return _current[1]
    close_read_ahead()
    ahead = None
    given = inputs()
    if given is not None:
        sizes = {n: new_bytes(i.source, i.landing_dir, i.manifest) for n, i in given.items()}
        big = read_ahead_sources(source, order, sizes)
        if big:
            ahead = ReadAhead(run_id, ingested_at, given, queue=list(big))
            ahead.helper = _Helper(warm=__name__)
            ahead._submit_next()
            log.info(
                "ingest     a helper process reads ahead: %s (each unless its stage comes first)",
                ", ".join(reversed(big)),
            )
    _current = (run_id, ahead)
    return ahead
