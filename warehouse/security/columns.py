"""Vectorized masking of whole Arrow columns: each distinct value is masked once per mart build."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.security.masking import mask_email, mask_person_name, mask_phone, pseudonyms

ColumnLike = pa.Array | pa.ChunkedArray | pd.Series
_SCALAR_RULES: dict[str, Callable[[str], str]] = {
    "phone": mask_phone,
    "email": mask_email,
    "person": mask_person_name,
}


def text_column(values: ColumnLike) -> pa.ChunkedArray:
    """A column as Arrow ``string`` (non-text columns are cast as pandas ``astype("string")`` does).

    Args:
        values: an Arrow array / chunked array or a pandas Series.

    Returns:
        A chunked ``string`` array with the same length and nulls.
    """
    if isinstance(values, pd.Series):
        arrow = pa.array(values.astype("string"), from_pandas=True)
        return _as_string(pa.chunked_array([arrow]))
    chunked = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    kind = chunked.type
    if pa.types.is_dictionary(kind):
        chunked = chunked.cast(kind.value_type)
        kind = chunked.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _as_string(chunked)
    # numbers, dates …: text as pandas writes it (nullable: Int64 17 → "17", not "17.0")
    return text_column(chunked.to_pandas(types_mapper=pd.ArrowDtype))


def _as_string(chunked: pa.ChunkedArray) -> pa.ChunkedArray:
    if chunked.type == pa.string():
        return chunked
    return pa.chunked_array([c.cast(pa.string()) for c in chunked.chunks], type=pa.string())


class ColumnMasker:
    """Masks Arrow columns by kind (phone, email, person, pseudonym) once per distinct value.

    :meth:`mask_many` encodes every column of one kind together, so a ``customer_id`` that
    appears in every golden table is pseudonymized once. Nulls stay null. Outputs equal the
    scalar rules (:func:`mask_phone`, :func:`mask_email`, :func:`mask_person_name`,
    :func:`pseudonym`).

    With ``remember`` the masked values are kept (Arrow arrays per kind) and reused by later
    calls, so tables masked one after the other still mask each distinct value once.

    Args:
        secret: the pseudonym key (required for the ``pseudonym`` kind only).
        remember: keep every kind's masked values for the next calls.
    """

    def __init__(self, secret: bytes | None = None, remember: bool = False) -> None:
        self._secret = secret
        self._memo: dict[str, _Remembered] | None = {} if remember else None

    def mask(self, values: ColumnLike, kind: str) -> pa.ChunkedArray:
        """Mask a column by kind.

        Args:
            values: the column (Arrow or pandas).
            kind: ``phone``, ``email``, ``person`` or ``pseudonym``.

        Returns:
            A ``string`` chunked array aligned with ``values``.

        Raises:
            ValueError: unknown kind, or ``pseudonym`` without a secret.
        """
        return self.mask_many([values], kind)[0]

    def mask_many(self, columns: Sequence[ColumnLike], kind: str) -> list[pa.ChunkedArray]:
        """Mask several columns of one kind, each distinct value once across all of them.

        Args:
            columns: the columns (Arrow or pandas).
            kind: ``phone``, ``email``, ``person`` or ``pseudonym``.

        Returns:
            One ``string`` chunked array per column, aligned with it.

        Raises:
            ValueError: unknown kind, or ``pseudonym`` without a secret.
        """
        batch = self._batch(kind)
        texts = [text_column(c) for c in columns]
        chunks = [chunk for text in texts for chunk in text.chunks if len(chunk)]
        if not chunks:
            return [pa.chunked_array([], type=pa.string()) for _ in texts]
        texts = [pa.chunked_array([c for c in t.chunks if len(c)], type=pa.string()) for t in texts]
        encoded = _one_dictionary(pa.chunked_array(chunks, type=pa.string()).dictionary_encode())
        if encoded.num_chunks != len(chunks):  # the rows are split back by chunk below
            raise RuntimeError("dictionary encoding changed the chunk layout")
        distinct = encoded.chunk(0).dictionary
        results = self._results(kind, distinct, batch)
        masked = iter(results.take(chunk.indices) for chunk in encoded.chunks)
        return [
            pa.chunked_array([next(masked) for _ in text.chunks], type=pa.string())
            for text in texts
        ]

    def mask_names_by_type(
        self, values: ColumnLike, enterprise: pa.ChunkedArray
    ) -> pa.ChunkedArray:
        """Individuals' names masked, enterprises' kept (``enterprise`` is a boolean per row).

        Rows whose type is unknown (null in ``enterprise``) are masked: the safe default.
        Only the distinct names of non-enterprise rows go through :func:`mask_person_name`.
        """
        text, keep, others = names_to_mask(values, enterprise)
        return keep_enterprise_names(text, keep, self.mask(others, "person"))

    def _results(
        self, kind: str, distinct: pa.Array, batch: Callable[[list[str]], list[str]]
    ) -> pa.Array:
        """The masked value of each distinct value (remembered ones looked up, not recomputed)."""
        if self._memo is None:
            return pa.array(batch(distinct.to_pylist()), type=pa.string())
        known = self._memo.setdefault(kind, _Remembered())
        return known.masked(distinct, batch)

    def _batch(self, kind: str) -> Callable[[list[str]], list[str]]:
        if kind in _SCALAR_RULES:
            rule = _SCALAR_RULES[kind]
            return lambda distinct: [rule(v) for v in distinct]
        if kind == "pseudonym":
            if not self._secret:
                raise ValueError("pseudonyms need a secret key")
            secret = self._secret
            return lambda distinct: pseudonyms(distinct, secret)
        raise ValueError(f"unknown masking kind {kind!r}")


class _Run:
    """Some remembered values of one kind, their masked values, and the values' 64-bit hashes
    sorted, with each hash's value position in the run."""

    def __init__(
        self, values: pa.Array, masked: pa.Array, hashes: np.ndarray, positions: np.ndarray
    ) -> None:
        self.values = values
        self.masked = masked
        self.hashes = hashes
        self.positions = positions

    @classmethod
    def of(cls, values: pa.Array, masked: pa.Array, hashes: np.ndarray) -> _Run:
        """A run of new values (``hashes`` in the values' order)."""
        order = np.argsort(hashes, kind="stable")
        return cls(values.cast(pa.string()), masked, hashes[order], order.astype(np.int64))

    def __len__(self) -> int:
        return len(self.values)

    def merged(self, newer: _Run) -> _Run:
        """One run of this one's values, then ``newer``'s (the sorted hashes merged in one
        pass: each of ``newer``'s goes after this run's equal ones)."""
        size = len(self.hashes) + len(newer.hashes)
        at = np.searchsorted(self.hashes, newer.hashes, side="right")
        at += np.arange(len(newer.hashes))
        mine = np.ones(size, dtype=bool)
        mine[at] = False
        hashes = np.empty(size, dtype=np.uint64)
        positions = np.empty(size, dtype=np.int64)
        hashes[at], hashes[mine] = newer.hashes, self.hashes
        positions[at], positions[mine] = newer.positions + len(self), self.positions
        return _Run(
            pa.concat_arrays([self.values, newer.values]),
            pa.concat_arrays([self.masked, newer.masked]),
            hashes,
            positions,
        )


