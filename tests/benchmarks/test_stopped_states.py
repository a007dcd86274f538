"""States stopped before a stage (``benchmarks/_common.run_stopped``): a run that does not stop
where it was asked to must not become a state the stage benches then measure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from benchmarks import _common

# a stand-in for bench_pipeline.py's worker: "--worker full" dies at its crash point when
# CRASH_REACHED says the point exists, fails on FAIL, else ends normally; it logs each call
_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    workdir = sys.argv[sys.argv.index("--workdir") + 1]
    phase = sys.argv[sys.argv.index("--worker") + 1]
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "calls"), "a") as log:
        log.write(phase + " " + os.environ.get("CUSTOMER_ARCHIVE_CRASH_AT", "-") + "\\n")
    if os.environ.get("FAIL") == phase:
        sys.exit("boom in " + phase)
    point = os.environ.get("CUSTOMER_ARCHIVE_CRASH_AT")
    if point and point in os.environ.get("CRASH_REACHED", ""):
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    code = tmp_path / "code"
    (code / "benchmarks").mkdir(parents=True)
    (code / "benchmarks" / "bench_pipeline.py").write_text(_SCRIPT, encoding="utf-8")
    out = tmp_path / "out"
    (out / "data" / "bench" / "100").mkdir(parents=True)
    (out / "data" / "bench" / "100" / "meta.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(_common, "OUT_ROOT", out)
    monkeypatch.setenv("CRASH_REACHED", "publish:before")
    return code


def test_a_full_run_then_a_nightly_stopped_at_its_point(fake: Path, tmp_path: Path) -> None:
    steps = [("full", None), ("incremental", "publish:before")]
    state = _common.run_stopped(100, tmp_path / "s", steps, code=fake)
    calls = (state / "calls").read_text(encoding="utf-8").split("\n")[:-1]
    assert calls == ["full -", "incremental publish:before"]


def test_a_run_that_never_reaches_its_crash_point_is_an_error(fake: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"until golden:before \(exit 0\)"):
        _common.run_stopped(100, tmp_path / "s", [("full", "golden:before")], code=fake)


def test_a_failing_run_is_an_error_with_its_stderr(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL", "full")
    with pytest.raises(RuntimeError, match="boom in full"):
        _common.run_stopped(100, tmp_path / "s", [("full", None)], code=fake)
    # a run meant to be stopped that fails on its way is no state either
    with pytest.raises(RuntimeError, match=r"until publish:before \(exit 1\)"):
        _common.run_stopped(100, tmp_path / "t", [("full", "publish:before")], code=fake)
