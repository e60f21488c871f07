"""Parquet tables: documented schemas and atomic writes.

Every table the pipeline writes is declared once as a :class:`TableSchema` (columns, types, units,
meaning) in the module that produces it, and registered here with :func:`register`.  Writers call
:func:`write_table`, which checks the frame against the schema, casts it, and writes atomically
(temporary name in the same folder, then ``os.replace``) so that a killed job never leaves a file
that looks complete.  ``docs/outputs.md`` is generated from the registry
(``cmr-atlas schemas --markdown``) and a test keeps it in sync.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int": pa.int64(),
    "int32": pa.int32(),
    "float": pa.float64(),
    "float32": pa.float32(),
    "bool": pa.bool_(),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # key of _TYPES
    description: str
    unit: str = ""
    nullable: bool = True


@dataclass(frozen=True)
class TableSchema:
    """A documented table: ``name`` is its path under the output folder without ``.parquet``."""

    name: str
    description: str
    row: str  # what one row is, e.g. "one exam"
    columns: tuple[Column, ...]
    group: str = "outputs"  # "outputs", "truth", ...

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, _TYPES[c.type], nullable=c.nullable) for c in self.columns]
        )

    def empty(self) -> pd.DataFrame:
        return self.arrow_schema().empty_table().to_pandas()


_REGISTRY: dict[tuple[str, str], TableSchema] = {}


def register(schema: TableSchema) -> TableSchema:
    """Record a schema so that it is documented; returns it for use as a module constant."""
    key = (schema.group, schema.name)
    if key in _REGISTRY and _REGISTRY[key] != schema:
        raise ValueError(f"table {schema.group}/{schema.name} declared twice with different schemas")
    _REGISTRY[key] = schema
    for c in schema.columns:
        if c.type not in _TYPES:
            raise ValueError(f"{schema.name}.{c.name}: unknown type {c.type!r}")
    return schema


def registered() -> list[TableSchema]:
    """All declared schemas, after importing every module that declares some."""
    import importlib

    for mod in schema_modules():
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a stage not built yet
            if exc.name != mod:
                raise
    return sorted(_REGISTRY.values(), key=lambda s: (s.group, s.name))


@functools.lru_cache(maxsize=1)
def schema_modules() -> tuple[str, ...]:
    """Modules of the package that declare tables (their source calls ``register(``), so that
    docs cover all of them; found by reading the package's sources, so that this core module
    names no pipeline."""
    pkg = Path(__file__).resolve().parents[1]
    return tuple(sorted(
        ".".join(p.relative_to(pkg.parent).with_suffix("").parts)
        for p in pkg.rglob("*.py")
        if p != Path(__file__).resolve() and "register(" in p.read_text(encoding="utf-8")
    ))


class SchemaError(ValueError):
    """A frame does not match its declared schema."""


def conform(df: pd.DataFrame, schema: TableSchema) -> pa.Table:
    """Check ``df`` has exactly the schema's columns and cast it to the schema's types."""
    missing = [c for c in schema.column_names if c not in df.columns]
    extra = [c for c in df.columns if c not in schema.column_names]
    if missing or extra:
        raise SchemaError(f"table {schema.name}: missing columns {missing}, unexpected {extra}")
    df = df[schema.column_names]
    for c in schema.columns:
        if not c.nullable and df[c.name].isna().any():
            raise SchemaError(f"table {schema.name}: column {c.name} has nulls")
    try:
        return pa.Table.from_pandas(df, schema=schema.arrow_schema(), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(f"table {schema.name}: {exc}") from exc


def write_table(df: pd.DataFrame, path: str | os.PathLike, schema: TableSchema,
                row_group_rows: int | None = None) -> Path:
    """Write ``df`` as parquet at ``path``, atomically, after checking it against ``schema``;
    ``row_group_rows``: rows per row group (None: pyarrow's default, about a million), smaller for
    a large table whose readers filter on sorted columns (the row groups' statistics then let
    them skip the rest)."""
    table = conform(df, schema)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_table(path: str | os.PathLike, schema: TableSchema | None = None) -> pd.DataFrame:
    """Read a parquet table; with ``schema``, check its columns."""
    df = pq.read_table(path).to_pandas()
    if schema is not None:
        conform(df, schema)
    return df


def concat_tables(paths: list[str | os.PathLike], schema: TableSchema) -> pd.DataFrame:
    """Concatenate per-shard tables into one cohort table (empty frame when there are none)."""
    frames = [read_table(p) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return schema.empty()
    return pd.concat(frames, ignore_index=True)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A file opened for writing under a temporary name, renamed to ``path`` once complete, so a
    reader (or a job killed half-way) never sees a partial file; streamed, without the bytes in
    memory first (an image cache file is tens of MB, and building it in a BytesIO cost more than
    writing it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes atomically (:func:`atomic_file`)."""
    with atomic_file(path) as fh:
        fh.write(data)
    return Path(path)


def schemas_markdown() -> str:
    """Markdown documentation of every registered table (the content of docs/outputs.md)."""
    lines = [
        "# Tables written by cmr-atlas",
        "",
        "Generated by `cmr-atlas schemas --markdown > docs/outputs.md`; do not edit by hand.",
        "All tables are parquet (zstd). `exam_id` is the key; no table holds patient identifiers.",
        "",
    ]
    for group in sorted({s.group for s in registered()}):
        lines += [f"## {group}", ""]
        for s in [s for s in registered() if s.group == group]:
            lines += [f"### `{s.name}.parquet`", "", f"{s.description} One row per {s.row}.", ""]
            lines += ["| column | type | unit | description |", "|---|---|---|---|"]
            for c in s.columns:
                lines.append(f"| `{c.name}` | {c.type} | {c.unit} | {c.description} |")
            lines.append("")
    return "\n".join(lines)
