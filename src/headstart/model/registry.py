"""Short names for the models headstart knows: the fetched real teacher and the shipped scale teacher."""

from __future__ import annotations

from pathlib import Path

# short name -> (where it lives, how to get it)
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "teachers"
FETCHED = {"smollm2-135m": ("models", "smollm2-135m")}


def short_name_dir(name: str) -> Path | None:
    """The folder of a known short name, raising a UsageError when it is known but not fetched yet."""
    shipped = SHIPPED_DIR / name
    if (shipped / "config.json").is_file():
        return shipped
    if name in FETCHED:
        from headstart.assets import require_asset

        return require_asset(*FETCHED[name])
    return None


def known_names() -> list[str]:
    shipped = sorted(p.name for p in SHIPPED_DIR.glob("*") if (p / "config.json").is_file())
    return shipped + sorted(FETCHED)
