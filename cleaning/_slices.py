"""Clean the slices of a full clean side by side: some slices in helper processes, in order.

A full clean reads the current records a slice at a time (``warehouse.clean_full``) and
cleans each slice with the whole set's inputs, so a slice's result does not depend on which
process cleans it. With ``helpers`` > 0, :func:`clean_slices` shares the slices out as the
processes come free: every helper always holds ``HELPER_DEPTH`` slices, and this process,
which also writes every result, cleans the next slice itself whenever the next result is not
back yet; the results come back in slice order, so the caller writes exactly what one
process would write.

A helper is a plain child interpreter (``python -m cleaning._slices``) that reads
``(function, frame)`` requests from a pipe and answers with the result. No
``multiprocessing`` pool, queue, lock or semaphore is shared with it and the parent's
``__main__`` is never imported again (the process pool of ``cleaning._parallel`` once hung
inside a spawned worker, never diagnosed; nothing here can wait on such a lock). Every wait
on a helper is bounded: a helper that dies, or does not answer within ``HELPER_TIMEOUT``
seconds once this process has nothing else to do, is killed and its slices cleaned here
(a warning is logged; the result is the same). An error raised by the cleaning itself in a
helper is raised here, with the helper's traceback.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

log = logging.getLogger("customer_archive")

R = TypeVar("R")

HELPER_TIMEOUT = 600.0
"""Seconds a helper may keep this process waiting (with nothing else to do) before it is
given up."""
_POLL = 0.5
HELPER_DEPTH = 2
"""Slices given to a helper at a time: one it cleans, one waiting in its pipe."""


class HelperError(RuntimeError):
    """The cleaning function raised in a helper process (the message holds its traceback)."""


class _Helper:
    """One child interpreter serving cleaning requests over two pipes, answered in order."""

    def __init__(self, warm: str = "cleaning.pipeline") -> None:
        down_r, down_w = os.pipe()  # parent → child
        up_r, up_w = os.pipe()  # child → parent
        root = str(Path(__file__).resolve().parents[1])  # the folder holding ``cleaning``
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cleaning._slices", str(down_r), str(up_w), warm],
                pass_fds=(down_r, up_w),
                stdin=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        finally:
            os.close(down_r)
            os.close(up_w)
        self.send_conn = Connection(down_w, readable=False)
        self.recv_conn = Connection(up_r, writable=False)
        self.outstanding = 0  # requests sent (or queued to send) not answered yet
        # one sender thread sends the requests in order (two threads writing one pipe would
        # interleave their bytes); ``None`` ends it
        self._queue: queue.SimpleQueue[tuple[Callable[[Any], Any], Any] | None] = (
            queue.SimpleQueue()
        )
        self._send_error: BaseException | None = None
        self._sender = threading.Thread(target=self._send_all, name="clean-slice-send",
                                        daemon=True)  # fmt: skip
        self._sender.start()

    def _send_all(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._send_error is not None:
                continue  # the pipe is broken: result() reports it
            try:
                self.send_conn.send(item)
            except BaseException as exc:  # reported by result(), never lost
                self._send_error = exc

    def submit(self, func: Callable[[Any], Any], payload: Any) -> None:
        """Queue a request without waiting for the child to read it (it may still be busy)."""
        self.outstanding += 1
        self._queue.put((func, payload))

    def ready(self) -> bool:
        """Whether the answer to the oldest outstanding request can be read without waiting."""
        return self.outstanding > 0 and self.recv_conn.poll(0)

    def result(self, deadline: float) -> tuple[bool, Any]:
        """(True, result) of the oldest outstanding request, or (False, why) when the helper
        died, failed to send or timed out.

        ``deadline`` is the monotonic time after which the helper is given up.
        """
        while True:
            if self.recv_conn.poll(_POLL):
                try:
                    status, value = self.recv_conn.recv()
                except (EOFError, OSError) as exc:
                    return False, f"helper pipe closed ({exc!r})"
                self.outstanding -= 1
                if status == "error":
                    raise HelperError(f"cleaning a slice in a helper process failed:\n{value}")
                return True, value
            if self._send_error is not None:
                return False, f"sending the slice failed ({self._send_error!r})"
            if self.proc.poll() is not None:
                return False, f"helper exited with code {self.proc.returncode}"
            if time.monotonic() > deadline:
                return False, f"no answer within {HELPER_TIMEOUT:.0f} s"

    def close(self) -> None:
        """Ask the child to stop, then make sure it has (killed after a short wait)."""
        self._queue.put(None)
        self._sender.join(timeout=1.0)
        try:
            if self.proc.poll() is None and not self._sender.is_alive():
                self.send_conn.send(None)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for conn in (self.send_conn, self.recv_conn):
            conn.close()


class _ReadAhead:
    """Reads the slice after the one taken in one background thread (``read_ahead``)."""

    def __init__(
        self, read: Callable[[int, int], pd.DataFrame], bounds: Sequence[tuple[int, int]]
    ) -> None:
        self._read, self._bounds = read, bounds
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="slice-read")
        self._next: tuple[int, Future[pd.DataFrame]] | None = None

    def take(self, index: int) -> pd.DataFrame:
        """Slice ``index`` (read ahead, else now); starts reading slice ``index + 1``."""
        ahead, self._next = self._next, None
        if ahead is not None and ahead[0] == index:
            raw = ahead[1].result()
        else:
            if ahead is not None:  # not the slice asked for: never in order, but never two
                ahead[1].result()
            raw = self._read(*self._bounds[index])
        if index + 1 < len(self._bounds):
            self._next = (index + 1, self._pool.submit(self._read, *self._bounds[index + 1]))
        return raw

    def close(self) -> None:
        """Wait for the read in flight (its slice is not wanted any more) and stop."""
        ahead, self._next = self._next, None
        try:
            if ahead is not None:
                ahead[1].result()  # an error reading a slice nobody takes is still raised
        finally:
            self._pool.shutdown(wait=True)


@dataclass
class _Slice:
    """A slice read and not yet yielded: its result once known, else the helper cleaning it."""

    raw: pd.DataFrame
    helper: _Helper | None = None
    done: bool = False
    result: Any = None


def clean_slices(
    read: Callable[[int, int], pd.DataFrame],
    bounds: Sequence[tuple[int, int]],
    clean: Callable[[pd.DataFrame], R],
    helpers: int = 0,
    warm: str = "cleaning.pipeline",
    read_ahead: bool = False,
) -> Iterator[tuple[pd.DataFrame, R]]:
    """``(raw, clean(raw))`` for ``raw = read(start, stop)`` of every slice, in slice order.

    The slices are shared out as the processes come free: each helper always has
    ``HELPER_DEPTH`` slices given (one cleaning, the next waiting in its pipe, so it never
    idles while this process writes); this process yields each result as soon as it and
    every earlier one are known (the caller writes it while the helpers go on) and, when the
    next result is not back yet, cleans the next slice itself instead of waiting. So a
    helper cleans more slices than this process, which also writes them all.

    Args:
        read: Reads one slice (called in this process, in slice order).
        bounds: ``(start, stop)`` of each slice.
        clean: A picklable (module-level, or a ``functools.partial`` of one) pure function of a
            slice; helpers run the same function on the slices they are given.
        helpers: Helper processes (0 = every slice in this process).
        warm: A module each helper imports while the first slices are read (the one
            ``clean`` needs; the golden build's chunks use ``warehouse.golden``).
        read_ahead: Read the next slice in a background thread while this one is cleaned
            and yielded (one more slice held). ``read`` then runs beside ``clean`` and the
            caller's work between two yields, which must not use ``read``'s connection; the
            generator waits for the read in flight when it ends or is closed.

    Yields:
        Each slice with its result; the caller may write it while helpers go on cleaning.
    """
    pool = [_Helper(warm) for _ in range(min(helpers, max(len(bounds) - 1, 0)))]
    pending: deque[_Slice] = deque()  # read, not yielded yet, in slice order
    ahead = len(pool) * HELPER_DEPTH + 2
    given = 0  # slices read so far
    reader = _ReadAhead(read, bounds) if read_ahead else None

    def next_raw() -> pd.DataFrame:
        nonlocal given
        given += 1
        if reader is not None:
            return reader.take(given - 1)
        return read(*bounds[given - 1])

    def give_up(helper: _Helper, why: str) -> None:
        """From here on, the slices ``helper`` holds are cleaned here."""
        log.warning("clean: %s; cleaning its slices in this process", why)
        pool.remove(helper)
        helper.close()
        for waiting in pending:
            if waiting.helper is helper:
                waiting.helper = None

    if pool and bounds:  # the first slice is this process's: the helpers are still starting
        pending.append(_Slice(next_raw()))
    try:
        while given < len(bounds) or pending:
            for helper in pool:  # keep every helper fed
                while helper.outstanding < HELPER_DEPTH and given < len(bounds):
                    item = _Slice(next_raw(), helper)
                    helper.submit(clean, item.raw)
                    pending.append(item)
            head = pending[0] if pending else None
            if (head is not None and not head.done and head.helper is not None
                    and head.helper.ready()):  # back: read it, feed, then yield  # fmt: skip
                ok, value = head.helper.result(time.monotonic() + HELPER_TIMEOUT)
                if ok:
                    head.result, head.done = value, True
                else:
                    give_up(head.helper, value)
                continue
            if head is not None and head.done:
                pending.popleft()
                yield head.raw, head.result
                del head
                continue
            if head is not None and head.helper is None:  # the first, or a given-up helper's
                head.result, head.done = clean(head.raw), True
                continue
            if given < len(bounds) and len(pending) < ahead:
                # the next result is not back: clean the next slice here (at most ``ahead``
                # slices held, so a slow helper cannot make this process hold every result)
                raw = next_raw()
                pending.append(_Slice(raw, None, True, clean(raw)))
                del raw
                continue
            assert head is not None and head.helper is not None  # nothing else to do: wait
            ok, value = head.helper.result(time.monotonic() + HELPER_TIMEOUT)
            if ok:
                head.result, head.done = value, True
            else:
                give_up(head.helper, value)
    finally:
        try:
            if reader is not None:
                reader.close()
        finally:
            for helper in pool:
                helper.close()


def _serve(down: int, up: int, warm: str = "cleaning.pipeline") -> None:
    """The helper's loop: answer ``(func, payload)`` requests until ``None`` or end of input."""
    import importlib
    import traceback

    recv_conn, send_conn = Connection(down, writable=False), Connection(up, readable=False)
    importlib.import_module(warm)  # while the parent reads its first slices

    while True:
        try:
            message = recv_conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:
            return
        func, payload = message
        try:
            reply: tuple[str, Any] = ("ok", func(payload))
        except Exception:  # sent to the parent, which raises it
            reply = ("error", traceback.format_exc())
        del payload
        send_conn.send(reply)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:4])
