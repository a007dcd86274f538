"""The steward console web application (Starlette + Jinja2, server-rendered pages).

:func:`create_app` takes a :class:`Backend`: how to load the steward's database, how to tell
that the warehouse changed (a pipeline run), and how to record decisions (the audited path of
``pipelines/cli/stewardship.py``). The app itself never opens the warehouse.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import duckdb
import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from .data import QueueFilters, StewardData

__all__ = ["Backend", "DecisionRejected", "WarehouseUnavailable", "create_app"]

Triple = tuple[str, str, str]


log = logging.getLogger("customer_archive.console")


class WarehouseUnavailable(Exception):
    """The steward's tables cannot be read (nothing published, or a run holds the file)."""


class DecisionRejected(Exception):
    """A decision could not be recorded (unknown key, a run holds the lock …): shown to the user."""


@dataclass
class Backend:
    """What the console needs from the outside world.

    Attributes:
        load: returns the steward's database (a fresh in-memory copy of their tables).
        version: a value that changes when the warehouse changes (e.g. its file's mtime).
        decide: records ``(left_key, right_key, decision)`` triples with a note and the
            steward's name, audited, and returns ``match.decisions`` afterwards; raises
            :class:`DecisionRejected`.
        steward: who decides when no ``user_header`` names them.
        user_header: a request header set by the company's login proxy (e.g.
            ``X-Remote-User``) naming the signed-in steward; None to always use ``steward``.
    """

    load: Callable[[], duckdb.DuckDBPyConnection]
    version: Callable[[], object]
    decide: Callable[[list[Triple], str, str], pd.DataFrame]
    steward: str
    user_header: str | None = None

    def who(self, headers: Any) -> str:
        """The steward of a request: the proxy's user header when configured, else ``steward``."""
        if self.user_header:
            return str(headers.get(self.user_header, "")).strip() or self.steward
        return self.steward


