"""Every query the README shows answers with rows on a freshly built demo archive."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.runner import run_pipeline

from .conftest import REPO, write_project

README = REPO / "README.md"


def readme_queries() -> list[tuple[str, str]]:
    """``(role, query)`` of every `$CA sql "…"` line and every statement of the SQL blocks."""
    text = README.read_text(encoding="utf-8")
    queries: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = re.match(r'^(?:\w+=\$\()?\$CA sql (--role (\w+) )?(?:--format \w+ )?"([^"]+)"', line)
        if m:
            queries.append((m[2] or "admin", m[3]))
    for block in re.findall(r"```sql\n(.*?)```", text, flags=re.S):
        body = "\n".join(x for x in block.splitlines() if not x.lstrip().startswith("--"))
        queries += [("admin", q.strip()) for q in body.split(";") if q.strip()]
    return queries


def test_the_readme_shows_queries() -> None:
    queries = readme_queries()
    assert len(queries) >= 8
    assert any("customer_as_of" in q for _, q in queries)
    assert any(role == "analyst" for role, _ in queries)


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Path:
    """The demo exports run once through the pipeline: a fresh archive (first run only)."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(demo_dir / "landing", root / "landing")
    cfg = write_project(root, root / "landing")
    assert run_pipeline(cfg).success
    return cfg


@pytest.mark.parametrize("role_query", readme_queries(), ids=lambda rq: rq[1][:60])
def test_readme_query_returns_rows_on_a_fresh_archive(
    demo_archive: Path, role_query: tuple[str, str], capsys
) -> None:
    role, query = role_query
    code = main(["sql", "--config", str(demo_archive), "--role", role, "--format", "json", query])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert len(json.loads(captured.out)) >= 1, f"no rows: {query}"
