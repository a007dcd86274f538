"""Chunk writes on a second connection in one background thread, one at a time, in order.

A full clean and a full golden build each compute a chunk in pandas (Python, the GIL) and
then append it to DuckDB tables and commit (``warehouse.db.ChunkedTables``): the appends, the
``COMMIT`` (compression, the write to disk) and the golden build's carry-forward comparison run
inside DuckDB, which releases the GIL. :class:`WriteBehind` runs each chunk's write on a
cursor of the caller's database (its own connection and transaction) in one thread while the
caller computes the next chunk, so the two cores overlap what used to follow one another.

Order and memory are bounded: :meth:`WriteBehind.submit` first waits for the write before it
(and raises its error), so at most one write runs while the caller computes, and the caller
holds at most one more chunk's frames than when writing inline. The writes are the same
statements on the same rows in the same order, so the tables are the same. A temporary table
or a registered frame of the caller's connection is not visible on the cursor: a write must
use only persistent tables and what it registers itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import duckdb

from warehouse.db import database_cursor

__all__ = ["WriteBehind"]


class WriteBehind:
    """One background writer over a cursor of ``con``'s database (a context manager).

    ``write(cursor)`` functions run in submission order, one at a time; each should open and
    commit (or roll back, on error) its own transaction on the cursor. ``inline=True`` runs
    every write at once in the caller's thread, on ``con`` itself (the old behaviour).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, *, inline: bool = False) -> None:
        self._inline = inline
        self._cursor = con if inline else database_cursor(con)
        self._pool = None if inline else ThreadPoolExecutor(1, thread_name_prefix="write-behind")
        self._pending: Future[None] | None = None

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The connection the writes run on (build writers such as ``ChunkedTables`` on it;
        use it from the caller's thread only between writes, after :meth:`wait`)."""
        return self._cursor

    def submit(self, write: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        """Wait for the previous write (raising its error), then start ``write``."""
        self.wait()
        if self._pool is None:
            write(self._cursor)
        else:
            self._pending = self._pool.submit(write, self._cursor)

    def wait(self) -> None:
        """Wait until every submitted write has finished; raise the first write's error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the write in flight (its error, if any, is raised), stop the thread and
        close the cursor."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                with contextlib.suppress(duckdb.Error):
                    self._cursor.close()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:  # the caller failed: the write in flight still ends before anything is dropped
            self.close()
        except BaseException as write_error:  # attached to the caller's error
            exc.add_note(f"the background chunk write failed too: {write_error!r}")
