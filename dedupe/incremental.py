"""Incremental linking: score only pairs touching new/changed records, re-cluster what changed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cleaning.version import CLEANING_LIBRARIES, code_fingerprint, module_files
from dedupe.assemble import LinkResult, assemble, decision_positions
from dedupe.blocking import (
    BlockingRule,
    CandidatePairs,
    Codes,
    _layout,
    cached_codes,
    generate_candidates,
    order_rank,
    rule_rank,
    still_blocked,
    union_candidates,
)
from dedupe.levels import rules_for
from dedupe.link import arrow_text_columns, object_columns, return_free_memory
from dedupe.model import ModelParams
from dedupe.pairset import (
    PairSet,
    _recode,
    arrow_strings,
    concat_pairs,
    concat_taken,
    positions_of,
)
from dedupe.prepare import _in_several_places, prepare_records, sole_name_holders
from dedupe.rules import normalize_decisions
from dedupe.scoring import score_candidates
from dedupe.settings import MatchSettings

PREPARED_CODE: tuple[str, ...] = (
    "dedupe.prepare",
    "dedupe.specs",
    "cleaning.phone",
    "cleaning.company",
    "cleaning.divisions",
)
"""Modules whose code decides `prepare_records`' output (their bytes make `prepared_version`)."""


def prepared_version() -> str:
    """Fingerprint of the code that prepares records (`PREPARED_CODE`) and the libraries it uses.

    Prepared records stored by one version are reused only by the same version: an upgrade of
    the preparation (or of the cleaning helpers it calls) prepares every record again.
    """
    return code_fingerprint(module_files(PREPARED_CODE), CLEANING_LIBRARIES)


def whole_set_flags(prepared: pd.DataFrame) -> dict[str, np.ndarray]:
    """The prepared flags counted over the whole record set, as `prepare_records` sets them."""
    from cleaning.phone import flag_shared_phones

    return {
        "email_shared": flag_shared_phones(prepared["email"], prepared["name_key"], 3).to_numpy(
            dtype=bool
        ),
        "name_in_places": np.asarray(_in_several_places(prepared), dtype=bool),
        "name_one_holder": np.asarray(sole_name_holders(prepared), dtype=bool),
    }


FLAG_GROUPS: dict[str, str] = {
    "email_shared": "email",
    "name_in_places": "name_key",
    "name_one_holder": "name_key",
}
"""Each whole-set flag and the column whose equal values it is counted over: a record's flag
depends only on the records sharing its value there (`whole_set_flags`)."""