class _Remembered:
    """Values masked so far (one kind) and their masked values, found again by a hash index.

    Looking a call's distinct values up costs their number, not the number remembered: an
    Arrow ``index_in`` against every remembered value rebuilt its hash table on each call
    (the full mart masks a row batch a call: calls × remembered values grew with the square
    of the data). The index is each value's 64-bit hash (DuckDB's ``hash``), sorted, with
    the value's position; a hit is checked against the value itself, and a value whose
    hash is shared (a collision) is looked up exactly among all remembered values.

    The values are kept in runs, each with its own index, older runs larger: a call's new
    values are a run of their own, merged with the run before while that one is not larger
    (a binary counter), so there are O(log n) runs and each value is copied O(log n) times.
    One array and one index grown by every call copied everything remembered on each call,
    the square of the data again (issue #22, branch ``fpub3``: ≈ 1 s at 1 M records, ≈ 100 s
    at 10 M).
    """

    def __init__(self) -> None:
        self._runs: list[_Run] = []
        self._db: duckdb.DuckDBPyConnection | None = None

    def masked(self, distinct: pa.Array, batch: Callable[[list[str]], list[str]]) -> pa.Array:
        """The masked value of each of ``distinct`` (distinct, non-null); new ones masked
        with ``batch`` and remembered."""
        hashes = self._hash(distinct)
        run_of, found = self._find(distinct, hashes)
        fresh = run_of < 0
        if fresh.any():
            values = distinct.filter(pa.array(fresh))
            masked = pa.array(batch(values.to_pylist()), type=pa.string())
            run_of[fresh] = len(self._runs)
            found[fresh] = np.arange(len(values))
            self._runs.append(_Run.of(values, masked, hashes[fresh]))
        out = self._gather(run_of, found)
        while len(self._runs) > 1 and len(self._runs[-2]) <= len(self._runs[-1]):
            newer = self._runs.pop()
            self._runs[-1] = self._runs[-1].merged(newer)
        return out

    def _gather(self, run_of: np.ndarray, found: np.ndarray) -> pa.Array:
        """The masked values at ``found`` of the runs ``run_of``, in the order given."""
        if not len(run_of):
            return pa.array([], type=pa.string())
        runs = np.unique(run_of)
        if len(runs) == 1:
            return self._runs[int(runs[0])].masked.take(pa.array(found))
        order = np.argsort(run_of, kind="stable")
        bounds = np.searchsorted(run_of[order], runs, side="right")
        starts = np.r_[0, bounds[:-1]]
        parts = [
            self._runs[int(r)].masked.take(pa.array(found[order[a:b]]))
            for r, a, b in zip(runs, starts, bounds, strict=True)
        ]
        back = np.empty(len(order), dtype=np.int64)
        back[order] = np.arange(len(order))
        return pa.concat_arrays(parts).take(pa.array(back))

    def _hash(self, values: pa.Array) -> np.ndarray:
        if self._db is None:
            self._db = duckdb.connect()
        self._db.register("_masked_values", pa.table({"v": values}))
        try:
            result = self._db.sql("SELECT hash(v) AS h FROM _masked_values").to_arrow_table()
        finally:
            self._db.unregister("_masked_values")
        return result.column("h").to_numpy().astype(np.uint64, copy=False)

    def _find(self, distinct: pa.Array, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each value's run and position in it; -1 and -1 when not remembered."""
        run_of = np.full(len(distinct), -1, dtype=np.int64)
        found = np.full(len(distinct), -1, dtype=np.int64)
        if not self._runs or not len(distinct):
            return run_of, found
        text = distinct.cast(pa.string())
        # sorted queries: the search walks each index in order
        wanted = np.argsort(hashes, kind="stable")
        for r, run in enumerate(self._runs):
            if not len(wanted):
                break
            query = hashes[wanted]
            at = np.minimum(np.searchsorted(run.hashes, query), len(run.hashes) - 1)
            hit = run.hashes[at] == query
            if not hit.any():
                continue
            rows, candidates = wanted[hit], run.positions[at[hit]]
            same = pc.equal(text.take(pa.array(rows)), run.values.take(pa.array(candidates)))
            same = np.asarray(same.fill_null(False), dtype=bool)
            run_of[rows[same]], found[rows[same]] = r, candidates[same]
            shared = rows[~same]  # the hash of another value: look it up exactly
            if len(shared):
                exact = pc.index_in(text.take(pa.array(shared)), value_set=run.values)
                at_exact = exact.fill_null(-1).to_numpy(zero_copy_only=False)
                known = at_exact >= 0
                run_of[shared[known]], found[shared[known]] = r, at_exact[known]
            wanted = wanted[run_of[wanted] < 0]
        return run_of, found


def names_to_mask(
    values: ColumnLike, enterprise: pa.ChunkedArray
) -> tuple[pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray]:
    """Split a name column: ``(text, keep, others)`` — ``others`` nulls the enterprise rows."""
    text = text_column(values)
    keep = _chunked(pc.fill_null(enterprise, False))
    others = _as_string(_chunked(pc.if_else(keep, pa.scalar(None, pa.string()), text)))
    return text, keep, others


def keep_enterprise_names(
    text: pa.ChunkedArray, keep: pa.ChunkedArray, masked: pa.ChunkedArray
) -> pa.ChunkedArray:
    """Enterprise rows keep their name; the others take the masked name."""
    return _as_string(_chunked(pc.if_else(keep, text, masked)))


def _one_dictionary(encoded: pa.ChunkedArray) -> pa.ChunkedArray:
    """The chunks of a dictionary-encoded column, sharing one dictionary."""
    first = encoded.chunk(0).dictionary
    same = all(
        chunk.dictionary is first
        or (
            len(chunk.dictionary) == len(first)
            and chunk.dictionary.buffers()[-1] is not None
            and chunk.dictionary.buffers()[-1].address == first.buffers()[-1].address
        )
        for chunk in encoded.chunks
    )
    return encoded if same else encoded.unify_dictionaries()


def _chunked(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


def lookup_types(
    customer_ids: ColumnLike, known_ids: pa.ChunkedArray, known_types: pa.ChunkedArray
) -> pa.ChunkedArray:
    """Each row's customer type from a ``customer_id → customer_type`` table (first row wins).

    Args:
        customer_ids: the rows' customer ids.
        known_ids: ids of the customers table (nulls and rows without a type are ignored).
        known_types: the customers' types, aligned with ``known_ids``.

    Returns:
        A ``string`` chunked array: the type, or null when the id is unknown.
    """
    ids, types = text_column(known_ids), text_column(known_types)
    valid = pc.and_(pc.is_valid(ids), pc.is_valid(types))
    ids, types = ids.filter(valid).combine_chunks(), types.filter(valid).combine_chunks()
    codes = ids.dictionary_encode()
    _, first = np.unique(codes.indices.to_numpy(zero_copy_only=False), return_index=True)
    order = pa.array(np.sort(first))
    unique_ids, unique_types = ids.take(order), types.take(order)
    rows = text_column(customer_ids)
    positions = pc.index_in(rows, value_set=unique_ids)
    return _as_string(_chunked(unique_types.take(positions.combine_chunks())))