class _State:
    """The loaded steward data, reloaded when the warehouse changed under it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._data: StewardData | None = None
        self._version: object = None
        self.stale = ""  # why the pages show an older copy ("" when current)

    def data(self) -> StewardData:
        """The steward data, re-read when the warehouse changed (the last copy while it is busy).

        Raises:
            WarehouseUnavailable: nothing could be read yet.
        """
        version = self.backend.version()
        with self._lock:
            if self._data is None or version != self._version:
                try:
                    self._data = StewardData(self.backend.load())
                except (duckdb.Error, OSError, RuntimeError) as exc:
                    if self._data is None:
                        raise WarehouseUnavailable(str(exc)) from exc
                    log.warning("warehouse changed but could not be re-read: %s", exc)
                    self.stale = f"showing the copy read before the warehouse changed ({exc})"
                    return self._data
                self._version = version
                self.stale = ""
            return self._data

    def decide(self, triples: list[Triple], note: str, steward: str) -> None:
        data = self.data()
        table = self.backend.decide(triples, note, steward)
        with self._lock:
            data.set_decisions(table)
            self._version = self.backend.version()  # our own write is not a pipeline run


_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
_TEMPLATES.env.filters["pct"] = lambda p: f"{100 * float(p):.1f} %"
_TEMPLATES.env.filters["signed"] = lambda w: f"{float(w):+.2f}"


def _render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    state: _State = request.app.state.console
    context.setdefault("message", request.query_params.get("msg", ""))
    context.setdefault("error", request.query_params.get("err", ""))
    context["steward"] = state.backend.who(request.headers)
    context["stale"] = state.stale
    return _TEMPLATES.TemplateResponse(request, name, context, status_code=status)


def _back(path: str, **params: Any) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


def _cross_site(request: Request) -> Response | None:
    """A 403 for a form posted from another site (a forged decision), None when same-origin.

    Browsers send ``Origin`` (or at least ``Referer``) with a form post; one naming another host
    than the request's own is refused. Requests without either (scripts, tests) pass.
    """
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return None
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc == host:
        return None
    what = f"a form posted from {origin} to {host} was refused (cross-site request)"
    return _render(request, "missing.html", status=403, what=what)


def _filters(source: Any) -> QueueFilters:
    return QueueFilters(
        str(source.get("band", "")), str(source.get("source", "")), str(source.get("reason", ""))
    )


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _missing(request: Request, customer_id: str) -> Response:
    what = f"customer {customer_id} is not in the published archive."
    return _render(request, "missing.html", status=404, what=what)


async def home(request: Request) -> Response:
    return RedirectResponse("/queue", status_code=303)


def queue(request: Request) -> Response:
    data = request.app.state.console.data()
    filters = _filters(request.query_params)
    view = data.queue(filters, _int(request.query_params.get("pos")))
    return _render(request, "queue.html", view=view, filters=filters, active="queue")


async def decide(request: Request) -> Response:
    if refused := _cross_site(request):
        return refused
    form = await request.form()
    filters = _filters(form)
    pos = _int(form.get("pos"))
    left, right = str(form.get("left_key", "")), str(form.get("right_key", ""))
    decision = str(form.get("decision", ""))
    if decision == "skip":
        return _back("/queue", **filters.as_query(), pos=pos + 1)
    try:
        await run_in_threadpool(
            request.app.state.console.decide,
            [(left, right, decision)],
            str(form.get("note", "")),
            request.app.state.console.backend.who(request.headers),
        )
    except DecisionRejected as exc:
        return _back("/queue", **filters.as_query(), pos=pos, err=str(exc))
    msg = f"{decision}: {left} ~ {right} (takes effect on the next run)"
    return _back("/queue", **filters.as_query(), pos=pos, msg=msg)


def customer(request: Request) -> Response:
    data = request.app.state.console.data()
    cid = request.path_params["customer_id"]
    view = data.customer(cid)
    if view is None:
        return _missing(request, cid)
    return _render(request, "customer.html", view=view, active="search")


async def split(request: Request) -> Response:
    """Records the checked records are not the same customer as the others (cannot-link)."""
    if refused := _cross_site(request):
        return refused
    state: _State = request.app.state.console
    cid = request.path_params["customer_id"]
    form = await request.form()
    view = await run_in_threadpool(lambda: state.data().customer(cid))
    if view is None:
        return _missing(request, cid)
    chosen = {str(k) for k in form.getlist("record")}
    keys = [m.record_key for m in view.records]
    part = [k for k in keys if k in chosen]
    rest = [k for k in keys if k not in chosen]
    if not part or not rest:
        return _back(f"/customer/{cid}", err="tick some, but not all, of the records to split off")
    triples = [(a, b, "no-match") for a in part for b in rest]
    try:
        note = str(form.get("note", "")) or f"split of {view.customer_id}"
        await run_in_threadpool(state.decide, triples, note, state.backend.who(request.headers))
    except DecisionRejected as exc:
        return _back(f"/customer/{cid}", err=str(exc))
    msg = f"recorded {len(triples)} no-match decisions splitting {len(part)} record(s) off"
    return _back(f"/customer/{cid}", msg=msg + "; the next run applies them")


async def merge(request: Request) -> Response:
    """Records that this customer and another one (an id or a record key) are the same."""
    if refused := _cross_site(request):
        return refused
    state: _State = request.app.state.console
    cid = request.path_params["customer_id"]
    form = await request.form()
    other = str(form.get("other", "")).strip()
    data = state.data()
    view = data.customer(cid)
    if view is None or not view.records:
        return _missing(request, cid)
    if ":" in other:
        target_key = other if data.customer_of_record(other) else None
    else:
        target = data.customer(other) if other else None
        target_key = target.records[0].record_key if target and target.records else None
    if target_key is None:
        return _back(f"/customer/{cid}", err=f"no customer or record {other!r}")
    if target_key in {m.record_key for m in view.records}:
        return _back(f"/customer/{cid}", err=f"{other} is this customer already")
    try:
        note = str(form.get("note", "")) or f"merge of {view.customer_id} with {other}"
        await run_in_threadpool(
            state.decide,
            [(view.records[0].record_key, target_key, "match")],
            note,
            state.backend.who(request.headers),
        )
    except DecisionRejected as exc:
        return _back(f"/customer/{cid}", err=str(exc))
    return _back(f"/customer/{cid}", msg=f"recorded match with {other}; the next run merges them")


def search(request: Request) -> Response:
    data = request.app.state.console.data()
    text = request.query_params.get("q", "")
    result = data.search(text) if text.strip() else None
    return _render(request, "search.html", result=result, q=text, active="search")


def decisions(request: Request) -> Response:
    data = request.app.state.console.data()
    rows = data.decisions()
    return _render(
        request,
        "decisions.html",
        rows=rows,
        pending=sum(r.pending for r in rows),
        last_run=data.last_run_at(),
        active="decisions",
    )


async def unavailable(request: Request, exc: Exception) -> Response:
    return _render(request, "missing.html", status=503, what=f"The warehouse cannot be read: {exc}")


def create_app(backend: Backend) -> Starlette:
    """The console application over ``backend`` (see :class:`Backend`)."""
    app = Starlette(
        exception_handlers={WarehouseUnavailable: unavailable},
        routes=[
            Route("/", home),
            Route("/queue", queue),
            Route("/decide", decide, methods=["POST"]),
            Route("/customer/{customer_id}", customer),
            Route("/customer/{customer_id}/split", split, methods=["POST"]),
            Route("/customer/{customer_id}/merge", merge, methods=["POST"]),
            Route("/search", search),
            Route("/decisions", decisions),
        ],
    )
    app.state.console = _State(backend)
    return app
