"""The home edge of each request in a multi-edge scenario (MODEL.md §9.4; README, "Several edge servers").

In this order, the first that applies:
  edge   a trace column naming the edge server (a `[[edges]]` name, exactly as spelt there);
  user   a trace column (string or integer): the edge is blake2b(user as UTF-8 text, 8-byte digest), read as
         a big-endian unsigned integer, modulo the number of edges, with the edges in `[[edges]]` order.
         An integer user is hashed as its decimal text (42 -> "42"). Stable across runs, platforms and
         Python's hash seed, and the same function the synthesizer uses for `synth --users N --edges N`;
  neither  round-robin in time order: the i-th request (from 0, sorted by time, ties in file order) goes to
         edge i mod N.
Without `[[edges]]` these columns are ignored.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, shown

HOME_COLUMNS = ("edge", "user")


def user_edge(user: str, n_edges: int) -> int:
    """The home edge index of a user: blake2b-64 of its UTF-8 text, modulo the number of edges."""
    digest = hashlib.blake2b(user.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_edges


def _codes(col) -> tuple[np.ndarray, list]:
    """(index per row into the distinct values, -1 for null; the distinct values as text)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        values = col.dictionary
        idx = col.indices
    else:
        enc = pc.dictionary_encode(col)
        values, idx = enc.dictionary, enc.indices
    if pa.types.is_integer(values.type):
        text = [str(v) for v in values.to_pylist()]
    else:
        text = values.cast(pa.string()).to_pylist()
    idx = pc.fill_null(idx.cast(pa.int32()), -1).to_numpy(zero_copy_only=False)
    return idx.astype(np.int32, copy=False), text


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    return "integer" if pa.types.is_integer(t) else "other"


def check_home_columns(schema: pa.Schema, src: str) -> None:
    """An `edge` column must be text, a `user` column text or whole numbers."""
    for c in HOME_COLUMNS:
        if schema.names.count(c) > 1:
            raise InputError(f"{src}: column {c!r} appears more than once")
    if "edge" in schema.names and _kind(schema.field("edge").type) != "string":
        raise InputError(f"{src}: column 'edge' has type {schema.field('edge').type}, expected a string (an edge name)")
    if "user" in schema.names and _kind(schema.field("user").type) == "other":
        raise InputError(f"{src}: column 'user' has type {schema.field('user').type}, expected a string or integer")


def home_edges(table: pa.Table, names: list[str], order: np.ndarray, src: str) -> tuple[np.ndarray, str]:
    """(the home edge index of each row, in file order; how it was assigned: "edge column", "user hash" or
    "round-robin"). `order`: the rows in replay order (time, ties in file order). One line naming the first
    bad row (numbered from 0, as in `pfmbench trace validate`) on error."""
    check_home_columns(table.schema, src)
    n = table.num_rows
    if "edge" in table.column_names:
        idx, values = _codes(table.column("edge"))
        index = {name: i for i, name in enumerate(names)}
        lut = np.array([index.get(v, -1) for v in values] + [-1], dtype=np.int32)  # the last: null
        home = lut[idx]
        bad = np.flatnonzero(home < 0)
        if bad.size:
            r = int(bad[0])
            what = "null" if idx[r] < 0 else f"{shown(values[idx[r]])}, not an edge of the scenario"
            more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
            raise InputError(f"{src}: row {r}: edge is {what} (edges: {', '.join(names[:8])}"
                             f"{', ...' if len(names) > 8 else ''}){more}")
        return home, "edge column"
    if "user" in table.column_names:
        idx, values = _codes(table.column("user"))
        bad = np.flatnonzero(idx < 0)
        if bad.size:
            more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
            raise InputError(f"{src}: row {int(bad[0])}: user is null (every request needs a user to find its "
                             f"home edge){more}")
        lut = np.array([user_edge(v, len(names)) for v in values], dtype=np.int32)
        return lut[idx] if n else np.zeros(0, np.int32), "user hash"
    home = np.empty(n, np.int32)
    home[order] = np.arange(n, dtype=np.int64) % len(names)
    return home, "round-robin"
