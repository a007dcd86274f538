"""Whole-set flags recounted over the touched values' groups equal a count over all records."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dedupe.incremental import FLAG_GROUPS, touched_flags, whole_set_flags
from dedupe.prepare import prepare_records
from tests.dedupe.synth import make_records


def _night(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records of a night whose new ones flip each whole-set flag of unchanged records."""
    person = records.index[records["customer_type"] == "individual"][:2]
    firm = records.index[records["customer_type"] != "individual"][:1]
    base = records.copy()
    # one person's name on two records that never disagree: a sole holder, until a third
    # record of the name with another phone arrives
    base.loc[person, ["customer_name", "name_key", "phone", "email", "city"]] = [
        "欧阳明远",
        "欧阳明远",
        "+8613900000001",
        None,
        "北京市",
    ]
    base.loc[firm, ["customer_name", "name_key", "city", "province"]] = [
        "长风重工有限公司",
        "长风重工",
        "北京市",
        "北京市",
    ]
    new = pd.concat(
        [
            base.loc[person[:1]].assign(record_key="new:holder", phone="+8613900000002"),
            base.loc[firm].assign(
                record_key="new:twin", city="成都市", province="四川省", address=None, phone=None
            ),
        ],
        ignore_index=True,
    )
    return base, pd.concat([base, new], ignore_index=True)


def test_flags_of_the_touched_groups_equal_a_count_over_every_record() -> None:
    records, _ = make_records(300, seed=12)
    before, after = _night(records)
    old = prepare_records(before)
    now = prepare_records(after)
    # the new records flip flags of records that did not change
    stale = now[now["record_key"].isin(old["record_key"])].reset_index(drop=True)
    flips = {c: stale[c].to_numpy() != old[c].to_numpy() for c in FLAG_GROUPS}
    assert flips["name_one_holder"].any() and flips["name_in_places"].any()
    # counted only over the groups of the new records' values, on the stored flags
    touched = now[~now["record_key"].isin(old["record_key"])]
    merged = pd.concat([old, prepare_records(after[after["record_key"].str.startswith("new:")])])
    merged = merged.sort_values("record_key", ignore_index=True)
    want = whole_set_flags(merged)
    for column, (at, values) in touched_flags(merged, touched).items():
        got = merged[column].to_numpy(dtype=bool).copy()
        got[at] = values
        np.testing.assert_array_equal(got, want[column], err_msg=column)
        np.testing.assert_array_equal(got, now[column].to_numpy(dtype=bool), err_msg=column)
    # a group no touched value reaches is not counted at all
    at, _ = touched_flags(merged, touched)["email_shared"]
    assert len(at) < len(merged) / 10
