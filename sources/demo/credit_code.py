"""Valid 统一社会信用代码 (GB 32100-2015) generated in bulk with numpy."""

from __future__ import annotations

import random

import numpy as np

from sources.demo.draw import pick

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array(
    [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64
)
_ORG_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 11714 body chars (letters I/O/S/V/Z avoided)
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)


def uscc_check_char(body17: str) -> str:
    """Return the GB 32100 check character for the first 17 characters of a credit code.

    Args:
        body17: the first 17 characters (registration authority … organization code).

    Returns:
        The 18th character that makes the code valid.
    """
    pairs = zip(body17, _USCC_WEIGHTS.tolist(), strict=True)
    total = sum(_USCC_ALPHABET.index(ch) * w for ch, w in pairs)
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def _org_code_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw n organization codes (GB 11714: 8 body chars + check) as alphabet value arrays."""
    body = rng.integers(0, 10, size=(n, 8))
    letters = rng.random(n) < 0.15  # a few organization codes start with a letter
    body[letters, 0] = rng.integers(10, len(_ORG_ALPHABET), size=int(letters.sum()))
    # GB 11714 weighs letters by their position in A..Z (A=10 … Z=35).
    letter_value = np.array([int(c, 36) for c in _ORG_ALPHABET], dtype=np.int64)
    check = (11 - (letter_value[body] @ _ORG_WEIGHTS) % 11) % 11
    # check value 10 is written X; X is value 29 in the USCC alphabet
    check_idx = np.where(check == 10, _USCC_ALPHABET.index("X"), check)
    return np.column_stack([body, check_idx])


def generate_credit_codes(
    rng: np.random.Generator, division_codes: np.ndarray, kinds: np.ndarray | None = None
) -> np.ndarray:
    """Generate distinct valid 18-character credit codes for enterprises.

    Args:
        rng: random generator.
        division_codes: 6-digit administrative division codes (str array), one per enterprise.
        kinds: optional organisation-type digit per enterprise ('1' company, '2' sole trader …);
            defaults to '1'.

    Returns:
        An object array of distinct credit codes that pass the GB 32100 check digit.
    """
    n = len(division_codes)
    values = np.empty((n, 17), dtype=np.int64)
    values[:, 0] = 9  # 9 = registered with the market-regulation authority (工商)
    values[:, 1] = 1 if kinds is None else np.asarray(kinds, dtype=np.int64)
    div = np.array([[int(c) for c in code] for code in division_codes], dtype=np.int64)
    values[:, 2:8] = div.reshape(n, 6) if n else np.empty((0, 6), dtype=np.int64)
    values[:, 8:17] = _org_code_values(rng, n)
    check = (31 - (values @ _USCC_WEIGHTS) % 31) % 31
    full = np.column_stack([values, check])
    alphabet = np.array(list(_USCC_ALPHABET))
    codes = np.array(["".join(row) for row in alphabet[full]], dtype=object)
    _, first = np.unique(codes, return_index=True)
    if len(first) < n:  # astronomically rare; redraw the clashing ones
        dup = np.setdiff1d(np.arange(n), first)
        codes[dup] = generate_credit_codes(rng, division_codes[dup], None)
    return codes


def corrupt_check_char(code: str, r: random.Random) -> str:
    """Return the code with a different (wrong) check character, as a typing mistake would."""
    wrong = [c for c in _USCC_ALPHABET if c != code[17]]
    return code[:17] + pick(r, wrong)
