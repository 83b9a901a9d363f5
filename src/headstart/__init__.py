"""headstart: find the best sub-network of a pretrained teacher, extract it, and pretrain it with distillation.

The Python API is `from headstart import api` (api.search, api.train, ...: the packages headstart.search and
headstart.train hold those names here); its configs are re-exported: `headstart.SearchConfig`, ... (imported on
first use, so that `import headstart` stays light).
"""

import importlib

__version__ = "0.1.0"
_CONFIGS = ("AssetsConfig", "EvalConfig", "ExtractConfig", "ImportanceConfig", "InitConfig", "PrepareConfig",
            "SearchConfig", "SelectConfig", "SpaceConfig", "TrainConfig")
__all__ = [*_CONFIGS, "__version__"]


def __getattr__(name: str):
    if name not in _CONFIGS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("headstart.api"), name)
