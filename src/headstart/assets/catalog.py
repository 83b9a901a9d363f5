"""Everything `headstart assets` can fetch, grouped the way `--only` selects it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.assets import corpus, evalsets, teacher, tokenizers
from headstart.assets.cache import Builder, ensure_asset


@dataclass(frozen=True)
class Asset:
    """One cache folder `<cache>/<kind>/<name>/`, in the `--only` group `group`."""

    group: str
    kind: str
    name: str
    build: Builder
    extra: bool = False


ASSETS = (
    Asset("teacher", "models", "smollm2-135m", teacher.build_smollm2),
    Asset("tokenizers", "tokenizers", "gpt2", tokenizers.build_gpt2),
    Asset("tokenizers", "tokenizers", "neox", tokenizers.build_neox),
    *(Asset("corpus", "corpus", s.name, s.build, s.extra) for s in corpus.SOURCES),
    Asset("evalsets", "evalsets", "olmo", evalsets.build_evalsets),
)
GROUPS = ("teacher", "tokenizers", "corpus", "evalsets")


def selected(groups: list[str] | None = None, extras: bool = False) -> list[Asset]:
    """The assets of `groups` (default: all), with the extra corpora only when `extras`."""
    wanted = set(groups or GROUPS)
    return [a for a in ASSETS if a.group in wanted and (extras or not a.extra)]


def fetch_assets(assets: list[Asset], cache: Path) -> dict[str, Any]:
    """Build each asset that is not yet complete; the summary lists every one with its path and size."""
    start = time.perf_counter()
    results = [ensure_asset(a.kind, a.name, a.build, cache) for a in assets]
    return {
        "cache": str(cache),
        "assets": [
            {key: r.get(key) for key in ("asset", "status", "path", "files", "bytes", "sha256", "source")}
            for r in results
        ],
        "fetched": sum(r["status"] == "fetched" for r in results),
        "bytes": sum(r["bytes"] for r in results),
        "seconds": round(time.perf_counter() - start, 2),
    }
