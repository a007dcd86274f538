"""The vectorized masking path equals the scalar rules (the slow reference), value for value."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pyarrow as pa
import pytest

from warehouse.security import (
    ColumnMasker,
    mask_email,
    mask_person_name,
    mask_phone,
    mask_series,
    pseudonym,
    pseudonyms,
)
from warehouse.security.columns import lookup_types, text_column

SECRET = b"s" * 32
KEYS = [
    {"id": "32 bytes", "secret": SECRET},
    {"id": "short", "secret": b"k"},
    {"id": "one block", "secret": bytes(range(64))},
    {"id": "longer than a block (hashed first)", "secret": bytes(range(100))},
]
IDS = ["C20240315001", "sales:A-17", "", "客户编号·甲", "x" * 300, "sales:A-17"]


def _reference_pseudonym(value: str, secret: bytes) -> str:
    """The definition: ``P`` + the first 20 hex characters of HMAC-SHA256."""
    return "P" + hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()[:20]


@pytest.mark.parametrize("case", KEYS, ids=lambda c: c["id"])
def test_batch_pseudonyms_equal_hmac(case: dict) -> None:
    secret = case["secret"]
    expected = [_reference_pseudonym(v, secret) for v in IDS]
    assert pseudonyms(IDS, secret) == expected
    assert [pseudonym(v, secret) for v in IDS] == expected


def test_pseudonym_is_pinned() -> None:
    # a published mart must keep joining with earlier ones: the pseudonym never changes
    assert pseudonym("C20240315001", SECRET) == _reference_pseudonym("C20240315001", SECRET)
    assert pseudonyms(["C20240315001"], SECRET, prefix="R")[0][0] == "R"


PHONES = ["+8613912345678", None, "+442079460958", "12345", "+8613912345678", "12"]
EMAILS = ["zhang@example.com", None, "not-an-email", "Li.Na@Corp.CN", "zhang@example.com"]
NAMES = ["张伟", None, "欧阳娜娜", "John Smith", "Ｊｏｈｎ", "", "张伟"]
COLUMNS = [
    {"kind": "phone", "values": PHONES, "rule": mask_phone},
    {"kind": "email", "values": EMAILS, "rule": mask_email},
    {"kind": "person", "values": NAMES, "rule": mask_person_name},
    {"kind": "pseudonym", "values": [*IDS, None], "rule": lambda v: pseudonym(v, SECRET)},
]


def _layouts(values: list) -> list[pa.ChunkedArray]:
    """The same column as one chunk, several chunks, large_string and dictionary-encoded."""
    plain = pa.array(values, pa.string())
    half = len(values) // 2
    return [
        pa.chunked_array([plain]),
        pa.chunked_array([plain[:half], plain[half:]]),
        pa.chunked_array([plain.cast(pa.large_string())]),
        pa.chunked_array([plain.dictionary_encode()]),
    ]


@pytest.mark.parametrize("case", COLUMNS, ids=lambda c: c["kind"])
def test_column_masker_equals_the_scalar_rule(case: dict) -> None:
    expected = [None if v is None else case["rule"](v) for v in case["values"]]
    masker = ColumnMasker(SECRET)
    for column in _layouts(case["values"]):
        out = masker.mask(column, case["kind"])
        assert out.type == pa.string()
        assert out.to_pylist() == expected
    series = pd.Series(case["values"], index=range(10, 10 + len(case["values"])), dtype="string")
    assert masker.mask(series, case["kind"]).to_pylist() == expected
    pandas_out = mask_series(series, case["kind"], SECRET)
    assert list(pandas_out.index) == list(series.index)
    assert [None if pd.isna(v) else v for v in pandas_out] == expected


def test_mask_many_masks_each_column_like_mask() -> None:
    ids = pa.array(IDS, pa.string())
    columns = [
        pa.chunked_array([ids[:2], ids[2:]]),
        pa.chunked_array([], pa.string()),
        pa.chunked_array([pa.nulls(3, pa.string())]),
        pa.chunked_array([ids[3:], pa.array([], pa.string()), ids[:1]]),
        pd.Series(["C20240315001", None], dtype="string"),
    ]
    masker = ColumnMasker(SECRET)
    together = masker.mask_many(columns, "pseudonym")
    assert [c.to_pylist() for c in together] == [
        masker.mask(c, "pseudonym").to_pylist() for c in columns
    ]
    assert together[3].to_pylist() == [pseudonym(v, SECRET) for v in IDS[3:] + IDS[:1]]
    assert together[2].to_pylist() == [None] * 3


def _batches_of_ids() -> list[pa.ChunkedArray]:
    """Row batches sharing some values with earlier batches, with nulls and empty chunks."""
    batches = []
    for b in range(6):
        values = [f"C2024{(7 * i + b) % 40:07d}" if i % 3 else f"R{b}-{i}" for i in range(60)]
        values[::11] = [None] * len(values[::11])
        batches.append(pa.chunked_array([pa.array(values[:25]), pa.array([], pa.string()),
                                         pa.array(values[25:])]))  # fmt: skip
    return batches


def test_remembering_masker_equals_a_fresh_one_batch_after_batch() -> None:
    remembering = ColumnMasker(SECRET, remember=True)
    for batch in _batches_of_ids():
        assert remembering.mask(batch, "pseudonym").to_pylist() == [
            None if v is None else pseudonym(v, SECRET) for v in batch.to_pylist()
        ]


def test_remembered_values_are_found_without_a_scan_of_all_of_them(monkeypatch) -> None:
    """A batch's values are looked up by the hash index: an ``index_in`` against every
    remembered value per batch made the full mart's masking grow with the data's square."""
    import warehouse.security.columns as columns

    masker = ColumnMasker(SECRET, remember=True)
    batches = _batches_of_ids()
    masker.mask(batches[0], "pseudonym")
    calls: list[int] = []
    real = columns.pc.index_in

    def spy(values, value_set, **kw):  # type: ignore[no-untyped-def]
        calls.append(len(value_set))
        return real(values, value_set=value_set, **kw)

    monkeypatch.setattr(columns.pc, "index_in", spy)
    for batch in batches[1:]:
        masker.mask(batch, "pseudonym")
    assert calls == []


def test_remembered_values_sharing_a_hash_are_told_apart(monkeypatch) -> None:
    """Every value hashed alike (collisions): each is still found exactly, none is mixed up."""
    import numpy as np

    import warehouse.security.columns as columns

    monkeypatch.setattr(
        columns._Remembered, "_hash", lambda self, values: np.zeros(len(values), np.uint64)
    )
    masker = ColumnMasker(SECRET, remember=True)
    for batch in _batches_of_ids():
        assert masker.mask(batch, "phone").to_pylist() == [
            None if v is None else mask_phone(v) for v in batch.to_pylist()
        ]
        assert masker.mask(batch, "pseudonym").to_pylist() == [
            None if v is None else pseudonym(v, SECRET) for v in batch.to_pylist()
        ]


def test_non_text_columns_are_masked_as_their_pandas_text() -> None:
    ids = pa.chunked_array([pa.array([17, None, 3], pa.int64())])
    out = ColumnMasker(SECRET).mask(ids, "pseudonym").to_pylist()
    assert out == [pseudonym("17", SECRET), None, pseudonym("3", SECRET)]
    assert text_column(ids).to_pylist() == ["17", None, "3"]


def test_masker_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="secret"):
        ColumnMasker().mask(pa.array(["a"]), "pseudonym")
    with pytest.raises(ValueError, match="unknown masking kind"):
        ColumnMasker(SECRET).mask(pa.array(["a"]), "shout")


def test_empty_columns() -> None:
    masker = ColumnMasker(SECRET)
    assert masker.mask(pa.chunked_array([], pa.string()), "phone").to_pylist() == []
    assert masker.mask(pa.array([], pa.string()), "pseudonym").to_pylist() == []


NAME_ROWS = [
    {"name": "北京星辰科技有限公司", "enterprise": True, "expected": "北京星辰科技有限公司"},
    {"name": "李娜", "enterprise": False, "expected": "李*"},
    {"name": "王小明", "enterprise": None, "expected": "王**"},  # unknown type: masked
    {"name": None, "enterprise": False, "expected": None},
    {"name": "李娜", "enterprise": True, "expected": "李娜"},  # a sole trader named as a person
]


def test_names_by_type_keep_enterprises_and_mask_people() -> None:
    names = pa.chunked_array([pa.array([r["name"] for r in NAME_ROWS], pa.string())])
    flags = pa.chunked_array([pa.array([r["enterprise"] for r in NAME_ROWS], pa.bool_())])
    out = ColumnMasker(SECRET).mask_names_by_type(names, flags)
    assert out.to_pylist() == [r["expected"] for r in NAME_ROWS]


def test_lookup_types_first_row_wins_and_unknown_is_null() -> None:
    known_ids = pa.chunked_array([pa.array(["C1", "C2", None, "C1", "C3"])])
    known_types = pa.chunked_array(
        [pa.array(["enterprise", "individual", "x", "individual", None])]
    )
    rows = pa.array(["C2", "C1", "C9", None, "C3"])
    assert lookup_types(rows, known_ids, known_types).to_pylist() == [
        "individual",
        "enterprise",
        None,
        None,
        None,  # C3 has no type
    ]


@pytest.mark.parametrize("collide", [False, True])
def test_remembered_runs_find_every_value_once(monkeypatch, collide: bool) -> None:
    """Values remembered over many calls (kept in runs merged as they grow): each is masked
    once, found again in whichever run holds it, and the runs stay few."""
    import numpy as np

    import warehouse.security.columns as columns

    if collide:  # few hashes for many values: every lookup meets other values' hashes
        monkeypatch.setattr(
            columns._Remembered,
            "_hash",
            lambda self, values: np.array([len(v) % 3 for v in values.to_pylist()], np.uint64),
        )
    remembered = columns._Remembered()
    masked_once: list[str] = []

    def batch(values: list[str]) -> list[str]:
        masked_once.extend(values)
        return [f"m:{v}" for v in values]

    rng = np.random.default_rng(7)
    seen: set[str] = set()
    for call in range(40):
        size = int(rng.integers(1, 60))
        values = sorted({f"v{int(x)}" for x in rng.integers(0, 900, size)} | {f"n{call}"})
        out = remembered.masked(pa.array(values, pa.string()), batch)
        assert out.to_pylist() == [f"m:{v}" for v in values]
        seen |= set(values)
        assert len(remembered._runs) <= int(np.log2(len(seen))) + 1
    assert sorted(masked_once) == sorted(seen)  # each value masked once
