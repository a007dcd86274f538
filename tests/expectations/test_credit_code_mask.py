"""The vectorized credit-code mask gives the verdict of ``credit_code_is_valid`` on every value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from expectations.reference import credit_code_is_valid, valid_credit_code_mask

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def _with_check_digit(body: str) -> str:
    total = sum(ALPHABET.index(c) * w for c, w in zip(body, WEIGHTS, strict=True))
    return body + ALPHABET[(31 - total % 31) % 31]


CASES = [
    ("91350100M000100Y43", True),  # the GB 32100 example
    ("91350100M000100Y44", False),  # wrong check digit
    ("91350100m000100Y43", False),  # lowercase is not in the alphabet
    ("91350100M000100Y4", False),  # 17 characters
    ("91350100M000100Y433", False),  # 19 characters
    ("91350100M00O100Y43", False),  # O is not in the alphabet
    ("９1350100M000100Y43", False),  # full-width digit
    ("", False),
    (None, False),
    ("9135010０M000100Y43", False),  # full-width zero inside
]


@pytest.mark.parametrize(("code", "expected"), CASES)
def test_mask_table(code: str | None, expected: bool) -> None:
    mask = valid_credit_code_mask(pd.Series([code, code], dtype="str"))
    assert mask.tolist() == [expected, expected]
    if code is not None:
        assert credit_code_is_valid(code) is expected


def test_mask_equals_scalar_check_on_generated_codes() -> None:
    rng = np.random.default_rng(5)
    bodies = ["".join(rng.choice(list(ALPHABET), 17)) for _ in range(400)]
    codes = [_with_check_digit(b) for b in bodies]
    mutated = [c[:17] + ALPHABET[(ALPHABET.index(c[17]) + 1) % 31] for c in codes[:200]]
    swapped = [c[:5] + "I" + c[6:] for c in codes[200:260]]
    values = pd.Series([*codes, *mutated, *swapped, None, "x"], dtype="str")
    mask = valid_credit_code_mask(values)
    expected = [isinstance(v, str) and credit_code_is_valid(v) for v in values.tolist()]
    assert mask.tolist() == expected
    assert mask.sum() == 400


def test_mask_keeps_index_and_handles_object_and_empty() -> None:
    values = pd.Series(["91350100M000100Y43", 12345, None], index=[10, 20, 30], dtype=object)
    mask = valid_credit_code_mask(values)
    assert mask.index.tolist() == [10, 20, 30]
    assert mask.tolist() == [True, False, False]
    assert valid_credit_code_mask(pd.Series([], dtype="str")).tolist() == []
