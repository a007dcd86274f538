"""`prepare_records` in record chunks returns the frame of preparing every record at once.

Every column but the whole-set flags is computed per chunk; the flags (`WHOLE_SET_FLAGS`) and
the blocking keys that read them are counted afterwards over every record. Checked against the
frozen former code (`tests/dedupe/prepare_reference.py`) at several chunk sizes, down to one
record a chunk (so every group of a flag spans chunks), on demo exports, the synthetic set and
the hand-made edge cases, and on crafted groups whose members lie in different chunks.
"""

from __future__ import annotations

import pandas as pd
import pytest

from dedupe import MatchSettings
from dedupe.prepare import WHOLE_SET_FLAGS, concat_prepared, prepare_chunk, prepare_records
from tests.dedupe import prepare_reference
from tests.dedupe.synth import make_records
from tests.dedupe.test_prepare_reference import (
    _EDGE_SETTINGS,
    _differences,
    _edge_records,
    demo_records,  # noqa: F401 (fixture)
)


def _assert_chunked_same(
    records: pd.DataFrame, sizes: tuple[int, ...], settings: MatchSettings | None = None
) -> None:
    expected = prepare_reference.prepare_records(records, settings)
    for size in sizes:
        got = prepare_records(records, settings, chunk_records=size)
        assert _differences(expected, got) == [], f"chunks of {size}"


def test_demo_records_prepare_in_chunks_as_at_once(demo_records: pd.DataFrame) -> None:  # noqa: F811
    shuffled = demo_records.sample(frac=1.0, random_state=7)
    _assert_chunked_same(shuffled, (97, 1000, len(shuffled) - 1))
    # one record a chunk: every group spans chunks, every column typed from one record
    _assert_chunked_same(shuffled.iloc[:150], (1,))


def test_synthetic_records_prepare_in_chunks_as_at_once() -> None:
    records, _ = make_records(600, seed=11)
    _assert_chunked_same(records.iloc[::-1], (64, 599))
    _assert_chunked_same(records.iloc[:100], (1, 2))


@pytest.mark.parametrize("settings", [None, _EDGE_SETTINGS], ids=["defaults", "key expressions"])
def test_edge_cases_prepare_in_chunks_as_at_once(settings: MatchSettings | None) -> None:
    frame = _edge_records()
    arrow_text = frame.astype({c: "str" for c in frame.columns if frame[c].dtype == object})
    _assert_chunked_same(arrow_text, (1, 2, 3, 5), settings)
    held = frame.astype({c: object for c in frame.columns if frame[c].dtype != bool})
    _assert_chunked_same(held, (1, 4), settings)


def _spanning_records() -> pd.DataFrame:
    """Groups of each whole-set flag whose records lie one per chunk of one record."""
    ind, ent = "individual", "enterprise"
    rows = [
        # one mailbox, three names (sounding apart): shared, though no chunk sees two names
        dict(record_key="e:1", name_key="甲乙公司", customer_type=ent, email="acc@x.cn"),
        dict(record_key="e:2", name_key="丙丁公司", customer_type=ent, email="acc@x.cn"),
        dict(record_key="e:3", name_key="戊己公司", customer_type=ent, email="ACC@x.cn"),
        # two names only: not shared
        dict(record_key="e:4", name_key="庚辛公司", customer_type=ent, email="two@x.cn"),
        dict(record_key="e:5", name_key="壬癸公司", customer_type=ent, email="two@x.cn"),
        # an organisation name in two cities, a record of it without a city
        dict(record_key="o:1", name_key="金飞电子", customer_type=ent, city="杭州市"),
        dict(record_key="o:2", name_key="金飞电子", customer_type=ent, city="长沙市"),
        dict(record_key="o:3", name_key="金飞电子", customer_type=ent),
        # a person with one mobile and one landline: one holder
        dict(record_key="p:1", name_key="孙八", customer_type=ind, phone="+8613700000009"),
        dict(record_key="p:2", name_key="孙八", customer_type=ind, phone="+8657188886666"),
        dict(record_key="p:3", name_key="孙八", customer_type=ind),
        # a person with two mobiles: several holders
        dict(record_key="q:1", name_key="周九", customer_type=ind, phone="+8613700000011"),
        dict(record_key="q:2", name_key="周九", customer_type=ind, phone="+8613700000012"),
    ]
    return pd.DataFrame(rows)


_FLAG_KEY_SETTINGS = MatchSettings(
    blocking_rules=[
        {"name": "shared_mail", "keys": ["email_shared", "email"]},
        {"name": "places", "keys": ["first(name_key, 2)", "name_in_places"]},
        {"name": "holder", "keys": ["name_one_holder"]},
        "phone",
    ],
)


@pytest.mark.parametrize("settings", [None, _FLAG_KEY_SETTINGS], ids=["defaults", "flag keys"])
def test_flag_groups_spanning_chunks_are_counted_over_every_record(
    settings: MatchSettings | None,
) -> None:
    records = _spanning_records()
    _assert_chunked_same(records, (1, 2, 4), settings)
    got = prepare_records(records, settings, chunk_records=1).set_index("record_key")
    assert got.loc[["e:1", "e:2", "e:3"], "email_shared"].all()
    assert not got.loc[["e:4", "e:5"], "email_shared"].any()
    assert got.loc[["o:1", "o:2", "o:3"], "name_in_places"].all()
    assert got.loc[["p:1", "p:2", "p:3"], "name_one_holder"].all()
    assert not got.loc[["q:1", "q:2"], "name_one_holder"].any()
    if settings is not None:
        assert got.loc["e:1", "email_shared|email"] == "True|acc@x.cn"
        assert got.loc["e:4", "email_shared|email"] == "False|two@x.cn"


def test_a_chunk_alone_leaves_the_whole_set_flags_to_be_counted() -> None:
    records = _spanning_records()
    part = prepare_chunk(records.iloc[:3], MatchSettings())
    assert not part[list(WHOLE_SET_FLAGS)].any().any()  # placeholders, counted over every record
    whole = prepare_records(records, chunk_records=None)
    assert whole.loc[:2, "email_shared"].all()
    assert list(part.columns) == list(whole.columns)


def test_chunks_of_arrow_and_object_text_join_as_arrow_text() -> None:
    # a chunk with no organisation name types `name_brand` as objects, another as Arrow text
    records = pd.DataFrame(
        {
            "record_key": ["a:1", "a:2"],
            "name_key": [None, "金飞电子"],
            "customer_type": ["enterprise", "enterprise"],
        }
    )
    parts = [prepare_chunk(records.iloc[[i]], MatchSettings()) for i in range(2)]
    assert parts[0]["name_brand"].dtype != parts[1]["name_brand"].dtype
    joined = concat_prepared(parts)
    assert joined["name_brand"].dtype == prepare_records(records)["name_brand"].dtype
    assert parts == []


def test_chunks_prepared_in_a_helper_process_give_the_same_frame(
    demo_records: pd.DataFrame,  # noqa: F811
) -> None:
    shuffled = demo_records.sample(frac=1.0, random_state=5)
    expected = prepare_reference.prepare_records(shuffled)
    got = prepare_records(shuffled, chunk_records=300, helpers=1)
    assert _differences(expected, got) == []
