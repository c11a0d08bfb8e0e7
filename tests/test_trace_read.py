"""Reading Parquet fast (issue 18): the engine receives the same values whatever wrote the file.

write_synth's encodings (BYTE_STREAM_SPLIT ts, dictionary units/input_mb, LZ4) against the previous ones (zstd,
PLAIN floats), polars' and plain pyarrow's files; chunk boundaries, the origin, and exact row numbers in errors.
"""

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pfmbench.catalog import load_catalog
from pfmbench.errors import InputError
from pfmbench.trace import reader
from pfmbench.trace.reader import Unsorted, stream_chunks
from pfmbench.trace.schema import read_trace
from pfmbench.trace.synth import synthesize, write_synth

CAT = load_catalog()
KW = {"requests": 9000, "rate": 3.0, "alpha": 0.9, "seed": 5, "batch_rows": 2500}


def bits(a: np.ndarray) -> bytes:
    return a.dtype.str.encode() + a.tobytes()


def expected(table: pa.Table):
    """The engine arrays computed the plain way: catalog lookup per row, ts - first ts."""
    lookup = CAT.lookup()
    models = table.column("model").cast(pa.string()).to_pylist()
    tasks = table.column("task").cast(pa.string()).to_pylist()
    pair = np.array([lookup[(m.lower(), None if t is None else t.lower())] for m, t in zip(models, tasks, strict=True)],
                    np.int32)
    ts = table.column("ts").to_numpy()
    return ts - ts[0], pair, table.column("units").to_numpy(), table.column("input_mb").to_numpy()


def streamed(path, chunk_rows):
    chunks = list(stream_chunks(path, CAT, chunk_rows))
    cat = [np.concatenate([getattr(c, f) for c in chunks]) for f in ("ts", "pair", "units", "input_mb")]
    return chunks, cat


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("read")
    table = pa.Table.from_batches(list(synthesize(CAT, **KW)))
    out = {"new": d / "new.parquet", "old": d / "old.parquet", "polars": d / "polars.parquet",
           "plain": d / "plain.parquet"}
    write_synth(out["new"], CAT, **KW)
    # write_synth's settings before issue 18, one row group per batch as it wrote them
    with pq.ParquetWriter(out["old"], table.schema, compression="zstd", write_statistics=["ts"],
                          use_dictionary=["model", "task"]) as w:
        for b in synthesize(CAT, **KW):
            w.write_batch(b)
    pl.from_arrow(table).with_columns(pl.col("model", "task").cast(pl.String)).write_parquet(
        out["polars"], row_group_size=4000)
    plain = table.cast(pa.schema([("ts", pa.float64()), ("model", pa.string()), ("task", pa.string()),
                                  ("units", pa.float64()), ("input_mb", pa.float64())]))
    pq.write_table(plain, out["plain"], use_dictionary=False, compression="snappy", row_group_size=3000)
    return table, out


def test_new_writer_encodings(files):
    _, out = files
    md = pq.ParquetFile(out["new"]).metadata
    assert md.num_row_groups == 4  # one per batch, as before
    col = {md.row_group(0).column(i).path_in_schema: md.row_group(0).column(i) for i in range(md.num_columns)}
    assert "BYTE_STREAM_SPLIT" in col["ts"].encodings and col["ts"].compression == "ZSTD"
    for c in ("model", "task", "units", "input_mb"):
        assert "RLE_DICTIONARY" in col[c].encodings, c
    assert out["new"].stat().st_size < out["old"].stat().st_size


@pytest.mark.parametrize("chunk_rows", [1000, 2500, 4096, 1 << 18])
def test_every_writer_gives_the_same_arrays(files, chunk_rows):
    table, out = files
    want = expected(table)
    for name, path in out.items():
        _, got = streamed(path, chunk_rows)
        for g, w, f in zip(got, want, ("ts", "pair", "units", "input_mb"), strict=True):
            assert bits(g) == bits(w), (name, f)
    # and every reader of the new file sees the synthesized values
    assert pq.read_table(out["new"]).equals(pq.read_table(out["old"]))
    assert pl.read_parquet(out["new"]).equals(pl.read_parquet(out["old"]))
    whole = read_trace(out["new"], CAT)
    assert bits(whole.ts) == bits(want[0]) and bits(whole.pair) == bits(want[1])


