"""The batch's pair rows held as Parquet bytes instead of a frame (issue #19: memory at 1M).

The batch scores every customer's pairs `CHUNK_CUSTOMERS` at a time and never rescores a visit,
so it needs a pair's model columns only to explain the pairs it shows and to write the run's
candidate_index/pairs.parquet. `StoredPairs` appends each scored chunk to an in-memory Parquet
file as one row group: at 1M customers the pairs are about 21M rows, 5.8 GB as a frame and a
few hundred MB compressed. `take` reads back the rows asked for, a row group at a time (the last
one is kept: the batch explains customers in the order it scored them), and `parquet_bytes` is
the run's pairs.parquet as it stands. The service's own index keeps a frame (visits rescore from
it; `serving.index_files.read_index`).
"""

from __future__ import annotations

import io
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class JoinedPairs:
    """Pair rows appended a chunk at a time and joined into one frame (a service's index)."""

    def __init__(self) -> None:
        self._columns: dict[str, list[pd.Series]] = {}

    def append(self, chunk: pd.DataFrame) -> None:
        """Add `chunk`'s rows; each column is copied on its own, so the chunk is freed with it."""
        for name in chunk.columns:
            self._columns.setdefault(name, []).append(
                pd.Series(chunk[name].array.copy(), copy=False)
            )

    def finish(self) -> pd.DataFrame:
        """The rows as one frame, its columns joined one at a time and left unconsolidated
        (`pd.concat` of whole chunks held every pair twice)."""
        columns = self._columns
        for name, parts in columns.items():
            columns[name] = pd.concat(parts, ignore_index=True)  # the pieces are freed here
        return pd.DataFrame(columns, copy=False)


class StoredPairs:
    """Pair rows appended a chunk at a time, kept as one Parquet file in memory."""

    def __init__(self) -> None:
        self._sink = io.BytesIO()
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._starts = [0]  # first row of each row group, then the row count
        self._bytes: bytes | None = None
        self._cached: tuple[int, pd.DataFrame] | None = None
        self._file: pq.ParquetFile | None = None  # the finished file, its footer read once
        self._lock = threading.Lock()  # the kept row group is swapped by one reader at a time
        self._empty = pd.DataFrame()
        self.columns = pd.Index([])

    def append(self, chunk: pd.DataFrame) -> None:
        """Add `chunk`'s rows (the same columns every time) as one row group."""
        if self._bytes is not None:
            raise RuntimeError("pairs were finished; nothing can be appended")
        if self._writer is None and not len(chunk):
            self._empty = chunk  # the columns of a file no row reaches
            return
        table = pa.Table.from_pandas(chunk, schema=self._schema, preserve_index=False)
        if self._writer is None:  # a text column with no value yet is text, not Parquet's null
            fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                      for f in table.schema]  # fmt: skip
            self._schema = pa.schema(fields, metadata=table.schema.metadata)
            self.columns, table = chunk.columns, table.cast(self._schema)
            self._writer = pq.ParquetWriter(self._sink, self._schema)
        if len(table):
            self._writer.write_table(table, row_group_size=len(table))
            self._starts.append(self._starts[-1] + len(table))

    def finish(self) -> StoredPairs:
        """Close the file: rows can be read back and the bytes written."""
        if self._bytes is None:
            if self._writer is None:  # no row: a file of the columns (none when nothing came)
                self.columns = self._empty.columns
                self._empty.to_parquet(self._sink, index=False)
            else:
                self._writer.close()
            self._bytes, self._sink = self._sink.getvalue(), None
        return self

    def parquet_bytes(self) -> bytes:
        """The rows as one Parquet file (the run's candidate_index/pairs.parquet)."""
        return self.finish()._bytes

    def __len__(self) -> int:
        return self._starts[-1]

    def take(self, rows: np.ndarray) -> pd.DataFrame:
        """The rows at positions `rows`, in that order (index 0..len(rows) - 1)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(
                f"pair rows must be in 0..{len(self) - 1}, got {rows.min()}..{rows.max()}"
            )
        if not len(rows):
            return (
                pd.DataFrame() if self._schema is None else self._schema.empty_table().to_pandas()
            )
        group = np.searchsorted(self._starts, rows, side="right") - 1
        picked, parts = [], []
        for g in np.unique(group):  # loop over the row groups touched (usually one)
            at = np.flatnonzero(group == g)
            picked.append(at)
            parts.append(self._group(int(g)).iloc[rows[at] - self._starts[g]])
        out = pd.concat(parts) if len(parts) > 1 else parts[0]
        if len(parts) > 1:  # back to the order asked for
            out = out.iloc[np.argsort(np.concatenate(picked), kind="stable")]
        return out.reset_index(drop=True)

    def _group(self, g: int) -> pd.DataFrame:
        """Row group `g` as a frame; the last one read is kept (the previous freed first)."""
        with self._lock:
            if self._cached is None or self._cached[0] != g:
                self._cached = None
                if self._file is None:
                    self._file = pq.ParquetFile(pa.BufferReader(self.parquet_bytes()))
                self._cached = (g, self._file.read_row_group(g).to_pandas())
            return self._cached[1]
