"""What a run trains on, loaded and checked before anything is written: student, teacher, data, logit cache.

Every mismatch the user can cause is a UsageError here: a teacher and a student that do not
share a tokenizer and a vocabulary, data made with another tokenizer, a cache of other logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from headstart.data import (
    TokenWindows,
    check_tokenizer_matches,
    data_identity,
    load_manifest,
    load_tokenizer,
    tokenizer_fingerprint,
)
from headstart.errors import UsageError
from headstart.model import Decoder, init_weights, load_model, weights_fingerprint
from headstart.train.config import TrainConfig
from headstart.train.distributed import Ranks
from headstart.train.logit_cache import LogitCache
from headstart.train.losses import KDLoss, parse_kd_loss


@dataclass
class RunInputs:
    student: Decoder
    student_dir: Path  # where the student came from: its tokenizer goes into the exported model
    teacher: Decoder | None
    teacher_weights: str | None  # weights_fingerprint of the teacher: the cache key and checkpoints record it
    kd: KDLoss | None
    cache: LogitCache | None
    manifest: dict[str, Any]
    train: TokenWindows
    validation: torch.Tensor  # fixed windows [n, seq_len + 1]


def model_tokenizer_fingerprint(model: Decoder, role: str) -> str:
    """The fingerprint of the tokenizer saved beside a model; a model without one cannot be checked."""
    folder = Path(model.source_dir)
    if not (folder / "tokenizer.json").is_file():
        raise UsageError(f"the {role} {folder} has no tokenizer (tokenizer.json), so its data cannot be checked",
                         "save the model together with its tokenizer (headstart extract and train do)")
    return tokenizer_fingerprint(load_tokenizer(folder))


def _check_teacher(teacher: Decoder, teacher_fp: str, student: Decoder, student_fp: str, cfg: TrainConfig) -> None:
    if teacher_fp != student_fp:
        raise UsageError(f"teacher {cfg.teacher} and student {cfg.student} use different tokenizers "
                         f"(fingerprints {teacher_fp[:12]} and {student_fp[:12]})",
                         "distil only between models of one tokenizer: extract the student from this teacher")
    if teacher.config.vocab_size != student.config.vocab_size:
        raise UsageError(f"teacher {cfg.teacher} has a vocabulary of {teacher.config.vocab_size} and student "
                         f"{cfg.student} of {student.config.vocab_size}",
                         "distil only between models of one vocabulary: extract the student from this teacher")


def _open_cache(cfg: TrainConfig, teacher: Decoder | None, teacher_weights: str | None, student: Decoder,
                student_fp: str, manifest: dict[str, Any]) -> LogitCache:
    key = {"tokenizer": student_fp, "vocab_size": student.config.vocab_size, "top_k": cfg.kd_top_k,
           "seq_len": cfg.seq_len, "batch_size": cfg.batch_size, "seed": cfg.seed,
           "data": data_identity(manifest)}
    if teacher is not None:
        key["teacher"] = {"config": teacher.config.to_dict(), "weights": teacher_weights}
    return LogitCache.open(cfg.logit_cache, key, writable=teacher is not None)


def load_inputs(cfg: TrainConfig, ranks: Ranks, teacher_dtype: torch.dtype = torch.float32) -> RunInputs:
    """Load and cross-check everything the run needs; nothing is written."""
    kd = parse_kd_loss(cfg.kd, cfg.temperature, cfg.kd_weight, cfg.kd_top_k) if cfg.kd else None
    if cfg.batch_size % ranks.world_size:
        raise UsageError(f"--batch-size {cfg.batch_size} does not divide over {ranks.world_size} ranks",
                         "use a global batch size that is a multiple of the number of ranks")
    manifest = load_manifest(cfg.data)
    student = load_model(cfg.student)
    student_fp = model_tokenizer_fingerprint(student, "student")
    check_tokenizer_matches(manifest, student_fp, what=f"student {cfg.student}")
    if manifest["tokenizer"]["vocab_size"] > student.config.vocab_size:
        raise UsageError(f"the data's tokenizer has {manifest['tokenizer']['vocab_size']} ids, more than the "
                         f"student's vocabulary of {student.config.vocab_size}", "prepare the data with the "
                         "student's tokenizer")
    teacher = None
    if cfg.teacher is not None:
        teacher = load_model(cfg.teacher, dtype=teacher_dtype)
        _check_teacher(teacher, model_tokenizer_fingerprint(teacher, "teacher"), student, student_fp, cfg)
        teacher.requires_grad_(False).eval()
    for role, model in (("student", student), ("teacher", teacher)):
        if model is not None and cfg.seq_len > model.config.max_positions:
            raise UsageError(f"--seq-len {cfg.seq_len} exceeds the {role}'s {model.config.max_positions} positions",
                             f"use --seq-len {model.config.max_positions} or less")
    train = TokenWindows(cfg.data, "train", cfg.seq_len)
    validation = TokenWindows(cfg.data, "validation", cfg.seq_len).fixed_windows(cfg.eval_tokens)
    teacher_weights = weights_fingerprint(teacher) if teacher is not None else None
    cache = _open_cache(cfg, teacher, teacher_weights, student, student_fp, manifest) if cfg.logit_cache else None
    if cfg.random_init:
        init_weights(student, cfg.seed)
    return RunInputs(student, Path(student.source_dir), teacher, teacher_weights, kd, cache, manifest, train,
                     validation)
