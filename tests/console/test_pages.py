"""Console pages through Starlette's test client over a real published demo warehouse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import opencc
import pytest
from starlette.testclient import TestClient

from console import Backend, create_app
from pipelines.access import open_warehouse, run_lock
from pipelines.cli.console import console_backend
from pipelines.settings import load_config
from warehouse import read_table


def _client(cfg_path: Path, user_header: str | None = None) -> TestClient:
    cfg = load_config(cfg_path)
    return TestClient(create_app(console_backend(cfg, "王芳", user_header)))


def _pair(html: str) -> tuple[str, str]:
    left = re.search(r'name="left_key" value="([^"]+)"', html)
    right = re.search(r'name="right_key" value="([^"]+)"', html)
    assert left and right, "no pair on the page"
    return left.group(1), right.group(1)


def _audit(cfg_path: Path) -> list[dict]:
    cfg = load_config(cfg_path)
    path = cfg.resolve(cfg.security.audit_log)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_queue_shows_a_pair_with_evidence_and_decisions_leave_it(project: Path) -> None:
    client = _client(project, user_header="X-Remote-User")
    page = client.get("/queue")
    assert page.status_code == 200
    assert 'id="evidence"' in page.text and "name_key" in page.text
    assert "0 of " in page.text  # progress: nothing decided yet
    first = _pair(page.text)

    # clustering context: each record's customer and its other scored links
    assert re.search(r'is in\s*<a href="/customer/C', page.text)
    assert any('class="links"' in client.get(f"/queue?pos={i}").text for i in range(5))

    skipped = client.get("/queue?pos=1")
    second = _pair(skipped.text)
    assert second != first

    done = client.post(
        "/decide",
        data={"left_key": first[0], "right_key": first[1], "decision": "no-match"},
        headers={"X-Remote-User": "li.na"},
    )
    assert done.status_code == 200  # followed the 303 back to the queue
    assert "1 of " in done.text and "no-match" in done.text
    assert _pair(done.text) == second  # the decided pair left the queue

    cfg = load_config(project)
    with open_warehouse(cfg, read_only=True) as con:
        decided = read_table(con, "match.decisions")
    assert len(decided) == 1
    row = decided.iloc[0]
    assert {row["left_key"], row["right_key"]} == set(first)
    assert row["decision"] == "no-match" and row["decided_by"] == "li.na"
    entry = _audit(project)[-1]
    assert entry["action"] == "review_decision" and entry["details"]["via"] == "console"

    pending = client.get("/decisions")
    assert "1 pending" in pending.text and first[0] in pending.text


def test_queue_filters_narrow_the_pairs(project: Path) -> None:
    client = _client(project)
    page = client.get("/queue").text
    total = int(re.search(r"(\d+) open<", page).group(1))
    source = re.search(r'name="source">.*?<option value="([a-z_]+)"', page, re.S).group(1)
    band = re.findall(r'<option value="(\d\.\d-\d\.\d)"', page)[-1]  # the top band
    by_source = client.get(f"/queue?source={source}").text
    n_source = int(re.search(r"(\d+) open in this filter", by_source).group(1))
    assert 0 < n_source <= total
    left, right = _pair(by_source)
    assert source in (left.split(":")[0], right.split(":")[0])
    by_band = client.get(f"/queue?band={band}").text
    shown = re.search(r"probability ([\d.]+) %", by_band)
    if shown:
        lo, hi = (float(x) for x in band.split("-"))
        assert lo <= float(shown.group(1)) / 100 <= hi


def test_unknown_record_is_refused_and_nothing_is_written(project: Path) -> None:
    client = _client(project)
    page = client.post(
        "/decide", data={"left_key": "sales:NOPE", "right_key": "sales:NOPE2", "decision": "match"}
    )
    assert "unknown record key" in page.text
    with open_warehouse(load_config(project), read_only=True) as con:
        decided = read_table(con, "match.decisions")
    assert decided is None or decided.empty


def _multi_record_customer(project: Path) -> tuple[str, list[str]]:
    with open_warehouse(load_config(project), read_only=True) as con:
        cw = read_table(con, "golden.crosswalk")
    sizes = cw.groupby("customer_id")["record_key"].agg(sorted)
    cid = next(c for c, keys in sizes.items() if len(keys) == 3)
    return cid, sizes[cid]


def test_customer_page_shows_record_lineage_and_history(project: Path) -> None:
    client = _client(project)
    cid, keys = _multi_record_customer(project)
    page = client.get(f"/customer/{cid}")
    assert page.status_code == 200
    for section in ("golden", "contacts", "addresses", "transactions", "interactions",
                    "history", "id-events"):  # fmt: skip
        assert f'id="{section}"' in page.text, section
    for key in keys:
        assert key in page.text
    assert "created" in page.text  # the ID history's first event
    assert client.get("/customer/C19990101999").status_code == 404


def test_split_records_cannot_link_and_merge_records_a_match(project: Path) -> None:
    client = _client(project)
    cid, keys = _multi_record_customer(project)
    page = client.post(f"/customer/{cid}/split", data={"record": [keys[0]]})
    assert "recorded 2 no-match decisions" in page.text
    with open_warehouse(load_config(project), read_only=True) as con:
        decided = read_table(con, "match.decisions")
        golden = read_table(con, "golden.customers")
    pairs = {tuple(sorted(p)) for p in zip(decided["left_key"], decided["right_key"], strict=True)}
    assert pairs == {tuple(sorted((keys[0], k))) for k in keys[1:]}
    assert set(decided["decision"]) == {"no-match"}

    other = next(c for c in golden["customer_id"] if c != cid)
    merged = client.post(f"/customer/{cid}/merge", data={"other": other})
    assert f"recorded match with {other}" in merged.text
    assert "pending" in merged.text
    nothing = client.post(f"/customer/{cid}/split", data={})
    assert "tick some" in nothing.text


def test_search_by_name_pinyin_traditional_phone_email_code_and_id(project: Path) -> None:
    client = _client(project)
    with open_warehouse(load_config(project), read_only=True) as con:
        golden = read_table(con, "golden.customers")
        cw = read_table(con, "golden.crosswalk")
    firm = golden[golden["customer_name"].str.contains("公司", na=False)
                  & golden["email"].notna() & golden["credit_code"].notna()].iloc[0]  # fmt: skip
    cid, name = firm["customer_id"], firm["customer_name"]
    traditional = opencc.OpenCC("s2t").convert(name)
    from dedupe.prepare import pinyin

    phone = firm["phone"][-11:]
    spaced = f"{phone[:3]} {phone[3:7]}-{phone[7:]}"
    queries = {
        name: "name",
        traditional: "name",
        pinyin(name)[:12]: "pinyin",
        spaced: "phone",
        firm["email"].upper(): "email",
        firm["credit_code"].lower(): "credit_code",
        cid: "customer_id",
        cw[cw["customer_id"] == cid]["record_key"].iloc[0]: "record_key",
    }
    for query, kind in queries.items():
        page = client.get("/search", params={"q": query}).text
        assert f"read as {kind}" in page, query
        assert f'href="/customer/{cid}"' in page, query


@pytest.mark.parametrize("path", ["/", "/queue", "/search", "/decisions"])
def test_every_page_answers_and_names_the_steward(project: Path, path: str) -> None:
    page = _client(project).get(path)
    assert page.status_code == 200
    assert "王芳" in page.text and 'lang="zh-CN"' in page.text


def test_a_busy_warehouse_keeps_the_last_copy_and_says_so(project: Path) -> None:
    real = console_backend(load_config(project), "王芳")
    state = {"busy": False, "version": 1}

    def load() -> duckdb.DuckDBPyConnection:
        if state["busy"]:  # what DuckDB says while a run holds the file
            raise duckdb.IOException('Could not set lock on file "warehouse.duckdb"')
        return real.load()

    backend = Backend(load, lambda: state["version"], real.decide, "王芳")
    client = TestClient(create_app(backend))
    assert 'id="stale"' not in client.get("/queue").text
    state.update(busy=True, version=2)
    page = client.get("/queue")
    assert page.status_code == 200 and "Could not set lock" in page.text
    state["busy"] = False
    assert 'id="stale"' not in client.get("/queue").text

    never = Backend(lambda: (_ for _ in ()).throw(duckdb.IOException("locked")), lambda: 1,
                    real.decide, "王芳")  # fmt: skip
    assert TestClient(create_app(never)).get("/queue").status_code == 503


def test_a_decision_while_a_run_holds_the_lock_is_refused(project: Path) -> None:
    cfg = load_config(project)
    client = _client(project)
    left, right = _pair(client.get("/queue").text)
    with run_lock(cfg, run_id="nightly"):
        page = client.post(
            "/decide", data={"left_key": left, "right_key": right, "decision": "match"}
        )
    assert "a pipeline run holds the warehouse" in page.text
    assert _pair(page.text) == (left, right)  # still open
    with open_warehouse(cfg, read_only=True) as con:
        decided = read_table(con, "match.decisions")
    assert decided is None or decided.empty


def test_a_form_posted_from_another_site_is_refused(project: Path) -> None:
    client = _client(project)
    left, right = _pair(client.get("/queue").text)
    data = {"left_key": left, "right_key": right, "decision": "match"}
    forged = client.post("/decide", data=data, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "cross-site" in forged.text
    same = client.post("/decide", data=data, headers={"Origin": "http://testserver"})
    assert same.status_code == 200 and "match: " in same.text