@pytest.mark.parametrize("chunk_rows", [1000, 2500, 4096])
def test_chunks_cut_within_each_row_group(files, chunk_rows):
    # as iter_batches(batch_size=chunk_rows) one row group at a time cut them: row groups of 2,500 rows
    # (new, old) read whole or batch by batch, whichever the size; the last chunk of a group is shorter.
    _, out = files
    for name in ("new", "old"):
        chunks, _ = streamed(out[name], chunk_rows)
        md = pq.ParquetFile(out[name]).metadata
        sizes = [md.row_group(g).num_rows for g in range(md.num_row_groups)]
        assert sizes == [2500, 2500, 2500, 1500]
        want = [min(chunk_rows, n - s) for n in sizes for s in range(0, n, chunk_rows)]
        assert [len(c) for c in chunks] == want, name


def test_large_row_groups_are_read_batch_by_batch(files, monkeypatch):
    _, out = files
    calls = []
    real = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    streamed(out["new"], 1000)  # 2,500-row groups > one chunk: never decoded whole (bounded memory)
    assert calls == []
    streamed(out["new"], 2500)
    assert len(calls) == 4


def test_origin_not_zero_same_bits(tmp_path, files):
    table, _ = files
    shifted = table.set_column(0, "ts", pa.array(table.column("ts").to_numpy() + 1.7e9 + 0.123))
    p = tmp_path / "shifted.parquet"
    pq.write_table(shifted, p, row_group_size=2000)
    chunks, (ts, *_) = streamed(p, 700)
    raw = shifted.column("ts").to_numpy()
    assert chunks[0].origin == raw[0] and bits(ts) == bits(raw - raw[0])


def test_minus_zero_origin(tmp_path):
    # -0.0 - (-0.0) is +0.0: the origin shortcut must not apply to -0.0
    t = pa.table({"ts": [-0.0, -0.0, 1.0], "model": ["gpt3-13b"] * 3})
    p = tmp_path / "mz.parquet"
    pq.write_table(t, p)
    (c,) = stream_chunks(p, CAT, 10)
    assert bits(c.ts) == bits(np.array([-0.0, -0.0, 1.0]) - -0.0)


def test_bad_rows_are_named_exactly(tmp_path, files):
    table, _ = files
    for col, row, value, msg in [("model", 6543, "no-such-model", "unknown model"), ("units", 4321, -1.0, "units is -1.0"),
                                 ("ts", 2600, float("nan"), "ts is nan"), ("input_mb", 8999, 2e6, "input_mb is")]:
        vals = table.column(col).cast(pa.string() if col == "model" else pa.float64()).to_pylist()
        vals[row] = value
        bad = table.set_column(table.schema.get_field_index(col), col, pa.array(vals))
        for rg in (2500, 1000):  # multi-chunk groups (batch by batch) and one-chunk groups (read whole)
            p = tmp_path / f"bad-{col}-{rg}.parquet"
            pq.write_table(bad, p, row_group_size=rg)
            with pytest.raises(InputError, match=rf"row {row}: {msg}"):
                list(stream_chunks(p, CAT, 1000))


def test_null_task_and_null_model(tmp_path):
    t = pa.table({"ts": [0.0, 1.0, 2.0], "model": ["gpt3-13b", "GPT3-13B", None], "task": pa.array([None, "translation", None], pa.string())})
    p = tmp_path / "nulls.parquet"
    pq.write_table(t.slice(0, 2), p)
    (c,) = stream_chunks(p, CAT, 10)
    assert c.pair.tolist() == [CAT.lookup()[("gpt3-13b", None)], CAT.lookup()[("gpt3-13b", "translation")]]
    pq.write_table(t, p)
    with pytest.raises(InputError, match="row 2: model is null"):
        list(stream_chunks(p, CAT, 10))


def test_unsorted_across_and_within_chunks(tmp_path):
    for ts in ([0.0, 1.0, 2.0, 1.5], [0.0, 2.0, 1.0, 3.0]):
        p = tmp_path / "u.parquet"
        pq.write_table(pa.table({"ts": ts, "model": ["gpt3-13b"] * 4}), p, row_group_size=2)
        with pytest.raises(Unsorted):
            list(stream_chunks(p, CAT, 2))


def test_whole_row_group_threshold_is_one_chunk():
    # more would hold decoded row groups alive beside the kernel (benchmarks/README.md, "Reading Parquet")
    assert reader.WHOLE_ROW_GROUP_CHUNKS == 1
