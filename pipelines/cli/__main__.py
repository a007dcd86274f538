"""`python -m pipelines.cli`: the same as the `customer-archive` script."""

from .main import main

raise SystemExit(main())
