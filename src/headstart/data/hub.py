"""Hugging Face datasets as a corpus source, streamed: `hf:NAME` or `hf:NAME:CONFIG`, split "train".

The rows arrive one by one from the hub (or the local `datasets` cache), so a corpus of any size
needs memory for one row at a time; prepare's passes (measuring, tokenizing) each stream it again.
`datasets` is an optional extra (`pip install headstart[hf]`).
"""

from __future__ import annotations

from collections.abc import Iterator

from headstart.errors import UsageError

RETRY = "run the same command again: prepare goes on from the last batch it wrote"


def read_hf(spec: str, field: str, is_text) -> Iterator[str]:
    """The non-blank `field` values of a streamed dataset, in its order; `is_text(value, where)` says which count."""
    import datasets

    name, _, config = spec.partition(":")
    try:
        rows = iter(datasets.load_dataset(name, config or None, split="train", streaming=True))
    except Exception as err:  # datasets raises many types for a name it cannot fetch
        raise UsageError(f"could not open Hugging Face dataset {spec!r} ({type(err).__name__}: {err})",
                         "check the name (and CONFIG, as hf:NAME:CONFIG) and the network") from None
    index = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as err:  # a connection dropped halfway through the stream
            raise UsageError(f"reading Hugging Face dataset {spec!r} stopped at row {index} ({type(err).__name__})",
                             RETRY) from None
        if field not in row:
            raise UsageError(f"dataset {spec!r} has no column {field!r} (columns: {', '.join(row)})",
                             "name the text column with --text-field")
        if is_text(row[field], f"dataset {spec!r} row {index} column {field!r}"):
            yield row[field]
        index += 1