def touched_flags(
    prepared: pd.DataFrame, touched: pd.DataFrame
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The whole-set flags of the records sharing a value of `touched`, as `whole_set_flags`.

    A flag is counted over the records of one value (`FLAG_GROUPS`): only the groups of the
    values the `touched` rows carry (new versions and old ones) can change, so only their
    records are counted again, each flag over whole groups of its own column.

    Returns:
        flag column → (row positions into `prepared`, the flag's value there).
    """
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for group in dict.fromkeys(FLAG_GROUPS.values()):
        wanted = pd.unique(touched[group].dropna().to_numpy(dtype=object))
        at = np.nonzero(prepared[group].isin(wanted).to_numpy(dtype=bool))[0]
        counted = whole_set_flags(prepared.iloc[at].reset_index(drop=True))
        for column, by in FLAG_GROUPS.items():
            if by == group:
                out[column] = (at, counted[column])
    return out


def _merge_prepared(
    new_records: pd.DataFrame,
    existing_records: pd.DataFrame | None,
    old_prepared: pd.DataFrame | None,
    settings: MatchSettings,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray | None]:
    """Prepared records of this run, old versions of changed records, focus mask and remap.

    Returns:
        (prepared, prepared old versions of the changed records, focus = new/changed record per
        row, remap = this run's position of each `old_prepared` row or -1; None without it).
    """
    new_keys = arrow_strings(new_records["record_key"].astype(str).to_numpy(dtype=object))
    if old_prepared is None:
        assert existing_records is not None
        old_keys = existing_records["record_key"].astype(str).to_numpy(dtype=object)
        changed = positions_of(old_keys, new_keys) >= 0
        prepared = prepare_records(
            pd.concat([existing_records[~changed], new_records], ignore_index=True), settings
        )
        focus = positions_of(prepared["record_key"].to_numpy(dtype=object), new_keys) >= 0
        return prepared, prepare_records(existing_records[changed], settings), focus, None
    changed = positions_of(old_prepared["record_key"].to_numpy(dtype=object), new_keys) >= 0
    reuse, fresh = old_prepared[~changed], prepare_records(new_records, settings)
    # Both parts are sorted by record_key: merge them instead of sorting everything again.
    slot = np.searchsorted(
        reuse["record_key"].to_numpy(dtype=object), fresh["record_key"].to_numpy(dtype=object)
    ) + np.arange(len(fresh))
    total = len(reuse) + len(fresh)
    is_fresh = np.zeros(total, dtype=bool)
    is_fresh[slot] = True
    index = np.empty(total, dtype=np.int64)
    index[slot] = len(reuse) + np.arange(len(fresh))
    index[~is_fresh] = np.arange(len(reuse))
    prepared = pd.concat([reuse, fresh], ignore_index=True).take(index).reset_index(drop=True)
    remap = np.full(len(old_prepared), -1, dtype=np.int64)
    remap[~changed] = np.nonzero(~is_fresh)[0]
    # `email_shared`, `name_in_places` and `name_one_holder` are counted over all records: a
    # new record of a name (or mailbox) can end or start an unchanged record's flag; such
    # records are prepared anew and linked again like changed ones
    # (only the groups of the values new records and old versions carry are counted again)
    flipped = np.zeros(total, dtype=bool)
    touched = pd.concat([fresh, old_prepared[changed]], ignore_index=True)
    for column, (at, values) in touched_flags(prepared, touched).items():
        current = prepared[column].to_numpy(dtype=bool)
        differs = values != current[at]
        if differs.any():
            current = current.copy()
            current[at] = values
            prepared[column] = current
            flipped[at[differs]] = True
    if flipped.any():
        stale = np.zeros(len(old_prepared), dtype=bool)
        stale[~changed] = flipped[remap[~changed]]
        remap[stale] = -1
        changed |= stale
        is_fresh |= flipped
    return prepared, old_prepared[changed], is_fresh, remap


def _labels_from_matches(n: int, old: PairSet, match: np.ndarray) -> np.ndarray:
    """Cluster label (first member's position) per record from pairs decided 'match'."""
    graph = coo_matrix(
        (np.ones(int(match.sum()), dtype=np.int8), (old.left[match], old.right[match])),
        shape=(n, n),
    )
    _, comp = connected_components(graph, directed=False)
    first = np.full(comp.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]


def _old_pairs(
    existing_pairs: pd.DataFrame,
    previous: LinkResult | None,
    remap: np.ndarray | None,
    prepared: pd.DataFrame,
    focus: np.ndarray,
    comparisons: list[str],
) -> tuple[PairSet, np.ndarray]:
    """The previous run's pairs in this run's positions (-1 = record gone) and its labels."""
    n = len(prepared)
    if (
        previous is not None
        and previous.pair_set is not None
        and previous.labels is not None
        and remap is not None
    ):
        old = previous.pair_set.take(slice(None))
        old.left, old.right = remap[old.left], remap[old.right]
        labels = np.full(n, -1, dtype=np.int64)
        alive = remap >= 0
        labels[remap[alive]] = remap[previous.labels[alive]]
        return old, labels
    keys = arrow_strings(prepared["record_key"].to_numpy(dtype=object))
    old = PairSet.from_frame(existing_pairs, keys, comparisons)
    for side in (old.left, old.right):
        side[(side >= 0) & focus[np.maximum(side, 0)]] = -1
    valid = (old.left >= 0) & (old.right >= 0)
    match = valid & (existing_pairs["decision"] == "match").to_numpy(dtype=bool)
    return old, _labels_from_matches(n, old, match)


@dataclass
class _Layout:
    """One rule's blocks in the order a full run windows them (`blocking._layout`).

    `members` lists the records block by block, each block in its window order; block `b`
    holds `members[start[b]:start[b] + sizes[b]]`; `position` is each record's place in it.
    """

    key: np.ndarray
    position: np.ndarray
    sizes: np.ndarray
    members: np.ndarray
    start: np.ndarray
    cap: int
    window: int


def _rule_layout(
    prepared: pd.DataFrame,
    rule: BlockingRule,
    settings: MatchSettings,
    codes: Codes,
    rank: np.ndarray,
) -> _Layout:
    key = cached_codes(prepared, rule.key, codes)
    position, sizes = _layout(
        f"{rule.key}/{rule.order}", key, rule_rank(prepared, rule, rank, codes), codes
    )
    members = np.empty(len(position), dtype=np.int64)
    members[position] = np.arange(len(position))
    # records without a key (-1) come first in the layout, then the blocks in code order
    start = int((key < 0).sum()) + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    cap = rule.max_block_size or settings.max_block_size
    return _Layout(key, position, sizes, members, start, cap, rule.window or settings.block_window)


def _near(layout: _Layout, places: np.ndarray, n: int) -> np.ndarray:
    """Records within `window` places (in layout order) of the given layout places."""
    width = len(layout.members)
    if len(places) == 0 or width == 0:
        return np.zeros(n, dtype=bool)
    reach = np.zeros(width + 1, dtype=np.int64)
    np.add.at(reach, np.clip(places - layout.window, 0, width), 1)
    np.add.at(reach, np.clip(places + layout.window + 1, 0, width), -1)
    out = np.zeros(n, dtype=bool)
    out[layout.members[np.cumsum(reach[:-1]) > 0]] = True
    return out


def _gaps(
    prepared: pd.DataFrame,
    rule: BlockingRule,
    layout: _Layout,
    old_versions: pd.DataFrame,
    at: np.ndarray,
    codes: Codes,
    names: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Where each old version sat in its block's window order, as a layout place.

    `names` caches each order column as text (rules share them: converted once).

    Returns:
        (block code per old version, -1 = no such block now; the layout place of the gap it
        left: the first member ordered after it).
    """
    values = old_versions[rule.key].to_numpy(dtype=object)
    block = np.full(len(values), -1, dtype=np.int64)
    known = pd.notna(values)
    if known.any():
        block[known] = pd.Index(codes[rule.key][1]).get_indexer(values[known])
    place = np.full(len(values), -1, dtype=np.int64)
    if not (block >= 0).any():
        return block, place
    # the window order's names, block by block (slices below are views, not copies)
    if names is None:
        names = {}
    if rule.order not in names:
        names[rule.order] = prepared[rule.order].fillna("").astype(str).to_numpy(dtype=object)
    ordered = names[rule.order][layout.members]
    own = old_versions[rule.order].fillna("").astype(str).to_numpy(dtype=object)
    for i in np.nonzero(block >= 0)[0]:
        lo = layout.start[block[i]]
        inside = layout.members[lo : lo + layout.sizes[block[i]]]
        names = ordered[lo : lo + layout.sizes[block[i]]]
        first = np.searchsorted(names, own[i], side="left")
        last = np.searchsorted(names, own[i], side="right")
        # equal names are ordered by record position, the old version's is its record's
        place[i] = lo + first + np.searchsorted(inside[first:last], at[i])
    return block, place


def _changed_blocks(
    prepared: pd.DataFrame,
    rules: list[BlockingRule],
    settings: MatchSettings,
    focus: np.ndarray,
    old_versions: pd.DataFrame,
    codes: Codes,
    rank: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """What a change touches in the blocks: records to re-check, to expand, blocks to expand.

    A block that is oversize (windowed) before and after the change only changes around the
    change: a pair of unchanged records that a full run now generates, or no longer does, or
    labels by another rule, has a record within `window` places (in the block's window order)
    of a new/changed record or of the gap an old version left. Other changed blocks (small, or
    crossing the cap) are taken whole, as before.

    Returns:
        (hit: records whose reused pairs are checked again; near: unchanged records whose
        pairs are generated again like a changed record's (neighbours of a gap); hot: the old
        versions with the key values of blocks to expand whole, other keys nulled).
    """
    n = len(prepared)
    hit = np.zeros(n, dtype=bool)
    near = np.zeros(n, dtype=bool)
    hot = old_versions.copy()
    whole: dict[str, np.ndarray] = {}
    order_names: dict[str, np.ndarray] = {}
    at = np.empty(0, dtype=np.int64)
    if len(old_versions):
        at = positions_of(
            old_versions["record_key"].to_numpy(dtype=object),
            arrow_strings(prepared["record_key"].to_numpy(dtype=object)),
        )
    for rule in rules:
        layout = _rule_layout(prepared, rule, settings, codes, rank)
        key, sizes = layout.key, layout.sizes
        inserted = np.bincount(key[focus & (key >= 0)], minlength=len(sizes))
        block, place = _gaps(prepared, rule, layout, old_versions, at, codes, order_names)
        # oversize now and before (it lost at most `inserted` members' worth of size)
        # (one slot more: code -1, no key, is never windowed nor changed)
        windowed = np.append(sizes - inserted > layout.cap, False)
        changed = np.zeros(len(sizes) + 1, dtype=bool)  # last slot: code -1
        changed[key[focus & (key >= 0)]] = True
        changed[block[block >= 0]] = True
        changed[-1] = False
        hit |= (changed & ~windowed)[key]
        places = layout.position[focus & windowed[key]]
        gap = place[windowed[block]]
        hit |= _near(layout, np.concatenate([places, gap, gap - 1]), n)
        near |= _near(layout, np.concatenate([gap, gap - 1]), n)
        # an old version's block is expanded whole unless it stays windowed for every rule
        expand = (block >= 0) & ~windowed[block]
        whole[rule.key] = whole.get(rule.key, np.zeros(len(block), dtype=bool)) | expand
    for column, expand in whole.items():
        hot[column] = hot[column].where(expand, None)
    return hit, near & ~focus, hot


def _member(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Whether each id is in `sorted_ids` (ascending)."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return sorted_ids[at] == ids


def _mark(touched: np.ndarray, *positions: np.ndarray) -> None:
    for pos in positions:
        touched[pos[pos >= 0]] = True


def link_incremental(
    new_records: pd.DataFrame,
    existing_records: pd.DataFrame,
    existing_pairs: pd.DataFrame,
    settings: MatchSettings | None,
    decisions: pd.DataFrame | None,
    params: ModelParams,
    existing_prepared: pd.DataFrame | None = None,
    previous: LinkResult | None = None,
) -> LinkResult:
    """Link new or changed records against the existing set without re-scoring old pairs.

    Only blocks holding a new/changed record are expanded and only pairs touching one are
    scored; old pairs between unchanged records are reused, and only the connected components
    of strong edges that hold a new/changed record (or lost a pair) are re-clustered. With the
    same params and settings as the previous run, pairs and clusters equal a full rebuild's.

    Args:
        new_records: new records and new versions of changed records (same record_key).
        existing_records: the records of the previous run.
        existing_pairs: the previous run's `LinkResult.pairs`.
        settings: matching settings (the previous run's); None = defaults.
        decisions: all steward decisions so far.
        params: the model parameters of the previous run (required: no re-estimation).
        existing_prepared: the previous run's `LinkResult.prepared`; when given, only the new
            records are prepared (much faster), else every record is prepared again.
        previous: the previous run's whole `LinkResult` (fastest: its prepared records, pair
            positions and cluster labels are reused; `existing_prepared` is then ignored).

    Returns:
        A LinkResult over all records (existing + new); `blocking_stats` counts new pairs only.
    """
    if previous is not None and previous.prepared is not None:
        existing_prepared = previous.prepared
    if existing_prepared is not None and len(existing_prepared) != len(existing_records):
        existing_prepared, previous = None, None
    result = _link(
        new_records,
        existing_records,
        existing_pairs,
        settings,
        decisions,
        params,
        existing_prepared,
        previous,
    )
    assert isinstance(result, LinkResult)
    return result


def link_stored(
    new_records: pd.DataFrame,
    stored: StoredLink,
    settings: MatchSettings | None,
    decisions: pd.DataFrame | None,
    params: ModelParams,
) -> LinkResult:
    """`link_incremental` from the previous link as the warehouse stores it.

    No previous record is prepared again and no previous pair is looked up by key: the
    stored prepared records, the pairs by position and the cluster labels are reused, as
    with ``link_incremental(previous=…)``; the result equals a full rebuild the same way.

    Args:
        new_records: new records and new versions of changed records.
        stored: the previous run's prepared records, pairs and labels (`StoredLink`).
        settings: matching settings (the previous run's); None = defaults.
        decisions: all steward decisions so far.
        params: the model parameters of the previous run.

    Returns:
        A LinkResult over all records whose `refreshed` marks the prepared rows this run
        prepared or re-flagged (what the stored prepared records must be updated with).

    Raises:
        ValueError: the stored prepared records are not sorted by record_key, or the pairs
            or labels do not fit them.
    """
    if stored.more is not None:
        raise ValueError("link_stored needs every stored pair (use link_stored_delta)")
    result = _link(
        new_records,
        None,
        stored.steward_pairs,
        settings,
        decisions,
        params,
        stored.prepared,
        _stored_previous(stored, params),
    )
    assert isinstance(result, LinkResult)
    return result


def link_stored_delta(
    new_records: pd.DataFrame,
    stored: StoredLink,
    settings: MatchSettings | None,
    decisions: pd.DataFrame | None,
    params: ModelParams,
) -> LinkDelta:
    """`link_stored`, returning only what changed (`LinkDelta`) instead of every row.

    The stored rows of records outside `LinkDelta.records` stay what a full rebuild gives
    (their pairs, cluster rows and review rows do not change): writing the delta over the
    stored tables (`warehouse.match_state.write_match_delta`) gives a full rebuild's tables.

    Args:
        as `link_stored`.

    Returns:
        The affected records and their pairs, cluster rows and review rows.

    Raises:
        ValueError: as `link_stored`.
    """
    settings = settings or MatchSettings()
    result = _link(
        new_records,
        None,
        stored.steward_pairs,
        settings,
        decisions,
        params,
        stored.prepared,
        _stored_previous(stored, params),
        delta=True,
        more=stored.more,
    )
    assert isinstance(result, LinkDelta)
    return result


def _stored_previous(stored: StoredLink, params: ModelParams) -> LinkResult:
    """The stored link as the previous `LinkResult` `_link` reuses (checked to fit)."""
    keys = stored.prepared["record_key"].to_numpy(dtype=object)
    if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
        raise ValueError("stored prepared records are not sorted by record_key")
    n = len(keys)
    pairs, labels = stored.pairs, stored.labels
    if labels is None:  # a delta does not cluster from the previous labels: any will do
        labels = np.arange(n, dtype=np.int64)
    if len(labels) != n or (len(pairs) and (pairs.left.min() < 0 or pairs.right.max() >= n)):
        raise ValueError("stored pairs or cluster labels do not fit the stored records")
    return LinkResult(
        stored.steward_pairs,
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame(),
        params,
        prepared=stored.prepared,
        pair_set=pairs,
        labels=labels,
    )


@dataclass
class LinkDelta:
    """What a nightly link changes: the affected records and their rows of ``match.*``.

    Attributes:
        records: record keys whose rows are replaced: the records of every strong-edge
            component holding a new, changed, re-flagged or re-paired record (a union of whole
            components, so every other record keeps its cluster and its pairs' decisions).
        pairs: every pair with an endpoint in `records` (`LinkResult.pairs` columns); with
            `partial`, only those whose other endpoint is in `prepared`.
        clusters: the cluster rows of `records`.
        review_queue: the review rows of `pairs` (each has an endpoint in `records`).
        blocking_stats, params, warnings: as `LinkResult`'s.
        prepared: every prepared record of this run; refreshed: the rows this run prepared
            or re-flagged (what ``match.prepared`` is updated with).
        dropped: pairs (left_key, right_key) of records outside `records` that a full
            rebuild no longer generates (weak pairs a changed block lost): deleted as rows.
    """

    records: pd.Series
    pairs: pd.DataFrame
    clusters: pd.DataFrame
    review_queue: pd.DataFrame
    blocking_stats: pd.DataFrame
    params: ModelParams
    warnings: list[str]
    prepared: pd.DataFrame
    refreshed: np.ndarray
    dropped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"left_key": [], "right_key": []}, dtype=object)
    )
    partial: bool = False
    """`prepared` holds only the records read (`link_subset_delta`): `pairs` then holds the
    affected records' pairs with those records only; their stored pairs with any other record
    are unchanged (write with ``within`` = ``prepared.record_key``)."""
    read_pairs: Any = None
    """With `partial`: the stored pairs among the records read as the source kept them for
    the write (`warehouse.match_state.ReadPairs`: rowids and hashes), or None."""


def _valid_ids(prepared: pd.DataFrame) -> np.ndarray:
    """Which records hold a valid 居民身份证号 (a must-link may join them to another)."""
    if "id_number_valid" not in prepared:
        return np.zeros(len(prepared), dtype=bool)
    return prepared["id_number_valid"].to_numpy(dtype=bool)


def _shaping(
    pairs: PairSet, settings: MatchSettings, valid_id: np.ndarray, hard: bool = True
) -> np.ndarray:
    """Pairs whose coming or going can re-shape a clustering component: strong ones, those of
    two records with valid 居民身份证号 (a must-link) and, with `hard`, hard-rule
    (cannot-link) ones.

    Positions of -1 (a record gone) count as with a valid number when the other has one.
    """
    ok = np.append(valid_id, False)
    return (
        (pairs.probability >= settings.match_threshold)
        | ((pairs.hard >= 0) & hard)
        | (ok[pairs.left] & ok[pairs.right])
        | (ok[pairs.left] & (pairs.right < 0))
        | (ok[pairs.right] & (pairs.left < 0))
    )


def _as_stored(
    old: PairSet,
    keep: np.ndarray,
    old_ids: np.ndarray,
    fresh: PairSet,
    fresh_ids: np.ndarray,
    focus: np.ndarray,
) -> np.ndarray:
    """Fresh pairs of two unchanged records that equal a kept stored pair (same id and rule):
    scored from the same prepared rows with the same params, their rows are the stored ones."""
    out = np.zeros(len(fresh), dtype=bool)
    inner = np.nonzero(~focus[fresh.left] & ~focus[fresh.right])[0]
    if len(inner) == 0 or len(old_ids) == 0:
        return out
    at = np.minimum(np.searchsorted(old_ids, fresh_ids[inner]), len(old_ids) - 1)
    found = old_ids[at] == fresh_ids[inner]
    before = np.array([*old.rule_names, None], dtype=object)[old.rule[keep[at]]]
    now = np.array([*fresh.rule_names, None], dtype=object)[fresh.rule[inner]]
    out[inner[found & (before == now)]] = True
    return out


def _stored_again(
    old: PairSet,
    keep: np.ndarray,
    old_ids: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    rule: np.ndarray,
    focus: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Which candidate pairs (`left` < `right`, rule labels `rule`) are pairs of two unchanged
    records that equal a kept stored pair (same id and rule, as `_as_stored` tests after
    scoring), and where: (mask, position into `old_ids` / `keep`)."""
    found = np.zeros(len(left), dtype=bool)
    at = np.zeros(len(left), dtype=np.int64)
    inner = np.nonzero(~focus[left] & ~focus[right])[0]
    if len(inner) == 0 or len(old_ids) == 0:
        return found, at
    ids = left[inner].astype(np.int64) * np.int64(n) + right[inner].astype(np.int64)
    where = np.minimum(np.searchsorted(old_ids, ids), len(old_ids) - 1)
    hit = old_ids[where] == ids
    before = np.array([*old.rule_names, None], dtype=object)[old.rule[keep[where]]]
    same = hit & (before == np.asarray(rule, dtype=object)[inner])
    found[inner[same]] = True
    at[inner[same]] = where[same]
    return found, at


def _scored_again(
    scored: PairSet | None, left: np.ndarray, right: np.ndarray, rule: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which candidate pairs (`left` < `right`, rule labels `rule`) an earlier pass of this
    link scored with the same rule (`scored`, at this run's positions), and where:
    (mask, position into `scored`)."""
    found = np.zeros(len(left), dtype=bool)
    at = np.zeros(len(left), dtype=np.int64)
    if scored is None or len(scored) == 0 or len(left) == 0:
        return found, at
    scored_ids = scored.ids(n)
    order = np.argsort(scored_ids, kind="stable")
    ids = left.astype(np.int64) * np.int64(n) + right.astype(np.int64)
    where = np.minimum(np.searchsorted(scored_ids[order], ids), len(order) - 1)
    where = order[where]
    hit = scored_ids[where] == ids
    before = np.array([*scored.rule_names, None], dtype=object)[scored.rule[where]]
    found = hit & (before == np.asarray(rule, dtype=object))
    at[found] = where[found]
    return found, at


def affected_records(
    prepared: pd.DataFrame,
    pairs: PairSet,
    decided: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: MatchSettings,
    touched: np.ndarray,
    cannot: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Records whose strong-edge component (as `cluster_pairs` forms it) holds a touched one.

    `cannot`: (left, right) of cannot-link pairs that came or went: a component holding both
    records of one counts as touched.

    Components are taken over a superset of the edges `cluster_pairs` joins (every pair at
    or above the match threshold, every steward 'match', every two records with one valid
    居民身份证号), so the mask is a union of whole `cluster_pairs` components: re-clustering
    exactly these records gives every record a full rebuild's label.
    """
    n = len(prepared)
    if n == 0:
        return np.zeros(0, dtype=bool)
    strong = pairs.probability >= settings.match_threshold
    dl, dr, dd = decided
    steward = dd == "match"
    left, right = [pairs.left[strong], dl[steward]], [pairs.right[strong], dr[steward]]
    if settings.id_number_match and "id_number_valid" in prepared:
        valid = prepared["id_number_valid"].to_numpy(dtype=bool)
        numbers = prepared["id_number"].astype("string").where(valid)
        codes = pd.factorize(numbers, use_na_sentinel=True)[0].astype(np.int64)
        members = np.nonzero(codes >= 0)[0]
        if len(members):
            first = np.full(int(codes.max()) + 1, n, dtype=np.int64)
            np.minimum.at(first, codes[members], members)
            left.append(first[codes[members]])
            right.append(members)
    al, ar = np.concatenate(left), np.concatenate(right)
    graph = coo_matrix((np.ones(len(al), dtype=np.int8), (al, ar)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    hot = np.zeros(int(comp.max()) + 1, dtype=bool)
    hot[comp[touched]] = True
    if cannot is not None and len(cannot[0]):
        inside = comp[cannot[0]] == comp[cannot[1]]
        hot[comp[cannot[0][inside]]] = True
    return hot[comp]


def _assemble_delta(
    prepared: pd.DataFrame,
    pairs: PairSet,
    decided: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: MatchSettings,
    params: ModelParams,
    stats: pd.DataFrame,
    warnings: list[str],
    touched: np.ndarray,
    focus: np.ndarray,
    rest: _Rest | None = None,
    cannot: tuple[np.ndarray, np.ndarray] | None = None,
) -> LinkDelta:
    """`assemble` over the affected records' pairs only (see `LinkDelta`).

    The affected records are whole components of the clustering graph: clustering their
    pairs alone gives them a full rebuild's labels; a pair from one of them to another
    record joins two components, so it is never 'match' and its decision depends on the
    pair alone, as in a full rebuild. With `rest`, `pairs` lacks stored pairs of records
    not read yet: those of the affected records are read now (unchanged stored pairs).
    """
    affected = affected_records(prepared, pairs, decided, settings, touched, cannot)
    if rest is not None:
        pairs = rest.add(pairs, affected, len(prepared))
    rows = np.nonzero(affected[pairs.left] | affected[pairs.right])[0]
    result = assemble(prepared, pairs.take(rows), decided, settings, params, stats, warnings)
    clusters = result.clusters[affected].reset_index(drop=True)
    return LinkDelta(
        records=clusters["record_key"],
        pairs=result.pairs,
        clusters=clusters,
        review_queue=result.review_queue,
        blocking_stats=stats,
        params=params,
        warnings=warnings,
        prepared=prepared,
        refreshed=focus,
    )


@dataclass
class StoredLink:
    """The previous link as stored: prepared records, pairs by position, cluster labels.

    Attributes:
        prepared: the prepared records (`LinkResult.prepared`), sorted by record_key.
        pairs: the scored pairs with positions into `prepared`.
        labels: cluster label per prepared row (position of its cluster's first record).
        steward_pairs: the pairs holding a steward decision (left_key, right_key,
            steward_decision); their components are clustered again.
        more: None when `pairs` holds every stored pair. Else `pairs` holds at least every
            pair at or above the match threshold and every pair with a steward decision,
            ``more(mask)`` gives the stored pairs touching the rows `mask` selects, and
            `labels` may be None: only `link_stored_delta` takes such a stored link (it reads
            the other pairs of the records it re-checks or re-clusters, no others).
    """

    prepared: pd.DataFrame
    pairs: PairSet
    labels: np.ndarray | None
    steward_pairs: pd.DataFrame
    more: Callable[[np.ndarray], PairSet] | None = None


def stored_pair_set(
    columns: dict[str, np.ndarray], rule_names: list[str], hard_names: list[str]
) -> PairSet:
    """A PairSet from stored columns: left, right, rule, score, probability, hard, <c>_level.

    `rule` and `hard` are codes into `rule_names` / `hard_names` (-1 = none).
    """
    levels = {
        name[: -len("_level")]: np.asarray(values, dtype=np.int8)
        for name, values in columns.items()
        if name.endswith("_level")
    }
    return PairSet(
        np.asarray(columns["left"], dtype=np.int64),
        np.asarray(columns["right"], dtype=np.int64),
        np.asarray(columns["rule"], dtype=np.int16),
        np.asarray(columns["score"], np.float64),
        np.asarray(columns["probability"], np.float64),
        levels,
        np.asarray(columns["hard"], dtype=np.int16),
        list(rule_names),
        list(hard_names),
    )


def _link(
    new_records: pd.DataFrame,
    existing_records: pd.DataFrame | None,
    existing_pairs: pd.DataFrame,
    settings: MatchSettings | None,
    decisions: pd.DataFrame | None,
    params: ModelParams,
    existing_prepared: pd.DataFrame | None,
    previous: LinkResult | None,
    delta: bool = False,
    more: Callable[[np.ndarray], PairSet] | None = None,
    subset: _Subset | None = None,
    touched_only: bool = False,
    scored_before: PairSet | None = None,
) -> LinkResult | LinkDelta | tuple[np.ndarray, PairSet]:
    """The body of `link_incremental` / `link_stored` (arguments as theirs).

    With `delta`, only the affected records' rows are assembled (`LinkDelta`), not all; with
    `more` (delta only), ``previous.pair_set`` holds the strong and steward pairs only and
    the other pairs of the records re-checked or re-clustered are read with it. With
    `touched_only`, the link stops once the touched records are known: (their keys, the
    candidate pairs it scored); `scored_before` (delta only) holds pairs such a pass scored,
    at this run's positions: a candidate among them with the same rule is taken, not scored
    again (same prepared rows, same parameters).
    """
    if more is not None and not delta:
        raise ValueError("a link from some of the stored pairs can only be a delta")
    settings = settings or MatchSettings()
    warnings: list[str] = []
    rules = rules_for(settings)
    near_by: dict[str, np.ndarray] = {}
    hot_by: dict[str, np.ndarray] = {}
    if subset is not None:
        # the reached records only; places and block sizes are the whole new state's
        prepared, focus, remap, codes = subset.prepared, subset.focus, subset.remap, subset.codes
        rank = order_rank(prepared)
        hit, near, near_by, hot_by = _subset_blocks(subset, rules, settings)
        hot = pd.DataFrame()
    else:
        if existing_prepared is None and existing_records is None:
            raise ValueError("an incremental link needs the previous records or their preparation")
        prepared, old_versions, focus, remap = _merge_prepared(
            new_records, existing_records, existing_prepared, settings
        )
        codes = {}
        rank = order_rank(prepared)
        # Reused pairs must still come out of blocking: a block that grew past the cap is
        # windowed, one that shrank under it pairs everyone. Only pairs in a changed block
        # can differ.
        hit, near, hot = _changed_blocks(
            prepared, rules, settings, focus, old_versions, codes, rank
        )
    n = len(prepared)
    keys = arrow_strings(prepared["record_key"].to_numpy(dtype=object))
    loaded: np.ndarray | None = None
    if more is not None:
        if previous is None or previous.pair_set is None or remap is None:
            raise ValueError("a link from some of the stored pairs needs the stored link")
        # every stored pair of a changed record or of a record re-checked or re-paired here
        loaded = np.zeros(len(remap), dtype=bool)
        want = remap < 0
        want[~want] = (hit | near)[remap[~want]]
        previous.pair_set = _with_more(previous.pair_set, more, want, loaded, len(remap))
    old, old_labels = _old_pairs(
        existing_pairs,
        previous,
        remap,
        prepared,
        focus,
        [c.name for c in settings.comparison_specs()],
    )
    if subset is not None and previous is not None:
        # a subset link's previous link is its read, handed over (`link_subset_delta`):
        # its pairs live on in `old` only, let go of as they are merged (`_interleave`)
        previous.pair_set = None
    touched = focus.copy()
    usable = (old.left >= 0) & (old.right >= 0)
    # a delta re-clusters only around pairs that can re-shape a component when they go or
    # come (`_shaping`); the others are written alone (with a new/changed record, or dropped)
    valid_id = _valid_ids(prepared) if delta else None
    # (a cannot-link to a changed record's old version mattered only inside its component,
    # which then also held a strong or must-link pair of that record: marked here)
    gone = ~usable if valid_id is None else ~usable & _shaping(old, settings, valid_id, False)
    _mark(touched, old.left[gone], old.right[gone])
    decided = decision_positions(normalize_decisions(decisions), keys, warnings)
    dl, dr, _ = decided
    decided_ids = np.sort(dl * np.int64(n) + dr)
    check = np.nonzero(usable & (hit[np.maximum(old.left, 0)] | hit[np.maximum(old.right, 0)]))[0]
    blocked = still_blocked(
        prepared,
        rules,
        settings.max_block_size,
        settings.block_window,
        old.left[check],
        old.right[check],
        codes,
        rank,
    )
    lost = check[~blocked & ~_member(old.ids(n)[check], decided_ids)]
    dropped = np.empty(0, dtype=np.int64)
    cannot = np.empty(0, dtype=np.int64)
    if valid_id is not None:
        # a weak lost pair is deleted as a row, nobody re-clustered; a lost cannot-link only
        # re-shapes a component holding both its records (`affected_records` checks)
        shapes = _shaping(old.take(lost), settings, valid_id, False)
        lost, dropped = lost[shapes], lost[~shapes]
        cannot = dropped[old.hard[dropped] >= 0]
        usable[dropped] = False
    _mark(touched, old.left[lost], old.right[lost])
    usable[lost] = False
    # A changed block can also change which rule generates a kept pair first (its label).
    kept = check[blocked]
    labels = _first_rule(
        prepared,
        rules,
        settings,
        old.left[kept],
        old.right[kept],
        np.full(len(kept), None, dtype=object),
        np.zeros(n, dtype=bool),
        codes,
        rank,
    )
    relabelled = _relabel(old, kept, labels)
    # a pair whose rule label changed is rewritten with its records' component
    _mark(touched, old.left[relabelled], old.right[relabelled])
    keep = np.nonzero(usable)[0]
    old_ids = old.ids(n)[keep]
    if len(old_ids) > 1 and not (old_ids[1:] > old_ids[:-1]).all():
        order = np.argsort(old_ids, kind="stable")
        keep, old_ids = keep[order], old_ids[order]
    missing = ~_member(dl * np.int64(n) + dr, old_ids)
    if subset is not None:
        cand = _subset_candidates(
            subset, rules, settings, near_by, hot_by, (dl[missing], dr[missing])
        )
    else:
        cand = generate_candidates(
            prepared,
            rules,
            settings.max_block_size,
            settings.block_window,
            focus=focus | near,
            extra=(dl[missing], dr[missing]),
            hot_values=hot,
            codes=codes,
            rank=rank,
        )
    rule = _first_rule(
        prepared, rules, settings, cand.left, cand.right, cand.rule, focus, codes, rank
    )
    if delta:
        # a pair of two unchanged records stored with the same rule is its stored row (same
        # prepared rows, same params): taken as stored, not compared and scored again
        again, at = _stored_again(old, keep, old_ids, cand.left, cand.right, rule, focus, n)
        known, where = _scored_again(scored_before, cand.left, cand.right, rule, n)
        known &= ~again
        new = ~again & ~known
        fresh, params = score_candidates(
            prepared, cand.left[new], cand.right[new], rule[new], settings, params
        )
        scored_now = fresh
        if again.any() or known.any():
            assert scored_before is not None or not known.any()
            fresh = concat_pairs([
                fresh, old.take(keep[at[again]]),
                *([] if scored_before is None else [scored_before.take(where[known])]),
            ])  # fmt: skip
    else:
        fresh, params = score_candidates(prepared, cand.left, cand.right, rule, settings, params)
        scored_now = fresh
    fresh_ids = fresh.ids(n)
    scored = np.ones(len(fresh), dtype=bool)
    if delta:
        # a weak new pair of a new or changed record joins no component (its row is written
        # with that record's): its other record keeps its cluster and its rows
        weak = fresh.probability < settings.match_threshold
        scored = ~(weak & (focus[fresh.left] | focus[fresh.right]))
        # a pair of unchanged records scored again as stored (same rule) is the stored row
        scored &= ~_as_stored(old, keep, old_ids, fresh, fresh_ids, focus)
    _mark(touched, fresh.left[scored], fresh.right[scored], dl, dr)
    if "steward_decision" in existing_pairs.columns:
        # A changed steward decision can re-shape its component: re-cluster those too.
        had = existing_pairs["steward_decision"].notna().to_numpy(dtype=bool)
        if had.any():
            for side in ("left_key", "right_key"):
                _mark(touched, positions_of(existing_pairs.loc[had, side].to_numpy(object), keys))
    if touched_only:  # the touched records and the ends of the cannot-links gone
        ends = np.concatenate([np.nonzero(touched)[0], old.left[cannot], old.right[cannot]])
        return prepared["record_key"].to_numpy(dtype=object)[np.unique(ends)], scored_now
    replaced = _member(old_ids, np.sort(fresh_ids))
    keep, old_ids = keep[~replaced], old_ids[~replaced]
    cannot_ends = (old.left[cannot], old.right[cannot])
    dropped_ends = (old.left[dropped], old.right[dropped])
    # the old pairs' columns are let go of as merged (a subset link's stored pairs are
    # handed over: nothing else holds them, `previous.pair_set` let go of above)
    pairs = _interleave(old, keep, old_ids, fresh, fresh_ids, consume=True)
    del old, fresh, scored_now, fresh_ids, old_ids, keep
    if delta:
        rest = None
        if more is not None:
            assert loaded is not None and remap is not None
            rest = _Rest(more, loaded, remap)
        result = _assemble_delta(
            prepared,
            pairs,
            decided,
            settings,
            params,
            cand.stats,
            warnings,
            touched,
            focus,
            rest,
            cannot_ends,
        )
        result.dropped = pd.DataFrame(
            {
                "left_key": prepared["record_key"].to_numpy(dtype=object)[dropped_ends[0]],
                "right_key": prepared["record_key"].to_numpy(dtype=object)[dropped_ends[1]],
            }
        )
        return result
    result = assemble(
        prepared, pairs, decided, settings, params, cand.stats, warnings, old_labels, touched
    )
    result.refreshed = focus
    return result


@dataclass
class _Rest:
    """The stored pairs not read yet: `more` reads them, `loaded` marks the stored rows whose
    pairs are all read, `remap` is each stored row's position in this run."""

    more: Callable[[np.ndarray], PairSet]
    loaded: np.ndarray
    remap: np.ndarray

    def add(self, pairs: PairSet, records: np.ndarray, n: int) -> PairSet:
        """`pairs` (sorted by id, no repeats) with the unread stored pairs of `records`.

        A stored pair with no endpoint read before is unchanged (not re-checked, lost nor
        re-scored), so it is added as stored, at this run's positions.
        """
        want = np.zeros(len(self.remap), dtype=bool)
        alive = self.remap >= 0
        want[alive] = records[self.remap[alive]]
        want &= ~self.loaded
        if not want.any():
            return pairs
        extra = self.more(want)
        unread = ~self.loaded[extra.left] & ~self.loaded[extra.right]
        extra = extra.take(np.nonzero(unread)[0])
        self.loaded |= want
        extra.left, extra.right = self.remap[extra.left], self.remap[extra.right]
        # the strong ones were read up front (and are in `pairs` already)
        extra = extra.take(np.nonzero(~_member(extra.ids(n), pairs.ids(n)))[0])
        both = concat_pairs([pairs, extra])
        return both.take(np.argsort(both.ids(n), kind="stable"))


def _with_more(
    pairs: PairSet,
    more: Callable[[np.ndarray], PairSet],
    want: np.ndarray,
    loaded: np.ndarray,
    n: int,
) -> PairSet:
    """`pairs` (stored positions) with every stored pair touching the rows `want` selects.

    Marks those rows in `loaded`; the result is sorted by (left, right) without repeats.
    """
    loaded |= want
    if not want.any():
        return pairs
    both = concat_pairs([pairs, more(want)])
    _, first = np.unique(both.ids(n), return_index=True)
    return both.take(first)


def _first_rule(
    prepared: pd.DataFrame,
    rules: list[BlockingRule],
    settings: MatchSettings,
    left: np.ndarray,
    right: np.ndarray,
    rule: np.ndarray,
    focus: np.ndarray,
    codes: Codes,
    rank: np.ndarray,
) -> np.ndarray:
    """Label pairs between unchanged records (from blocks that lost a member) as a full run
    would: by the first rule that generates them, which may be a block not expanded here."""
    rule = rule.copy()
    todo = np.nonzero(~focus[left] & ~focus[right])[0]
    for r in rules:
        if len(todo) == 0:
            break
        hit = still_blocked(
            prepared,
            [r],
            settings.max_block_size,
            settings.block_window,
            left[todo],
            right[todo],
            codes,
            rank,
        )
        rule[todo[hit]] = r.name
        todo = todo[~hit]
    return rule


def _relabel(pairs: PairSet, index: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Set the rule label of `pairs[index]` (labels None = keep), in place on a copy of codes.

    Returns:
        The positions (into `pairs`) whose label changed.
    """
    set_ = np.array([x is not None for x in labels], dtype=bool)
    if not set_.any():
        return np.empty(0, dtype=np.int64)
    before = np.array([*pairs.rule_names, None], dtype=object)[pairs.rule[index[set_]]]
    names = list(pairs.rule_names)
    for name in dict.fromkeys(labels[set_].tolist()):
        if name not in names:
            names.append(name)
    lookup = {name: code for code, name in enumerate(names)}
    rule = pairs.rule.copy()
    rule[index[set_]] = np.array([lookup[x] for x in labels[set_].tolist()], dtype=np.int16)
    pairs.rule, pairs.rule_names = rule, names
    return index[set_][before != labels[set_]]


def _interleave(
    old: PairSet,
    keep: np.ndarray,
    old_ids: np.ndarray,
    fresh: PairSet,
    fresh_ids: np.ndarray,
    consume: bool = False,
) -> PairSet:
    """Merge the kept old pairs (`keep`, ids ascending) and the fresh pairs, sorted by id.

    What ``concat_pairs([old, fresh sorted by id]).take(<merged order>)`` gives, built a
    column at a time into its place: not the concatenation of every pair beside its taken
    copy (at 1 M records ≈ 0.3 GB above the pairs, at a nightly's peak). With `consume`,
    each column of `old` is emptied once placed (`old` is not used after)."""
    order = np.argsort(fresh_ids, kind="stable")
    fresh_ids = fresh_ids[order]
    total = len(keep) + len(fresh)
    slot = np.searchsorted(old_ids, fresh_ids) + np.arange(len(fresh))
    is_old = np.ones(total, dtype=bool)
    is_old[slot] = False
    del fresh_ids

    def placed(kept: np.ndarray, added: np.ndarray) -> np.ndarray:
        out = np.empty(total, dtype=np.result_type(kept, added))
        out[slot] = added[order]
        out[is_old] = kept[keep]
        return out

    empty = old.left[:0]

    def column(name: str) -> np.ndarray:
        values = placed(getattr(old, name), getattr(fresh, name))
        if consume:
            setattr(old, name, empty)
        return values

    rule_names = sorted({*old.rule_names, *fresh.rule_names})
    hard_names = sorted({*old.hard_names, *fresh.hard_names})
    rule = placed(
        _recode(old.rule, old.rule_names, rule_names),
        _recode(fresh.rule, fresh.rule_names, rule_names),
    )
    hard = placed(
        _recode(old.hard, old.hard_names, hard_names),
        _recode(fresh.hard, fresh.hard_names, hard_names),
    )
    if consume:
        old.rule, old.hard = empty, empty
    left, right, score, probability = (
        column(name) for name in ("left", "right", "score", "probability")
    )
    levels: dict[str, np.ndarray] = {}
    for name in list(old.levels):
        levels[name] = placed(old.levels[name], fresh.levels[name])
        if consume:
            old.levels[name] = empty
    return PairSet(left, right, rule, score, probability, levels, hard, rule_names, hard_names)


class SubsetSource(Protocol):
    """The stored link as a nightly subset link reads it (`warehouse.match_subset`).

    `rows` gives stored prepared rows by key, `groups` the stored rows sharing a value of a
    column (less some keys), `reach` the part of the stored link a change can reach: an object
    with `prepared` (stored rows, sorted by record_key), `pairs` (stored pairs among them by
    position: the columns `stored_pair_set` takes), `rule_names`, `hard_names`,
    `steward_pairs`, `places` and `gaps` (per ``key/order`` of each blocking rule: record_key,
    place and block size in the new state; record_key and gap of each old version).
    `grow` adds the whole strong-pair (and valid id number) components of the touched records
    to what `reach` read and gives the same kind of object.
    """

    def rows(self, keys: np.ndarray) -> pd.DataFrame: ...

    def groups(self, column: str, values: np.ndarray, without: np.ndarray) -> pd.DataFrame: ...

    def reach(
        self,
        fresh: pd.DataFrame,
        changed: np.ndarray,
        flipped: np.ndarray,
        decided: np.ndarray,
        layouts: Sequence[tuple[str, str, int, int]],
    ) -> Any: ...

    def grow(self, touched: np.ndarray) -> Any: ...

    def close(self) -> None: ...


@dataclass
class _Subset:
    """A nightly link's records: the reached stored rows merged with this run's versions.

    `prepared`, `old_versions` (stored rows of changed records), `focus` (new, changed or
    re-flagged rows), `remap` (each stored row's position now, -1 = replaced), `fresh` (rows
    of new versions, not re-flagged ones), `codes` (the run's cache with every rule's layout:
    places and sizes of the whole new state), `gaps` (per layout, gap of each old version,
    aligned with `old_versions`).
    """

    prepared: pd.DataFrame
    old_versions: pd.DataFrame
    focus: np.ndarray
    remap: np.ndarray
    fresh: np.ndarray
    codes: Codes
    gaps: dict[str, np.ndarray]


def _layouts(rules: list[BlockingRule], settings: MatchSettings) -> list[tuple[str, str, int, int]]:
    return [
        (r.key, r.order, r.max_block_size or settings.max_block_size,
         r.window or settings.block_window)
        for r in rules
    ]  # fmt: skip


def _subset_flags(
    fresh: pd.DataFrame, old: pd.DataFrame, source: SubsetSource
) -> dict[str, dict[str, bool]]:
    """Set `fresh`'s whole-set flags as counted over every record now (in place); return the
    stored records whose flags flip: record_key → {flag: new value}.

    Each flag is counted over the groups (`FLAG_GROUPS`) of the values the new and the old
    versions carry: the stored rows of those groups (less the old versions) and the new rows.
    """
    changed = old["record_key"].to_numpy(dtype=object)
    flips: dict[str, dict[str, bool]] = {}
    for group in dict.fromkeys(FLAG_GROUPS.values()):
        values = pd.unique(
            pd.concat([fresh[group], old[group]], ignore_index=True).dropna().to_numpy(object)
        )
        stored = source.groups(group, np.asarray([str(v) for v in values], dtype=object), changed)
        both = pd.concat([stored, fresh[stored.columns]], ignore_index=True)
        counted = whole_set_flags(both)
        for column, by in FLAG_GROUPS.items():
            if by != group:
                continue
            values_now = counted[column]
            fresh[column] = values_now[len(stored) :]
            was = stored[column].to_numpy(dtype=bool)
            for i in np.nonzero(values_now[: len(stored)] != was)[0]:
                flips.setdefault(stored["record_key"].iat[i], {})[column] = bool(values_now[i])
    return flips


def _prepare_change(
    new_records: pd.DataFrame,
    source: SubsetSource,
    settings: MatchSettings,
    decisions: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, bool]], np.ndarray]:
    """The new versions prepared (whole-set flags counted), their stored old versions, the
    stored records whose flags flip (`_subset_flags`) and the steward-decided record keys."""
    fresh = prepare_records(new_records, settings)
    old = source.rows(fresh["record_key"].to_numpy(dtype=object))
    flips = _subset_flags(fresh, old, source)
    decided = normalize_decisions(decisions)
    decided_keys = pd.unique(
        pd.concat([decided["left_key"], decided["right_key"]]).astype(str).to_numpy(object)
    )
    return fresh, old, flips, np.asarray(decided_keys, dtype=object)


def _subset(
    read: Any,
    fresh: pd.DataFrame,
    old: pd.DataFrame,
    flips: dict[str, dict[str, bool]],
    rules: list[BlockingRule],
    keep: frozenset[str] = frozenset(),
    consume: bool = False,
) -> tuple[_Subset, PairSet, pd.DataFrame]:
    """Merge a subset read (`SubsetSource.reach` / `grow`) with this run's versions.

    The text columns are held as a full link holds them (`_link_text`): the `keep` columns
    as objects (None for null), the others as Arrow strings, in the stored rows and the new
    versions alike, so the merged frame stays Arrow-backed (a column of Arrow rows and
    object rows would be concatenated as Python objects: ≈ 3× the memory). The stored rows
    are converted a column at a time as they are merged (`_sorted_rows`), not as a second
    frame beside the read's; with `consume` (the read is not used again), each column of
    ``read.prepared`` is let go of once merged.

    Returns:
        (the subset, the stored pairs among its stored rows by stored position, the stored
        steward pairs).

    Raises:
        ValueError: the read lacks an old version, a re-flagged record or a window place.
    """
    stored = read.prepared
    stored_keys = arrow_strings(stored["record_key"].to_numpy(dtype=object))
    changed = positions_of(old["record_key"].to_numpy(dtype=object), stored_keys)
    if (changed < 0).any():
        raise ValueError("an old version is missing from the subset read")
    flipped = positions_of(np.asarray(list(flips), dtype=object), stored_keys)
    if (flipped < 0).any():
        raise ValueError("a re-flagged record is missing from the subset read")
    n_stored = len(stored)
    replaced = np.zeros(n_stored, dtype=bool)
    replaced[changed] = True
    again = _text_rows(stored, flipped, keep)
    for i, key in enumerate(again["record_key"].tolist()):
        for column, value in flips[key].items():
            again.iloc[i, again.columns.get_loc(column)] = value
    replaced[flipped] = True
    kept = np.nonzero(~replaced)[0]
    origin = np.concatenate([kept, np.full(len(fresh) + len(again), -1)])
    is_fresh = np.concatenate(
        [np.zeros(len(kept), bool), np.ones(len(fresh), bool), np.zeros(len(again), bool)]
    )
    text = _link_text(fresh[stored.columns], keep)
    order = np.argsort(
        np.concatenate([stored["record_key"].to_numpy(dtype=object)[kept],
                        text["record_key"].to_numpy(dtype=object),
                        again["record_key"].to_numpy(dtype=object)]),
        kind="stable",
    )  # fmt: skip
    # the kept stored rows, the new versions and the re-flagged rows in key order, built a
    # column at a time (not their concatenation beside its sorted copy: at 1 M records the
    # read's rows, the concatenation and the copy were three frames of ≈ 0.4 M records)
    old_versions = _text_rows(stored, np.sort(changed), keep)
    prepared = _sorted_rows(stored, kept, [text, again], order, keep, consume)
    del text, again, stored
    origin, is_fresh = origin[order], is_fresh[order]
    remap = np.full(n_stored, -1, dtype=np.int64)
    remap[origin[origin >= 0]] = np.nonzero(origin >= 0)[0]
    focus = origin < 0
    keys = arrow_strings(prepared["record_key"].to_numpy(dtype=object))
    codes: Codes = {}
    gaps: dict[str, np.ndarray] = {}
    for rule in rules:
        name = f"{rule.key}/{rule.order}"
        if f"{name}@layout" in codes:
            continue
        key = cached_codes(prepared, rule.key, codes)
        places = read.places[name]
        at = _placed(places["record_key"], keys, key)
        if at is None:
            raise ValueError(f"the subset read does not place every record of {name}")
        position = np.full(len(prepared), -1, dtype=np.int64)
        position[at] = places["place"].to_numpy(dtype=np.int64)
        sizes = np.zeros(len(codes[rule.key][1]), dtype=np.int64)
        sizes[key[at]] = places["size"].to_numpy(dtype=np.int64)
        codes[f"{name}@layout"] = (position, sizes)
        gap = read.gaps[name]
        where = positions_of(
            old_versions["record_key"].to_numpy(dtype=object),
            arrow_strings(gap["record_key"].to_numpy(dtype=object)),
        )
        values = np.append(gap["gap"].to_numpy(dtype=np.int64), -1)
        gaps[name] = values[where]  # -1 (no block now, no key) takes the appended -1
    pairs = stored_pair_set(read.pairs, read.rule_names, read.hard_names)
    subset = _Subset(prepared, old_versions, focus, remap, is_fresh, codes, gaps)
    return subset, pairs, read.steward_pairs


def _sorted_rows(
    stored: pd.DataFrame,
    kept: np.ndarray,
    others: list[pd.DataFrame],
    order: np.ndarray,
    keep: frozenset[str] | None = None,
    consume: bool = False,
) -> pd.DataFrame:
    """The `kept` rows of `stored` and the rows of `others` (same columns) concatenated, then
    taken in `order`, a column at a time: what ``pd.concat`` of the frames then ``take``
    give (the flag columns as bool), holding one column of the concatenation at a time.

    With `keep`, `stored` is a read's rows and each of its columns is taken as
    ``_link_text(stored, keep)`` holds it (converted a column at a time, as merged); with
    `consume`, each column of `stored` is taken out of it once merged (`stored` is left
    without columns: the read's rows and the merged copy are not both held whole)."""
    # the stored column whole, then the others: `kept` folded into the one take of `order`
    # (not a take of the kept rows, then another of the concatenation)
    start = len(stored)
    at = [np.asarray(kept, dtype=np.int64)]
    for other in others:
        at.append(np.arange(start, start + len(other), dtype=np.int64))
        start += len(other)
    taken = np.concatenate(at)[order]
    columns: dict[str, pd.Series] = {}
    for column in list(stored.columns):
        part = stored[column]
        if consume:
            del stored[column]
        if keep is not None:
            part = _text_column(part, keep)
        rest = [other[column] for other in others]
        if all(values.dtype == part.dtype for values in rest):
            joined = concat_taken([part, *rest], taken)
        else:  # pandas resolves the dtypes, from the kept rows as before
            frames = [part.iloc[kept].to_frame(), *(values.to_frame() for values in rest)]
            joined = pd.concat(frames, ignore_index=True)[column]
            joined = joined.take(order).reset_index(drop=True)
            del frames
        del part, rest
        if column in FLAG_GROUPS:
            joined = joined.astype(bool)
        columns[column] = joined
        del joined
    return pd.DataFrame(columns, copy=False)


def _placed(placed: pd.Series, keys: pa.Array, key: np.ndarray) -> np.ndarray | None:
    """Position (into `keys`, sorted) of each record `placed` names, or None unless `placed`
    names each record with a block key (`key` >= 0) exactly once.

    Both sides are sorted record keys (Arrow's order is the code point order a Python sort
    gives `keys`), so the records line up by position: one Arrow sort and one comparison, not
    a hash lookup of every key (and no Python string) per blocking rule.
    """
    inside = np.nonzero(key >= 0)[0]
    if len(placed) != len(inside):
        return None
    names = arrow_strings(placed)
    order = pc.sort_indices(names)
    same = pc.equal(names.take(order), keys.take(pa.array(inside)))
    if same.null_count or not pc.all(same, min_count=0).as_py():
        return None
    at = np.empty(len(inside), dtype=np.int64)
    at[order.to_numpy()] = inside
    return at


def _text_column(values: pd.Series, keep: frozenset[str]) -> pd.Series:
    """One column of ``_link_text(frame, keep)``, from the column of `frame` (all its rows:
    whether an object column becomes Arrow strings depends on every value), index reset.

    Only an object column outside `keep` goes through `_link_text`: a `keep` column of
    Arrow strings becomes objects with None for null, any other column is as it is (what
    `_link_text` gives them; without a frame built for each column of the ≈ 55 a read
    holds, twice a pass)."""
    values = values.reset_index(drop=True)
    if values.name in keep:
        if isinstance(values.dtype, pd.StringDtype):
            return pd.Series(values.to_numpy(dtype=object, na_value=None), index=values.index,
                             dtype=object, name=values.name)  # fmt: skip
        return values
    if values.dtype != object:
        return values
    return _link_text(values.to_frame(), keep)[values.name]


def _text_rows(frame: pd.DataFrame, rows: np.ndarray, keep: frozenset[str]) -> pd.DataFrame:
    """``_link_text(frame, keep).iloc[rows]`` (index reset) without converting every row:
    a column whose conversion does not depend on its other values (a `keep` column, a
    column not of objects) is converted at `rows` only."""
    columns: dict[str, pd.Series] = {}
    for column in frame.columns:
        values = frame[column]
        if column in keep or values.dtype != object:
            columns[column] = _text_column(values.iloc[rows], keep)
        else:
            columns[column] = _text_column(values, keep).iloc[rows].reset_index(drop=True)
    return pd.DataFrame(columns, copy=False)


def _link_text(frame: pd.DataFrame, keep: frozenset[str]) -> pd.DataFrame:
    """`frame`'s text columns as the full link holds them (`dedupe.link.arrow_text_columns`):
    Arrow strings, but the `keep` columns as objects with None for null (the matcher tests
    them with ``is None``)."""
    out = arrow_text_columns(frame, keep)
    for column in keep.intersection(out.columns):
        if isinstance(out[column].dtype, pd.StringDtype):
            values = out[column].to_numpy(dtype=object, na_value=None)
            out[column] = pd.Series(values, index=out.index, dtype=object)
    return out


def _ranges(
    block: np.ndarray, place: np.ndarray, lo_block: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Which records (block, place) lie in one of the ranges [lo, hi] of block `lo_block`."""
    out = np.zeros(len(block), dtype=bool)
    if len(lo) == 0 or len(block) == 0:
        return out
    width = int(max(place.max(initial=0), hi.max(initial=0))) + 2
    ids = block * width + place
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    start = np.searchsorted(sorted_ids, lo_block * width + np.maximum(lo, 0), side="left")
    end = np.searchsorted(sorted_ids, lo_block * width + np.minimum(hi, width - 1), side="right")
    reach = np.zeros(len(block) + 1, dtype=np.int64)
    np.add.at(reach, start, 1)
    np.add.at(reach, np.maximum(end, start), -1)
    out[order[np.cumsum(reach[:-1]) > 0]] = True
    return out


def _subset_blocks(
    subset: _Subset, rules: list[BlockingRule], settings: MatchSettings
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """`_changed_blocks` over a subset, from the whole new state's places and block sizes.

    A block small before and after the change generates the same pairs of unchanged records;
    one crossing the cap is re-checked whole (and, when it shrank under it, expanded whole);
    one oversize before and after changes only within `window` places of a new/changed
    record's place or of a gap an old version left.

    Returns:
        (hit: records whose stored pairs are checked again, near: unchanged records whose
        pairs are generated again (any rule), near per rule name, hot block codes per rule).
    """
    prepared, codes, focus = subset.prepared, subset.codes, subset.focus
    n = len(prepared)
    hit = np.zeros(n, dtype=bool)
    near_any = np.zeros(n, dtype=bool)
    near: dict[str, np.ndarray] = {}
    hot: dict[str, np.ndarray] = {}
    for rule in rules:
        name = f"{rule.key}/{rule.order}"
        key = cached_codes(prepared, rule.key, codes)
        position, sizes = codes[f"{name}@layout"]
        cap = rule.max_block_size or settings.max_block_size
        window = rule.window or settings.block_window
        values = subset.old_versions[rule.key].to_numpy(dtype=object)
        block = np.full(len(values), -1, dtype=np.int64)
        known = pd.notna(values)
        if known.any():
            block[known] = pd.Index(codes[rule.key][1]).get_indexer(values[known])
        inserted = np.bincount(key[subset.fresh & (key >= 0)], minlength=len(sizes))
        removed = np.bincount(block[block >= 0], minlength=len(sizes))
        over_now = sizes > cap
        over_before = sizes - inserted + removed > cap
        crossing = np.append(over_now != over_before, False)
        hit |= crossing[key]
        both = over_now & over_before
        anchor = focus & (key >= 0)
        anchor[anchor] = both[key[anchor]]
        gap = subset.gaps[name]
        at_gap = (block >= 0) & (gap >= 0)
        at_gap[at_gap] = both[block[at_gap]]
        g_block, g = block[at_gap], gap[at_gap]
        inside = key >= 0
        b, p = key[inside], position[inside]
        fixed = _ranges(
            b, p,
            np.concatenate([key[anchor], g_block]),
            np.concatenate([position[anchor] - window, g - 1 - window]),
            np.concatenate([position[anchor] + window, g + window]),
        )  # fmt: skip
        around = _ranges(b, p, g_block, g - 1 - window, g + window)
        hit[np.nonzero(inside)[0][fixed]] = True
        mask = np.zeros(n, dtype=bool)
        mask[np.nonzero(inside)[0][around]] = True
        mask &= ~focus
        near[rule.name] = mask
        near_any |= mask
        down = (block >= 0) & (gap >= 0)
        down[down] = ~over_now[block[down]] & over_before[block[down]]
        hot[rule.name] = np.unique(block[down])
    return hit, near_any, near, hot


def _subset_candidates(
    subset: _Subset,
    rules: list[BlockingRule],
    settings: MatchSettings,
    near: dict[str, np.ndarray],
    hot: dict[str, np.ndarray],
    extra: tuple[np.ndarray, np.ndarray],
) -> CandidatePairs:
    """`generate_candidates` (focus + near, hot blocks, steward extras) over a subset: blocks
    are windowed by the whole new state's places and sizes, not the subset's."""
    prepared, codes, focus = subset.prepared, subset.codes, subset.focus
    n = len(prepared)
    names: list[str] = []
    parts: list[np.ndarray] = []
    oversizes: list[int] = []
    for rule in rules:
        key = cached_codes(prepared, rule.key, codes)
        position, sizes = codes[f"{rule.key}/{rule.order}@layout"]
        cap = rule.max_block_size or settings.max_block_size
        window = rule.window or settings.block_window
        wanted = focus | near[rule.name]
        expanded = np.union1d(np.unique(key[wanted & (key >= 0)]), hot[rule.name])
        idx = np.nonzero((key >= 0) & np.isin(key, expanded))[0]
        left = right = np.empty(0, np.int64)
        oversize = 0
        if len(idx) >= 2:
            members = idx[np.lexsort((position[idx], key[idx]))]
            block, place = key[members], position[members]
            big = sizes[block] > cap
            lefts, rights = [], []
            for d in range(1, max(cap - 1, window) + 1):
                same = block[:-d] == block[d:]
                if not same.any():
                    break
                same &= ~big[:-d] | (place[d:] - place[:-d] <= window)
                at = np.nonzero(same)[0]
                lefts.append(members[at])
                rights.append(members[at + d])
            if lefts:
                left, right = np.concatenate(lefts), np.concatenate(rights)
            left, right = np.minimum(left, right), np.maximum(left, right)
            keep = wanted[left] | wanted[right]
            if len(hot[rule.name]):
                keep |= np.isin(key[left], hot[rule.name])
            left, right = left[keep], right[keep]
            oversize = int((sizes[expanded] > cap).sum())
        kept = rule.keeps(prepared, left, right, codes)
        left, right = left[kept], right[kept]
        names.append(rule.name)
        parts.append(left * np.int64(n) + right)
        oversizes.append(oversize)
    ids, rule_at, names, stats = union_candidates(n, names, parts, oversizes, extra)
    labels = np.array(names, dtype=object)[rule_at] if names else np.empty(0, dtype=object)
    return CandidatePairs(ids // max(n, 1), ids % max(n, 1), labels, stats)


def link_subset_delta(
    new_records: pd.DataFrame,
    source: SubsetSource,
    settings: MatchSettings | None,
    decisions: pd.DataFrame | None,
    params: ModelParams,
) -> LinkDelta:
    """`link_stored_delta` from only the part of the stored link the change can reach.

    The new versions are prepared, their whole-set flags counted over the groups of the
    values they and the old versions carry (`SubsetSource.groups`), and `source` reads the
    records the change reaches with every blocking rule's window places and block sizes of
    the whole new state (`SubsetSource.reach`). The delta link then runs over those records
    alone (positions relative to them): blocks are windowed by the whole state's places, so
    the delta equals `link_stored_delta`'s over every stored record, and writing it
    (`warehouse.match_state.write_match_delta`) gives a full rebuild's tables.

    Raises:
        ValueError: the read does not fit (an old version, a re-flagged record or a place is
            missing): link from the whole stored link instead.
    """
    settings = settings or MatchSettings()
    rules = rules_for(settings)
    keep = object_columns(settings)
    try:
        # (inside: the source's reads bound DuckDB's memory until `close`)
        fresh, old, flips, decided = _prepare_change(new_records, source, settings, decisions)
        return_free_memory()  # (the flag groups' rows, freed: back before the reach)
        flipped = np.asarray(list(flips), dtype=object)
        changed = old["record_key"].to_numpy(dtype=object)
        # pass 1: the records the change reaches in the blocks, to find the touched ones
        read = source.reach(fresh, changed, flipped, decided, _layouts(rules, settings))
        # (the read's rows are let go of a column at a time as they are merged: pass 2 reads
        # them again rather than holding them through this pass's link)
        first = _subset(read, fresh, old, flips, rules, keep, consume=True)
        del read  # its pairs are in `first`, its places the source's (pass 2 reuses them)
        return_free_memory()  # (the read's rows, freed as merged, go back before the link)
        found = _link(
            new_records,
            None,
            first[2],
            settings,
            decisions,
            params,
            None,
            _previous(first, params),
            delta=True,
            subset=first[0],
            touched_only=True,
        )
        assert isinstance(found, tuple)
        touched, scored = found
        # the pairs pass 1 scored, by record key (pass 2 reads more records: new positions)
        scored_keys = first[0].prepared["record_key"].to_numpy(dtype=object)
        del first, found
        # pass 1's subset and link arrays are freed: handed back before pass 2 reads more
        return_free_memory()
        # pass 2: with the whole components of the touched records and their partners
        read = source.grow(np.asarray(touched, dtype=object))
    finally:
        source.close()
    # (the read's rows are let go of a column at a time as they are merged into `subset`)
    subset, pairs, steward = _subset(read, fresh, old, flips, rules, keep, consume=True)
    del read  # its pairs are in `pairs`: not held through the link
    # handed over: `_link` lets go of the stored pairs as it merges them with the new ones
    previous = _previous((subset, pairs, steward), params)
    del pairs
    return_free_memory()
    result = _link(
        new_records,
        None,
        steward,
        settings,
        decisions,
        params,
        None,
        previous,
        delta=True,
        subset=subset,
        scored_before=_moved(scored, scored_keys, subset.prepared),
    )
    assert isinstance(result, LinkDelta)
    result.partial = True
    return result


def _moved(pairs: PairSet, keys: np.ndarray, prepared: pd.DataFrame) -> PairSet:
    """`pairs` (positions into the records `keys`) at their positions in `prepared`; a pair
    of a record `prepared` lacks is left out (pass 2 reads every record pass 1 read, so
    none is, but nothing relies on it)."""
    at = positions_of(keys, arrow_strings(prepared["record_key"].to_numpy(dtype=object)))
    moved = pairs.take(np.nonzero((at[pairs.left] >= 0) & (at[pairs.right] >= 0))[0])
    moved.left, moved.right = at[moved.left], at[moved.right]
    return moved


def _previous(read: tuple[_Subset, PairSet, pd.DataFrame], params: ModelParams) -> LinkResult:
    """The stored pairs of a subset as the previous `LinkResult` `_link` reuses."""
    subset, pairs, steward = read
    return LinkResult(
        steward, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), params,
        prepared=None, pair_set=pairs, labels=np.arange(len(subset.remap), dtype=np.int64),
    )  # fmt: skip
