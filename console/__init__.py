"""Steward console (数据管理台): review queue, customer pages and search as a small web app.

No Dagster and no warehouse writes here: ``console.data`` reads the steward's copy of the
warehouse into typed rows (``console.rows``), ``console.app`` renders them with Starlette and
Jinja2, and decisions go through the callable the caller hands in (``pipelines/cli/console.py``
passes the audited ``review decide`` path).
"""

from console.app import Backend, DecisionRejected, WarehouseUnavailable, create_app
from console.data import QueueFilters, StewardData
from console.search import SearchQuery, name_keys, parse_query

__all__ = [
    "Backend",
    "DecisionRejected",
    "QueueFilters",
    "SearchQuery",
    "StewardData",
    "WarehouseUnavailable",
    "create_app",
    "name_keys",
    "parse_query",
]
