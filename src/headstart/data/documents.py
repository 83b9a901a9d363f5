"""Inputs to documents: a text file is one document; a jsonl line or a parquet row is one.

Which files are read (the rule `headstart prepare --help` states): a file named on --input is read
whatever its case (`.TXT`); below a folder, every file with a known extension, case-insensitive --
text (.txt, .md, .rst: one document each), .jsonl and .parquet, each also gzipped (.txt.gz, .jsonl.gz)
-- or, with --glob, every file whose name or path below the folder matches one of the patterns (read as
text unless its extension says otherwise). Hidden files and folders (.git/, .cache/) are never read.
Text is decoded with --encoding (UTF-8 by default; a byte-order mark is dropped). All text files are
checked to decode before any work: a named file that does not is an error, a file found in a folder
that does not is skipped, and the skipped files are counted in one line on stderr.

Documents are the unit of the train/validation split, so their identity must be stable: a
document is (source name, index among that source's non-blank documents), where the source
name does not depend on where the corpus happens to sit on disk.
"""

from __future__ import annotations

import codecs
import fnmatch
import gzip
import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from headstart.errors import UsageError

TEXT_SUFFIXES = (".txt", ".md", ".rst")  # one file, one document
KINDS = {**dict.fromkeys(TEXT_SUFFIXES, "txt"), ".jsonl": "jsonl", ".parquet": "parquet"}
GZIP = ".gz"  # text and jsonl files may be gzipped
SUFFIXES = (*KINDS, GZIP)
HF_PREFIX = "hf:"
CORPUS_PREFIX = "corpus:"  # corpus:austen = that source of the offline corpus (`headstart assets`)
CHUNK = 1 << 24  # bytes decoded at a time when checking a file's encoding


@dataclass(frozen=True)
class Source:
    """One input file or Hugging Face dataset.

    `path` is where it is read from; `name` is what the split hashes: the file name (or the path
    below a folder given as input), or the dataset spec, so the split is the same on any machine.
    """

    path: str
    name: str
    kind: str  # "txt" | "jsonl" | "parquet" | "hf"
    encoding: str = "utf-8"

    @property
    def gzipped(self) -> bool:
        return self.path.lower().endswith(GZIP)


