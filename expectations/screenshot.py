"""Render a report in headless Chromium: screenshot, rendered DOM and console messages."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\]\s*(.*)$")
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class BrowserRender:
    """What headless Chromium made of a page.

    Attributes:
        screenshot: PNG written.
        dom: Serialised DOM after rendering (``--dump-dom``).
        console: Console messages the page produced (errors, warnings, logs).
    """

    screenshot: Path
    dom: str
    console: list[str]


def find_chromium() -> str | None:
    """Return the path of a Chromium/Chrome executable on PATH, or None."""
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def render_in_chromium(
    html_path: Path,
    png_path: Path,
    *,
    chromium: str | None = None,
    window: tuple[int, int] = (1200, 3000),
    timeout: float = 90.0,
) -> BrowserRender:
    """Open ``html_path`` in headless Chromium, save a screenshot and collect console output.

    Args:
        html_path: The report file.
        png_path: Where to write the PNG (parent folders are created).
        chromium: Browser executable; found on PATH when None.
        window: Viewport ``(width, height)`` in px.
        timeout: Seconds allowed per browser call.

    Returns:
        The screenshot path, rendered DOM and console messages.

    Raises:
        FileNotFoundError: No browser, or ``html_path`` does not exist.
        RuntimeError: The browser failed or wrote no screenshot.
    """
    browser = chromium or find_chromium()
    if browser is None:
        raise FileNotFoundError("no chromium executable on PATH (Debian: apt install chromium)")
    page = Path(html_path).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"report not found: {page}")
    png = Path(png_path).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        base = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            f"--window-size={window[0]},{window[1]}",
        ]  # fmt: skip
        shot = _run([*base, f"--screenshot={png}", page.as_uri()], timeout)
        dom = _run([*base, "--dump-dom", page.as_uri()], timeout)
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot to {png}: {shot.stderr[-2000:]}")
    console = [
        m.group(1)
        for line in (shot.stderr + dom.stderr).splitlines()
        if (m := _CONSOLE.search(line))
    ]
    return BrowserRender(screenshot=png, dom=dom.stdout, console=list(dict.fromkeys(console)))


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited with {result.returncode}: {result.stderr[-2000:]}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m expectations.screenshot REPORT.html [OUT.png]``.

    Args:
        argv: Arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 when the page rendered without console messages, 1 otherwise.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Screenshot a quality report in Chromium.")
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path, nargs="?")
    args = parser.parse_args(argv)
    png = args.png or args.report.with_name(args.report.stem + ".png")
    render = render_in_chromium(args.report, png)
    print(f"screenshot: {render.screenshot}")
    for message in render.console:
        print(f"console: {message}")
    return 1 if render.console else 0


if __name__ == "__main__":
    raise SystemExit(main())
