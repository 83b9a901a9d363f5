"""TrainConfig: every setting of a training run (headstart.settings makes it a recipe, flags and keywords)."""

from __future__ import annotations

from dataclasses import dataclass

from headstart.errors import UsageError
from headstart.model.hub import PUSH_HELP, check_repo_id
from headstart.runtime import AUTO_PRECISION_HELP, PRECISIONS
from headstart.settings import COUNT, DEVICE_HELP, Config, setting
from headstart.train.fused_kd import KD_KERNELS, check_liger_available, check_liger_loss
from headstart.train.losses import parse_kd_loss
from headstart.train.schedule import SCHEDULES

PARALLEL = ("ddp", "fsdp")
REQUIRED = ("student", "data", "tokens", "out")


@dataclass
class TrainConfig(Config):
    required = REQUIRED
    # what trains on what
    student: str = setting("", "student: a Hugging Face folder (e.g. an extracted sub-network) or a short name")
    data: str = setting("", "prepared data folder (`headstart prepare`), tokenized with the student's tokenizer")
    out: str = setting("", "run folder: train_config.json, metrics.jsonl, tensorboard/, checkpoints/, final/")
    tokens: int | None = setting(None, "token budget: predicted tokens to train on (e.g. 20M); sets the steps",
                                 within=COUNT)
    random_init: bool = setting(False, "re-initialise the student: the from-scratch baseline of its architecture")
    # distillation
    teacher: str | None = setting(None, "teacher folder or short name; with --kd, distil from it (frozen, eval mode)")
    kd: str | None = setting(None, "KD loss: forward_kl, reverse_kl, symmetric_kl, js, or topk_<one of them>")
    kd_weight: float = setting(0.7, "share of the KD term in the loss: (1 - w)·CE + w·KD", within="[0, 1]")
    temperature: float = setting(1.0, "softmax temperature of both distributions in the KD term (scaled back by T²)",
                                 within="(0, inf)")
    kd_top_k: int = setting(64, "k of the topk_ losses, and of the logit cache", within=COUNT)
    kd_until: float = setting(1.0, "distil for this share of the steps, then train on CE alone (the teacher "
                               "stops running): KD where it pays most per FLOP", within="(0, 1]")
    logit_cache: str | None = setting(None, "teacher top-k logit cache: read where filled, filled by --teacher")
    kd_kernel: str = setting("chunked", "KD loss of the KD steps: chunked (ours, the reference), or liger "
                             "(liger-kernel's fused linear + KD, CUDA only: forward_kl, reverse_kl, js)", KD_KERNELS)
    # batches
    seq_len: int = setting(256, "tokens per training window", within=COUNT)
    batch_size: int = setting(32, "windows per optimizer step, all ranks together (the global batch)", within=COUNT)
    micro_batch_size: int = setting(8, "windows per forward pass on one rank; the rest is gradient accumulation",
                                    within=COUNT)
    # optimizer and schedule
    lr: float = setting(6e-4, "peak learning rate of AdamW", within="(0, inf)")
    min_lr_ratio: float = setting(0.1, "final learning rate as a fraction of the peak", within="[0, 1]")
    weight_decay: float = setting(0.1, "AdamW weight decay of matrices (not of norms and biases)", within="[0, inf)")
    beta1: float = setting(0.9, "AdamW beta1", within="[0, 1)")
    beta2: float = setting(0.95, "AdamW beta2", within="[0, 1)")
    schedule: str = setting("cosine", "learning-rate schedule after warmup (wsd: warmup-stable-decay)",
                            tuple(SCHEDULES))
    warmup_fraction: float = setting(0.02, "share of the steps spent in linear warmup", within="[0, 1)")
    decay_fraction: float = setting(0.2, "wsd: share of the steps spent in the final linear decay", within="[0, 1]")
    grad_clip: float = setting(1.0, "clip the global gradient norm to this (0: no clipping)", within="[0, inf)")
    # evaluation, logging, checkpoints
    eval_every: int = setting(200, "validate every this many steps (and at step 0 and the end)", within=COUNT)
    eval_log_spaced: bool = setting(False, "also validate at steps 1, 2, 4, 8, ... before the first --eval-every "
                                     "step: the early curve, where a head start is decided")
    eval_tokens: int = setting(65536, "validation tokens: the first windows of the validation split", within=COUNT)
    stop_below: float | None = setting(None, "stop once validation perplexity is at or below this, the schedule "
                                        "still that of the whole budget: a race to a target, as baseline arms run",
                                        within="(0, inf)")
    log_every: int = setting(1, "write training metrics every this many steps", within=COUNT)
    checkpoint_every: int = setting(200, "write a checkpoint every this many steps (and at the end)", within=COUNT)
    keep_checkpoints: int = setting(2, "how many of the newest checkpoints to keep", within=COUNT)
    # execution
    seed: int = setting(0, "seed of the data order and of --random-init")
    device: str = setting("auto", DEVICE_HELP)
    precision: str = setting("auto", AUTO_PRECISION_HELP, PRECISIONS)
    compile: bool = setting(False, "torch.compile each transformer block")
    parallel: str = setting("ddp", "with several ranks (torchrun): ddp, or fsdp (FSDP2; the teacher is sharded too)",
                            PARALLEL)
    loss_chunk_tokens: int = setting(1024, "tokens per chunk of the loss over the vocabulary", within=COUNT)
    activation_checkpointing: bool = setting(False, "recompute each block's activations in backward: less memory, "
                                                     "about a third more compute")
    async_checkpoints: bool = setting(False, "write checkpoints from a background thread while training goes on")
    push_to_hub: str | None = setting(None, PUSH_HELP + " (final/)")

    def check(self) -> None:
        from headstart.atomic import check_out_writable

        super().check()
        check_out_writable(self.out)
        check_repo_id(self.push_to_hub)
        if self.kd is not None and self.kd_kernel == "liger":
            check_liger_available()

    def validate(self) -> None:
        """Every check that needs no file: a UsageError names the field and a value that works."""
        super().validate()
        if self.kd is not None:
            kd = parse_kd_loss(self.kd, self.temperature, self.kd_weight, self.kd_top_k)
            if self.kd_kernel == "liger":
                check_liger_loss(kd)
            if self.teacher is None and self.logit_cache is None:
                raise UsageError(f"--kd {self.kd} needs a teacher", "add --teacher T, or --logit-cache DIR")
        elif self.teacher is not None or self.logit_cache is not None:
            raise UsageError("--teacher / --logit-cache given without --kd",
                             "add --kd LOSS (e.g. forward_kl) to distil, or drop them to train on CE alone")
        if self.logit_cache is not None and not self.kd.startswith("topk_"):
            raise UsageError(f"a logit cache holds top-k logits, which --kd {self.kd} cannot use",
                             f"use --kd topk_{self.kd}, or drop --logit-cache")

