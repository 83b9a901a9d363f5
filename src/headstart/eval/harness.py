"""lm-evaluation-harness itself, on the offline task files: `headstart eval --backend lm-eval`.

lm-eval's own task configs (its YAML, prompts and metrics) are read from the installed package
and pointed at the `evalsets` asset instead of the hub, so that its numbers and headstart's are
taken on the same items. lm-eval is optional (`pip install lm-eval`); nothing else imports this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headstart.assets import require_asset
from headstart.errors import UsageError
from headstart.eval.tasks import SPLIT, check_task_name

# lm-eval's task of each of ours: its YAML under lm_eval/tasks/ (read directly: indexing all of lm-eval's
# thousands of tasks takes longer than evaluating a small model)
LM_EVAL_YAML = {"hellaswag": "hellaswag/hellaswag.yaml", "piqa": "piqa/piqa.yaml", "arc_easy": "arc/arc_easy.yaml",
                "arc_challenge": "arc/arc_challenge.yaml", "openbookqa": "openbookqa/openbookqa.yaml",
                "sciq": "sciq/sciq.yaml", "winogrande": "winogrande/default.yaml",
                "boolq": "super_glue/boolq/default.yaml", "copa": "super_glue/copa/default.yaml",
                "social_iqa": "siqa/siqa.yaml"}
# the evalsets' files keep their source's field names where lm-eval's task reads another source's
FIELD_FIXES: dict[str, dict[str, Any]] = {"boolq": {"doc_to_target": "{{answer|int}}"}}  # google/boolq, not super_glue
NOT_LM_EVAL = {"commonsense_qa": "headstart scores it as a cloze, lm-eval by the letter of a listed answer"}


def _lm_eval() -> Any:
    try:
        import lm_eval
    except ImportError:
        raise UsageError("--backend lm-eval needs lm-evaluation-harness", "pip install lm-eval") from None
    return lm_eval


def check_lm_eval_tasks(names: list[str]) -> None:
    """lm-eval is installed and holds each task (checked before the model is loaded)."""
    _lm_eval()
    for name in names:
        check_task_name(name)
        if name not in LM_EVAL_YAML:
            raise UsageError(f"task {name} is not lm-eval's ({NOT_LM_EVAL[name]})", "leave it out of --backend lm-eval")


def task_config(name: str) -> dict[str, Any]:
    """lm-eval's config of task `name`, reading the validation file of the `evalsets` asset."""
    lm_eval = _lm_eval()
    check_lm_eval_tasks([name])
    from lm_eval.tasks._yaml_loader import load_yaml  # resolves `include` and `!function` as lm-eval does

    path = Path(require_asset("evalsets", "olmo")) / f"{name}.arrow"
    config = load_yaml(Path(lm_eval.__file__).parent / "tasks" / LM_EVAL_YAML[name], resolve_func=True)
    return config | {"dataset_path": "arrow", "dataset_name": None,
                     "dataset_kwargs": {"data_files": {SPLIT: str(path)}}, "training_split": None,
                     "validation_split": SPLIT, "test_split": None, "fewshot_split": None,
                     "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                                     for m in ("acc", "acc_norm", "acc_bytes")]} | FIELD_FIXES.get(name, {})


def evaluate_with_lm_eval(model_dir: Path, tasks: list[str], limit: int | None, batch_size: int,
                          device: str) -> dict[str, dict[str, Any]]:
    """{task: {items, acc, acc_norm, acc_bytes, samples}} from lm-eval's HFLM on the model folder, zero-shot."""
    lm_eval = _lm_eval()
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    configs = [task_config(t) for t in tasks]
    model = HFLM(pretrained=str(model_dir), trust_remote_code=True, batch_size=batch_size, device=device,
                 dtype="float32")
    try:
        out = lm_eval.simple_evaluate(model=model, tasks=configs, num_fewshot=0, limit=limit, log_samples=True,
                                      bootstrap_iters=0, task_manager=TaskManager(include_defaults=False))
    except AssertionError as err:  # lm-eval's checks of an item, e.g. an answer longer than the model's context
        import traceback

        where = traceback.extract_tb(err.__traceback__)[-1]
        raise UsageError(f"lm-eval refused an item of {', '.join(tasks)} on {model_dir} (`{where.line}` in its "
                         f"{where.name})", "score it with --backend headstart, which keeps a too long sequence's "
                         "last tokens") from None
    return {t: {"items": len(out["samples"][t]), **{m: out["results"][t][f"{m},none"]
                                                    for m in ("acc", "acc_norm", "acc_bytes")},
                "samples": out["samples"][t]} for t in tasks}
