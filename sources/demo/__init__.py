"""Demo data generator: realistic noisy departmental customer exports with ground truth."""

from sources.demo.credit_code import uscc_check_char
from sources.demo.generator import (
    DemoData,
    DemoFiles,
    TruthFileError,
    check_truth_columns,
    generate_demo_data,
    read_truth,
    write_demo,
)

__all__ = [
    "DemoData",
    "DemoFiles",
    "TruthFileError",
    "check_truth_columns",
    "generate_demo_data",
    "read_truth",
    "uscc_check_char",
    "write_demo",
]
