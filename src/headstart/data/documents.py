"""Inputs to documents: a .txt file is one document; a jsonl line or a parquet row is one.

Documents are the unit of the train/validation split, so their identity must be stable: a
document is (source name, index among that source's non-blank documents), where the source
name does not depend on where the corpus happens to sit on disk.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from headstart.errors import UsageError

SUFFIXES = (".txt", ".jsonl", ".parquet")
HF_PREFIX = "hf:"
CORPUS_PREFIX = "corpus:"  # corpus:austen = that source of the offline corpus (`headstart assets`)


@dataclass(frozen=True)
class Source:
    """One input file or Hugging Face dataset.

    `path` is where it is read from; `name` is what the split hashes: the file name (or the path
    below a folder given as input), or the dataset spec, so the split is the same on any machine.
    """

    path: str
    name: str
    kind: str  # "txt" | "jsonl" | "parquet" | "hf"


def _file_source(path: Path, name: str) -> Source:
    if path.suffix not in SUFFIXES:
        raise UsageError(
            f"input {path} has an unknown file type {path.suffix or '(none)'!r}",
            f"give {', '.join(SUFFIXES)} files, or {HF_PREFIX}DATASET for a Hugging Face dataset",
        )
    return Source(path=str(path), name=name, kind=path.suffix[1:])


def _folder_sources(folder: Path) -> list[Source]:
    """Every supported file below a folder, in sorted order; other files (READMEs) are skipped."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise UsageError(f"input folder {folder} holds no {', '.join(SUFFIXES)} files", "point at the files")
    return [_file_source(p, p.relative_to(folder).as_posix()) for p in files]


def _hf_source(spec: str) -> Source:
    if importlib.util.find_spec("datasets") is None:
        raise UsageError(
            f"input {spec} is a Hugging Face dataset, but the `datasets` package is not installed",
            "pip install 'headstart[hf]' (or datasets), or give local .txt/.jsonl/.parquet files",
        )
    return Source(path=spec, name=spec[len(HF_PREFIX) :], kind="hf")


def resolve_sources(inputs: list[str | Path]) -> list[Source]:
    """Check every input up front (exists, known type) so that a bad one fails before any work."""
    sources: list[Source] = []
    for item in map(str, inputs):
        path = Path(item)
        if item.startswith(HF_PREFIX) and not path.exists():
            sources.append(_hf_source(item))
        elif item.startswith(CORPUS_PREFIX) and not path.exists():
            from headstart.assets import corpus_dir

            sources.extend(_folder_sources(corpus_dir(item.removeprefix(CORPUS_PREFIX))))
        elif path.is_dir():
            sources.extend(_folder_sources(path))
        elif path.is_file():
            sources.append(_file_source(path, path.name))
        else:
            raise UsageError(f"input {item} does not exist", "check the path given to --input")
    return _first_of_each(sources)


def _first_of_each(sources: list[Source]) -> list[Source]:
    """A file named twice (directly and through its folder) is read once, at its first place."""
    seen: set[str] = set()
    unique = []
    for source in sources:
        key = source.path if source.kind == "hf" else str(Path(source.path).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(source)
    return unique


def _is_text(value: object, where: str) -> bool:
    """True for a non-blank string; blanks and nulls are skipped, anything else is an error."""
    if value is None:
        return False
    if not isinstance(value, str):
        raise UsageError(f"{where} holds {type(value).__name__}, not text", "point --text-field at a text field")
    return bool(value) and not value.isspace()


def _read_txt(path: str) -> Iterator[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})", "convert it to UTF-8") from err
    if _is_text(text, path):
        yield text


def _read_jsonl(path: str, field: str) -> Iterator[str]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise UsageError(f"{path}:{lineno} is not valid JSON ({err.msg})", "fix or remove that line") from err
            if not isinstance(record, dict) or field not in record:
                raise UsageError(f"{path}:{lineno} has no field {field!r}", "name the text field with --text-field")
            if _is_text(record[field], f"{path}:{lineno} field {field!r}"):
                yield record[field]


def _read_parquet(path: str, field: str) -> Iterator[str]:
    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise UsageError(f"{path} is not a readable parquet file ({err})", "check the file") from err
    if field not in table.schema_arrow.names:
        raise UsageError(
            f"{path} has no column {field!r} (columns: {', '.join(table.schema_arrow.names)})",
            "name the text column with --text-field",
        )
    for batch in table.iter_batches(columns=[field], batch_size=1024):
        for value in batch.column(0).to_pylist():
            if _is_text(value, f"{path} column {field!r}"):
                yield value


def read_documents(source: Source, text_field: str = "text") -> Iterator[str]:
    """The source's non-blank documents, in their order in the file."""
    if source.kind == "txt":
        return _read_txt(source.path)
    if source.kind == "jsonl":
        return _read_jsonl(source.path, text_field)
    if source.kind == "parquet":
        return _read_parquet(source.path, text_field)
    from headstart.data.hub import read_hf

    return read_hf(source.name, text_field, _is_text)
