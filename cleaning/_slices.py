"""Clean the slices of a full clean side by side: some slices in helper processes, in order.

A full clean reads the current records a slice at a time (``warehouse.clean_full``) and
cleans each slice with the whole set's inputs, so a slice's result does not depend on which
process cleans it. With ``helpers`` > 0, :func:`clean_slices` hands every slice but one of
each group of ``helpers + 1`` to a helper process and cleans the other itself meanwhile; the
results come back in slice order, so the caller writes exactly what one process would write.

A helper is a plain child interpreter (``python -m cleaning._slices``) that reads
``(function, frame)`` requests from a pipe and answers with the result. No
``multiprocessing`` pool, queue, lock or semaphore is shared with it and the parent's
``__main__`` is never imported again (the process pool of ``cleaning._parallel`` once hung
inside a spawned worker, never diagnosed; nothing here can wait on such a lock). Every wait
on a helper is bounded: a helper that dies, or does not answer within ``HELPER_TIMEOUT``
seconds after this process finished its own slice, is killed and its slice cleaned here
(a warning is logged; the result is the same). An error raised by the cleaning itself in a
helper is raised here, with the helper's traceback.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

log = logging.getLogger("customer_archive")

R = TypeVar("R")

HELPER_TIMEOUT = 600.0
"""Seconds a helper may take beyond this process's own slice before it is given up."""
_POLL = 0.5


class HelperError(RuntimeError):
    """The cleaning function raised in a helper process (the message holds its traceback)."""


class _Helper:
    """One child interpreter serving cleaning requests over two pipes."""

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
        self._sender: threading.Thread | None = None
        self._send_error: BaseException | None = None

    def submit(self, func: Callable[[Any], Any], payload: Any) -> None:
        """Send a request without waiting for the child to read it (it may still be starting)."""

        def send() -> None:
            try:
                self.send_conn.send((func, payload))
            except BaseException as exc:  # reported by result(), never lost
                self._send_error = exc

        self._sender = threading.Thread(target=send, name="clean-slice-send", daemon=True)
        self._sender.start()

    def result(self, deadline: float) -> tuple[bool, Any]:
        """(True, result) or (False, why) when the helper died, failed to send or timed out.

        ``deadline`` is the monotonic time after which the helper is given up.
        """
        while True:
            if self.recv_conn.poll(_POLL):
                try:
                    status, value = self.recv_conn.recv()
                except (EOFError, OSError) as exc:
                    return False, f"helper pipe closed ({exc!r})"
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
        try:
            if self._sender is not None:
                self._sender.join(timeout=1.0)
            if self.proc.poll() is None and (self._sender is None or not self._sender.is_alive()):
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


def clean_slices(
    read: Callable[[int, int], pd.DataFrame],
    bounds: Sequence[tuple[int, int]],
    clean: Callable[[pd.DataFrame], R],
    helpers: int = 0,
    warm: str = "cleaning.pipeline",
) -> Iterator[tuple[pd.DataFrame, R]]:
    """``(raw, clean(raw))`` for ``raw = read(start, stop)`` of every slice, in slice order.

    Args:
        read: Reads one slice (called in this process, in slice order).
        bounds: ``(start, stop)`` of each slice.
        clean: A picklable (module-level, or a ``functools.partial`` of one) pure function of a
            slice; helpers run the same function on the slices they are given.
        helpers: Helper processes (0 = every slice in this process).
        warm: A module each helper imports while the first slices are read (the one
            ``clean`` needs; the golden build's chunks use ``warehouse.golden``).

    Yields:
        Each slice with its result; the caller may write it while helpers go on cleaning.
    """
    pool = [_Helper(warm) for _ in range(min(helpers, max(len(bounds) - 1, 0)))]
    try:
        first = 0
        while first < len(bounds):
            mine = read(*bounds[first])
            given: list[tuple[_Helper, pd.DataFrame]] = []
            theirs = bounds[first + 1 : first + 1 + len(pool)]
            for helper, (start, stop) in zip(pool[: len(theirs)], theirs, strict=True):
                raw = read(start, stop)
                helper.submit(clean, raw)
                given.append((helper, raw))
            first += 1 + len(given)
            result = clean(mine)
            deadline = time.monotonic() + HELPER_TIMEOUT
            yield mine, result
            del mine, result
            for helper, raw in given:
                ok, value = helper.result(deadline)
                if not ok:  # from here on this slice and the helper's share are cleaned here
                    log.warning("clean: %s; cleaning its slice in this process", value)
                    pool.remove(helper)
                    helper.close()
                    value = clean(raw)
                yield raw, value
            del given
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
