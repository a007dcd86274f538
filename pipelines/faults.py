"""Named crash points for fault-injection tests: ``CUSTOMER_ARCHIVE_CRASH_AT=<stage>:<point>``.

Production runs never set the variable; the fault-injection suite sets it in a child process to
SIGKILL the pipeline at an exact stage boundary and proves nothing published is corrupted.
"""

from __future__ import annotations

import os
import signal

ENV = "CUSTOMER_ARCHIVE_CRASH_AT"


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when ``$CUSTOMER_ARCHIVE_CRASH_AT`` names this point."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
