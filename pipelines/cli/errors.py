"""The CLI's one error path: typed errors, their exit codes, and the one-line message of each.

A command raises a :class:`CliError` subclass (or lets a known library error through);
``pipelines.cli.main`` turns it into one line on stderr and the class's exit code. The full
traceback is printed only with ``--debug`` (or ``$CUSTOMER_ARCHIVE_DEBUG=1``). The codes are
documented in docs/cli.md ("Exit codes"):

====  ==========================================================================
code  meaning
====  ==========================================================================
0     success
1     the pipeline run failed (a stage raised; nothing was published)
2     usage or configuration error: fix the command line or the YAML
3     publishing was blocked by a critical expectation (golden layer unchanged)
4     data or query error: bad SQL, unknown table/id/snapshot, nothing published yet
5     busy: another run or writer holds the warehouse; try again when it finished
6     security: a key is missing or wrong, or secure encryption is not available
70    internal error (a bug): rerun with --debug and report the traceback
130   interrupted (Ctrl-C)
141   the reader of stdout went away (``… | head``): output stopped, nothing wrong
====  ==========================================================================
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TextIO

__all__ = [
    "EXIT_BLOCKED",
    "EXIT_BROKEN_PIPE",
    "EXIT_BUSY",
    "EXIT_DATA",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RUN_FAILED",
    "EXIT_SECURITY",
    "EXIT_USAGE",
    "BusyError",
    "CliError",
    "DataError",
    "SecurityError",
    "UsageError",
    "classify",
    "debug_requested",
    "report",
]

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3
EXIT_DATA = 4
EXIT_BUSY = 5
EXIT_SECURITY = 6
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

DEBUG_ENV = "CUSTOMER_ARCHIVE_DEBUG"


class CliError(Exception):
    """An error a user can fix: its message is one line naming what to fix."""

    exit_code = EXIT_RUN_FAILED
    label = "error"


class UsageError(CliError):
    """A wrong argument, option value or configuration file."""

    exit_code = EXIT_USAGE
    label = "usage error"


class DataError(CliError):
    """A query or a lookup the warehouse cannot answer (bad SQL, unknown id, nothing published)."""

    exit_code = EXIT_DATA
    label = "data error"


class BusyError(CliError):
    """Another run or writer holds the warehouse."""

    exit_code = EXIT_BUSY
    label = "busy"


class SecurityError(CliError):
    """A key is missing or wrong, or encryption cannot be done securely."""

    exit_code = EXIT_SECURITY
    label = "security error"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _joined(text: str) -> str:
    """Every non-empty line of ``text`` on one line (a config error may list several keys)."""
    return "; ".join(" ".join(line.split()) for line in str(text).splitlines() if line.strip())


def _duckdb_error(exc: BaseException) -> tuple[int, str, str] | None:
    """DuckDB's errors without importing DuckDB (it is loaded only if a command used it)."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is None or not isinstance(exc, duckdb.Error):
        return None
    text = _first_line(str(exc))
    if isinstance(exc, duckdb.IOException) and "lock" in text.lower():
        return (
            EXIT_BUSY,
            "busy",
            f"{text} — another process has the warehouse open for writing; try again later",
        )
    if isinstance(exc, duckdb.IOException):
        return EXIT_DATA, "data error", text
    # CatalogException, ParserException, BinderException, ConversionException, …: the query.
    return EXIT_DATA, "query error", text


def _known_library_error(exc: BaseException) -> tuple[int, str, str] | None:
    """Errors of the project's own layers that are a user's to fix, by class name and module.

    Matched by name so this module imports nothing heavy (the CLI must start fast).
    """
    names = {klass.__name__ for klass in type(exc).__mro__}
    text = _first_line(str(exc))
    if "ConfigError" in names:
        return EXIT_USAGE, "configuration error", _joined(str(exc))
    if "TruthFileError" in names:
        return EXIT_USAGE, "truth file error", text
    if "RunLockedError" in names:
        return EXIT_BUSY, "busy", text
    if names & {"DecryptionError", "EncryptionUnavailableError", "KeyMaterialError"}:
        return EXIT_SECURITY, "security error", text
    if "ArchiveError" in names:  # a damaged or unknown snapshot: nothing was changed
        return EXIT_DATA, "archive error", text
    return None


def classify(exc: BaseException) -> tuple[int, str, str]:
    """The exit code, label and one-line message for an exception raised by a command.

    Args:
        exc: what the command raised.

    Returns:
        ``(exit_code, label, message)``.
    """
    if isinstance(exc, CliError):
        return exc.exit_code, exc.label, _joined(str(exc))
    known = _known_library_error(exc) or _duckdb_error(exc)
    if known is not None:
        return known
    if isinstance(exc, FileNotFoundError):
        name = exc.filename or _first_line(str(exc))
        return EXIT_USAGE, "file not found", str(name)
    if isinstance(exc, PermissionError):
        return EXIT_USAGE, "permission denied", str(exc.filename or _first_line(str(exc)))
    if isinstance(exc, OSError):
        return EXIT_DATA, "I/O error", _first_line(str(exc)) or type(exc).__name__
    message = _first_line(str(exc))
    where = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return EXIT_INTERNAL, "internal error", f"{where} (rerun with --debug and report the traceback)"


def debug_requested(flag: bool = False) -> bool:
    """``--debug`` given, or ``$CUSTOMER_ARCHIVE_DEBUG`` set to 1/true/yes."""
    return flag or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes"}


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
        pass


def report(command: Callable[[], int], debug: bool = False, stderr: TextIO | None = None) -> int:
    """Run ``command`` and turn whatever it raises into one line on stderr and an exit code.

    Args:
        command: the sub-command, bound to its arguments.
        debug: re-raise (full traceback) instead of printing one line.
        stderr: where the line goes (default ``sys.stderr``).

    Returns:
        The command's exit code, or the exit code of its error class.
    """
    err = stderr or sys.stderr
    try:
        code = int(command())
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # argparse / legacy `raise SystemExit("message")`
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        if debug_requested(debug):
            raise
        print(f"error: {_first_line(str(exc.code))}", file=err)
        return EXIT_DATA
    except Exception as exc:
        if debug_requested(debug):
            raise
        code, label, message = classify(exc)
        print(f"{label}: {message}", file=err)
        return code