def _kind_of(path: Path) -> str | None:
    """txt, jsonl or parquet by the extension (any case, below a .gz), or None for any other file."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == GZIP:
        suffixes.pop()
        if suffixes and suffixes[-1] == ".parquet":
            return None  # parquet compresses itself
    return KINDS.get(suffixes[-1]) if suffixes else None


def _file_source(path: Path, name: str, encoding: str, kind: str | None = None) -> Source:
    kind = kind or _kind_of(path)
    if kind is None:
        raise UsageError(
            f"input {path} has an unknown file type {''.join(path.suffixes) or '(none)'!r}",
            f"give {', '.join(KINDS)} files (or gzipped), a folder with --glob, or {HF_PREFIX}DATASET",
        )
    return Source(path=str(path), name=name, kind=kind, encoding=encoding)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _chosen(relative: Path, globs: list[str] | None) -> bool:
    if not globs:
        return _kind_of(relative) is not None
    names = (relative.name.lower(), relative.as_posix().lower())
    return any(fnmatch.fnmatchcase(n, g.lower()) for g in globs for n in names)


def _folder_sources(folder: Path, globs: list[str] | None, encoding: str) -> list[Source]:
    """The chosen files below a folder, in sorted order."""
    chosen = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p.relative_to(folder))
                    and _chosen(p.relative_to(folder), globs))
    if not chosen:
        which = f"files matching {' '.join(globs)}" if globs else f"{', '.join(KINDS)} files"
        raise UsageError(f"input folder {folder} holds no {which} (hidden folders are not read)",
                         "point at the files, or choose them with --glob")
    return [_file_source(p, p.relative_to(folder).as_posix(), encoding, _kind_of(p) or "txt") for p in chosen]


def _open_text(source: Source) -> IO[str]:
    """The file as text: gunzipped, decoded, without a UTF-8 byte-order mark."""
    encoding = "utf-8-sig" if codecs.lookup(source.encoding).name == "utf-8" else source.encoding
    if source.gzipped:
        return gzip.open(source.path, "rt", encoding=encoding)
    return open(source.path, encoding=encoding)


def _undecodable(source: Source) -> UnicodeDecodeError | None:
    """Why a text or jsonl file does not decode with its encoding (None: it does), read in chunks."""
    if source.kind not in ("txt", "jsonl"):
        return None
    decoder = codecs.getincrementaldecoder(source.encoding)()
    try:
        with gzip.open(source.path, "rb") if source.gzipped else open(source.path, "rb") as fh:
            offset = 0
            while chunk := fh.read(CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    return UnicodeDecodeError(err.encoding, err.object, offset + err.start, offset + err.end,
                                              err.reason)
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as err:
        return err
    except (OSError, EOFError) as err:
        raise UsageError(f"input {source.path} cannot be read ({err})", "check the file") from None
    return None


def _hf_source(spec: str) -> Source:
    if importlib.util.find_spec("datasets") is None:
        raise UsageError(
            f"input {spec} is a Hugging Face dataset, but the `datasets` package is not installed",
            "pip install 'headstart[hf]' (or datasets), or give local .txt/.jsonl/.parquet files",
        )
    return Source(path=spec, name=spec[len(HF_PREFIX) :], kind="hf")


def check_encoding(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UsageError(f"--encoding {encoding!r} is not a known text encoding",
                         "use utf-8, latin-1, cp1252, utf-16, ...") from None


def resolve_sources(inputs: list[str | Path | Source], globs: list[str] | None = None,
                    encoding: str = "utf-8") -> list[Source]:
    """Check every input up front (exists, known type, decodes) so that a bad one fails before any work.

    Sources already resolved pass through unchanged. Files below a folder that do not decode are
    skipped, and counted in one line on stderr.
    """
    check_encoding(encoding)
    if all(isinstance(item, Source) for item in inputs):
        return list(inputs)  # checked when they were resolved
    sources: list[Source] = []
    named: set[str] = set()  # files given by name: one that does not decode is an error, not a skip
    for item in inputs:
        if isinstance(item, Source):
            sources.append(item)
            continue
        item = str(item)
        path = Path(item)
        if item.startswith(HF_PREFIX) and not path.exists():
            sources.append(_hf_source(item))
            continue
        if item.startswith(CORPUS_PREFIX) and not path.exists():
            from headstart.assets import corpus_dir

            path = corpus_dir(item.removeprefix(CORPUS_PREFIX))
        if path.is_dir():
            sources.extend(_folder_sources(path, globs, encoding))
        elif path.is_file():
            sources.append(_file_source(path, path.name, encoding))
            named.add(str(path.resolve()))
        else:
            raise missing_input(item)
    return _decodable(_first_of_each(sources), named, encoding)


def missing_input(item: str) -> UsageError:
    return UsageError(f"input {item} does not exist", "check the path given to --input")


def check_input_paths(items: list[str]) -> None:
    """Every input that names a local path exists: checked before any work (hf: and corpus: ones are read later)."""
    for item in items:
        if not item.startswith((HF_PREFIX, CORPUS_PREFIX)) and not Path(item).exists():
            raise missing_input(item)


def _decodable(sources: list[Source], named: set[str], encoding: str) -> list[Source]:
    """The sources whose text decodes; a named file that does not is an error, others are skipped and counted."""
    from headstart.progress import progress_bar

    sizes = {s.path: Path(s.path).stat().st_size for s in sources if s.kind in ("txt", "jsonl")}
    kept, skipped = [], []
    with progress_bar(total=sum(sizes.values()), desc="checking the text", unit="B", unit_scale=True) as bar:
        for source in sources:
            err = _undecodable(source)
            if err is not None and str(Path(source.path).resolve()) in named:
                raise UsageError(f"{source.path} is not {encoding.upper()} text ({err.reason} at byte {err.start})",
                                 "convert it, or pass its encoding with --encoding (e.g. latin-1)")
            (kept if err is None else skipped).append(source)
            bar.update(sizes.get(source.path, 0))
    if skipped:
        print(f"prepare: skipped {len(skipped)} of the files found in folders, not {encoding.upper()} text (first: "
              f"{skipped[0].path}); pass their encoding with --encoding to read them", file=sys.stderr)
    return kept


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


def _read_txt(source: Source) -> Iterator[str]:
    with _open_text(source) as fh:
        text = fh.read()
    if _is_text(text, source.path):
        yield text


def _read_jsonl(source: Source, field: str) -> Iterator[str]:
    path = source.path
    with _open_text(source) as fh:
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
        return _read_txt(source)
    if source.kind == "jsonl":
        return _read_jsonl(source, text_field)
    if source.kind == "parquet":
        return _read_parquet(source.path, text_field)
    from headstart.data.hub import read_hf

    return read_hf(source.name, text_field, _is_text)
