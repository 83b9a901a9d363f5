"""`headstart assets`: fill the offline cache with the teacher, tokenizers and corpora.

Each asset is fetched once; rerunning skips the finished ones, so it is safe in CI set-up.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from headstart.assets import GROUPS, cache_dir, fetch_assets, selected


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", action="append", choices=GROUPS, metavar="{" + ",".join(GROUPS) + "}",
                        help="fetch only this group (repeatable; default: all)")
    parser.add_argument("--extras", action="store_true",
                        help="add the extra corpora: fortunes and the Python 3.11 docs")
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache folder (default: $HEADSTART_CACHE, else ~/.cache/headstart)")


def run(args: argparse.Namespace) -> dict:
    cache = args.cache.expanduser() if args.cache else cache_dir()
    return fetch_assets(selected(args.only, args.extras), cache)
