"""GX is imported with ``scipy.stats`` deferred: the suites and Data Docs never execute it,
and it loads in full on first use (``expectations._gx_import``).

Each case runs in a fresh interpreter: this test process may hold GX and SciPy already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> dict:
    found, _ = _run_with_stderr(code)
    return found


def _run_with_stderr(code: str) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_suites_and_data_docs_never_execute_scipy_stats(tmp_path: Path) -> None:
    found = _run(
        f"""
        import json, sys
        import pandas as pd
        from expectations._gx_runner import GxCheck, build_docs_site, run_checks
        from expectations._gx_import import import_gx

        gxe = import_gx("great_expectations.expectations")
        frame = pd.DataFrame({{"k": ["a", "b", "c"], "v": ["x", "y", "z"]}})
        checks = [GxCheck("v_in_set", [gxe.ExpectColumnValuesToBeInSet(column="v",
                                                                      value_set=["x", "y"])],
                          key_column="k")]
        out = run_checks("t.frame", frame, checks, all_failing=True)
        build_docs_site({str(tmp_path / "docs")!r})
        lazy = "scipy.stats._stats_py" not in sys.modules
        kind = type(sys.modules["scipy.stats"]).__name__
        import scipy.stats
        cdf = float(scipy.stats.norm.cdf(0.0))
        print(json.dumps({{"success": out["v_in_set"][0],
                           "failing": out["v_in_set"][1]["failing_keys"],
                           "lazy": lazy, "kind": kind, "cdf": cdf,
                           "executed": "scipy.stats._stats_py" in sys.modules}}))
        """
    )
    # the validation's result is GX's, unchanged
    assert found["success"] is False
    assert found["failing"] == ["c"]
    # neither the GX import, the validation nor Data Docs ran SciPy's statistics …
    assert found["lazy"] is True
    assert found["kind"] == "_LazyModule"
    # … which load in full on their first use
    assert found["cdf"] == 0.5
    assert found["executed"] is True


def test_nothing_deferred_when_already_imported_or_missing() -> None:
    found = _run(
        """
        import json, sys
        import scipy.stats
        from expectations._gx_import import defer_module, import_gx

        gx = import_gx()
        print(json.dumps({"kind": type(sys.modules["scipy.stats"]).__name__,
                          "same": sys.modules["scipy.stats"] is scipy.stats,
                          "again": defer_module("scipy.stats"),
                          "missing": defer_module("scipy.no_such_module_here"),
                          "gx": gx.__name__}))
        """
    )
    assert found == {
        "kind": "module",
        "same": True,
        "again": False,
        "missing": False,
        "gx": "great_expectations",
    }
