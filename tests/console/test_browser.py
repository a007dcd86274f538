"""A steward works through the review queue in headless Chromium; the next run honours it all.

Needs Debian's ``chromium`` and ``fonts-noto-cjk`` (``make browser-deps``) and the Playwright
package, which drives the system browser (no browser download).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import opencc
import pytest

from expectations.screenshot import find_chromium
from pipelines.access import open_warehouse
from pipelines.cli.stewardship import audited_pair
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from warehouse import read_table

playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")


def _cjk_font() -> bool:
    if shutil.which("fc-list") is None:
        return False
    found = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="needs Debian chromium (make browser-deps: apt install chromium)"
    ),
    pytest.mark.skipif(
        CHROMIUM is not None and not _cjk_font(),
        reason="needs a CJK font for the pages (make browser-deps: apt install fonts-noto-cjk)",
    ),
]
# screenshots go to the test's tmp folder; set this to also copy them (docs/img for the docs)
SHOTS_ENV = "CONSOLE_SCREENSHOTS_DIR"
DECISIONS = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The console over a private copy of the demo project, on a loopback port."""
    import uvicorn

    from console import create_app
    from pipelines.cli.console import console_backend

    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(published / "project", root / "project")
    cfg_path = root / "project" / "archive.yml"
    app = create_app(console_backend(load_config(cfg_path), "王芳"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    yield cfg_path, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(served: tuple[Path, str]) -> Iterator[object]:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        yield tab
        browser.close()
        assert errors == [], errors


def _shot(tab: object, tmp_path: Path, name: str) -> Path:
    out = tmp_path / f"console-{name}.png"
    tab.screenshot(path=str(out), full_page=True)  # type: ignore[attr-defined]
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000, name
    if os.environ.get(SHOTS_ENV):
        target = Path(os.environ[SHOTS_ENV])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, target / out.name)
    return out


def _pair(tab: object) -> tuple[str, str]:
    left = tab.input_value('input[name="left_key"]')  # type: ignore[attr-defined]
    right = tab.input_value('input[name="right_key"]')  # type: ignore[attr-defined]
    return left, right


def _decided(tab: object) -> int:
    text = tab.inner_text("#progress")  # type: ignore[attr-defined]
    return int(re.search(r"(\d+) of \d+ decided", text).group(1))


def test_steward_resolves_twenty_pairs_and_the_next_run_honours_them(
    served: tuple[Path, str], page: object, truth: dict[str, str], tmp_path: Path
) -> None:
    cfg_path, base = served
    tab = page
    tab.goto(f"{base}/queue")  # type: ignore[attr-defined]
    open_pairs = int(re.search(r"(\d+) open", tab.inner_text("#progress")).group(1))
    assert open_pairs >= DECISIONS
    _shot(tab, tmp_path, "queue")

    first = _pair(tab)
    with tab.expect_navigation():  # type: ignore[attr-defined]
        tab.keyboard.press("s")  # type: ignore[attr-defined]
    assert _pair(tab) != first and _decided(tab) == 0  # skipped, not decided
    tab.goto(f"{base}/queue")  # type: ignore[attr-defined]

    decided: dict[tuple[str, str], str] = {}
    for i in range(DECISIONS):
        left, right = _pair(tab)
        same = truth[left] == truth[right]
        with tab.expect_navigation():  # type: ignore[attr-defined]
            tab.keyboard.press("m" if same else "n")  # type: ignore[attr-defined]
        decided[(left, right)] = "match" if same else "no-match"
        assert f"{left} ~ {right}" in tab.inner_text("#message")  # type: ignore[attr-defined]
        assert _decided(tab) == i + 1
        if i < DECISIONS - 1:
            assert _pair(tab) not in decided  # the decided pair left the queue
    assert {"match", "no-match"} <= set(decided.values())

    tab.goto(f"{base}/decisions")  # type: ignore[attr-defined]
    assert f"{DECISIONS} pending" in tab.inner_text("#pending-count")  # type: ignore[attr-defined]

    outcome = run_pipeline(cfg_path, run_date="2026-11-25")
    assert outcome.success, outcome.errors

    # the console notices the new run: nothing pending, every decision applied
    tab.goto(f"{base}/decisions")  # type: ignore[attr-defined]
    assert "0 pending" in tab.inner_text("#pending-count")  # type: ignore[attr-defined]
    statuses = tab.locator("#decisions tr td:last-child").all_inner_texts()  # type: ignore
    assert statuses == ["applied"] * DECISIONS

    cfg = load_config(cfg_path)
    with open_warehouse(cfg, read_only=True) as con:
        owner = read_table(con, "golden.crosswalk").set_index("record_key")["customer_id"]
        queue = read_table(con, "match.review_queue")
        golden = read_table(con, "golden.customers")
    for (left, right), decision in decided.items():
        assert (owner[left] == owner[right]) is (decision == "match"), (left, right, decision)
    still = set(zip(queue["left_key"], queue["right_key"], strict=True))
    assert not still & set(decided)
    log = cfg.resolve(cfg.security.audit_log).read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in log]
    audited = {
        e["target"]
        for e in entries
        if e["action"] == "review_decision" and e["details"].get("via") == "console"
    }
    # the log names each pair by keyed pseudonyms, never the record keys themselves
    assert audited == {audited_pair(cfg, left, right) for left, right in decided}
    assert not any(left in line or right in line for left, right in decided for line in log)

    # the customer page of a decided match shows both records, and the Chinese renders
    left, right = next(p for p, d in decided.items() if d == "match")
    tab.goto(f"{base}/customer/{owner[left]}")  # type: ignore[attr-defined]
    records = tab.inner_text("table.records")  # type: ignore[attr-defined]
    assert left in records and right in records
    _shot(tab, tmp_path, "customer")

    # search by a name typed in traditional characters: the simplified customer comes up
    s2t = opencc.OpenCC("s2t")
    names = golden["customer_name"].dropna()
    wanted = next(n for n in sorted(names) if s2t.convert(n[:4]) != n[:4])
    typed = s2t.convert(wanted[:4])
    tab.fill('header input[name="q"]', typed)  # type: ignore[attr-defined]
    with tab.expect_navigation():  # type: ignore[attr-defined]
        tab.press('header input[name="q"]', "Enter")  # type: ignore[attr-defined]
    hits = tab.inner_text("#hits")  # type: ignore[attr-defined]
    assert wanted in hits and typed not in hits
    for cid in golden.loc[golden["customer_name"] == wanted, "customer_id"]:
        assert tab.locator(f'#hits a[href="/customer/{cid}"]').count() == 1  # type: ignore
    _shot(tab, tmp_path, "search")
