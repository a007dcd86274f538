"""The `customer-archive` command line: demo data, runs, SQL and the operator commands."""

from .main import HANDLERS, build_parser, main

__all__ = ["HANDLERS", "build_parser", "main"]
