"""The archive job and its executor: in-process, or one process per step."""

from __future__ import annotations

import dagster as dg

from .settings import ScaleSettings

JOB_NAME = "customer_archive_job"
WAREHOUSE_TAG_KEY = "customer_archive/warehouse"
# Op tag of every step that opens the DuckDB warehouse: the multiprocess executor runs at most
# one of them at a time (DuckDB has a single writer per file); shard steps carry no such tag.
WAREHOUSE_TAGS = {WAREHOUSE_TAG_KEY: "write"}
# Modules the forkserver imports once, so each step process forks warm instead of re-importing
# pandas, DuckDB and Great Expectations (about 10 s per process otherwise).
PRELOAD_MODULES = ["pipelines.stages"]

__all__ = [
    "JOB_NAME",
    "PRELOAD_MODULES",
    "WAREHOUSE_TAGS",
    "WAREHOUSE_TAG_KEY",
    "build_executor",
    "build_job",
]


def build_executor(scale: ScaleSettings) -> dg.ExecutorDefinition:
    """The job's executor: in-process, or one process per step with warehouse steps serialized.

    Args:
        scale: the ``scale`` section of the project configuration.

    Returns:
        ``dg.in_process_executor``, or ``dg.multiprocess_executor`` configured with
        ``max_concurrent`` processes, a forkserver with the project preloaded, and a limit of
        one concurrent step tagged as a warehouse writer.
    """
    if scale.executor == "in_process":
        return dg.in_process_executor
    return dg.multiprocess_executor.configured(
        {
            "max_concurrent": scale.max_concurrent,
            "tag_concurrency_limits": [{"key": WAREHOUSE_TAG_KEY, "value": "write", "limit": 1}],
            "start_method": {"forkserver": {"preload_modules": PRELOAD_MODULES}},
        },
        name="archive_multiprocess",
    )


def build_job(scale: ScaleSettings | None = None) -> dg.UnresolvedAssetJobDefinition:
    """The job that materializes the whole archive graph (run retries for transient failures).

    Args:
        scale: picks the executor (`build_executor`); None = in-process.
    """
    return dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.all(),
        tags={"dagster/max_retries": "2", WAREHOUSE_TAG_KEY: "write"},
        description="Ingest new deliveries, clean, match, build and check the golden layer, "
        "publish.",
        executor_def=build_executor(scale or ScaleSettings()),
    )
