"""Text to token shards, and loaders over them.

Public API: `prepare_data` writes a data folder; `load_manifest`, `check_tokenizer_matches`
`data_identity` and `TokenWindows` read it; `load_tokenizer` and `tokenizer_fingerprint` tie data to models.
"""

from headstart.data.loader import TokenWindows
from headstart.data.prepare import prepare_data
from headstart.data.shards import check_tokenizer_matches, data_identity, load_manifest, open_split
from headstart.data.tokenizer import eos_id, load_tokenizer, tokenizer_fingerprint, train_bpe, vocab_size

__all__ = [
    "TokenWindows",
    "check_tokenizer_matches",
    "data_identity",
    "eos_id",
    "load_manifest",
    "load_tokenizer",
    "open_split",
    "prepare_data",
    "tokenizer_fingerprint",
    "train_bpe",
    "vocab_size",
]
