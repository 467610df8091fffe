"""The segmenter's training loop (3DAngioNet section 3.2), resumable at any point.

Adam (lr 1e-3), ExponentialLR 0.96 stepped once an epoch, batch 8, BCE + Dice loss; the
model is validated after every epoch (and when a run stops early) by the mean Dice at
probability 0.5 over the validation cache's main-SOI crops, and the best one is kept in
``OUT/best``. ``OUT/last`` is rewritten every ``save_every`` steps and after every
validation, with everything a resumed run needs to continue bit-for-bit: model, Adam
state, scheduler, counters, the torch RNG state (EfficientNet's drop-connect uses it) and
the data position (epoch, batch in epoch; see :mod:`.dataset`). The loop, checkpoints,
resume and best tracking are :mod:`training.resumable`'s, shared with the SR trainers.

``device`` runs it on a GPU (bfloat16 autocast for the forward pass, the loss in float32):
the checkpoints are the same CPU safetensors files, so a run started on a lent GPU can be
averaged, exported or resumed here. Bit-for-bit resume is a CPU property: on CUDA the
drop-connect draws come from the GPU's generator and cuDNN picks kernels by timing.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from training.resumable import BestMetric, ResumableRun

from .augment import AugmentParams, CropParams
from .cache import SegCache
from .dataset import EpochBatchSampler, MixedDataset, SegDataset
from .losses import BCEDiceLoss, dice_per_sample
from .model import ENCODER, architecture, build_segmenter, load_encoder_weights
from .warm_start import freeze_batchnorm, load_from_onnx

log = logging.getLogger("training.segmenter")

NORMALISATION = "per-crop zero mean, unit sd (angio_deploy.pipeline.crop.normalise_crop)"
CONFIG_FORMAT = "angio-deploy-segmenter/1"
#: Settings a resumed run must share with the run it continues.
_RESUME_KEYS = (
    "batch_size",
    "seed",
    "crop",
    "augment",
    "segments",
    "n_train",
    "lr",
    "gamma",
    "extra_train",
    "init_onnx",
)


@dataclass
class TrainConfig:
    data: Path
    out: Path
    epochs: int = 100
    max_steps: int | None = None
    resume: bool = False
    batch_size: int = 8
    lr: float = 1e-3
    gamma: float = 0.96
    seed: int = 0
    threads: int = 2
    workers: int = 0
    log_every: int = 10
    save_every: int = 200
    channels_last: bool = True
    segments: str = "all"
    val_limit: int | None = None
    val_batch: int = 16
    encoder: str = ENCODER
    encoder_weights: Path | None = None
    crop: CropParams = field(default_factory=CropParams)
    augment: AugmentParams = field(default_factory=AugmentParams)
    #: More training caches mixed in, each (cache folder, repeats per epoch): e.g. real
    #: SOI tasks (build_seg_data --real) beside the synthetic ones.
    extra_train: list[tuple[Path, int]] = field(default_factory=list)
    #: More validation caches; the best checkpoint is chosen on the mean of the Dice means
    #: of ``val/`` and these (so a real and a synthetic set weigh the same).
    extra_val: list[Path] = field(default_factory=list)
    #: Start from an exported segmenter (.onnx, BatchNorm folded): every BatchNorm then
    #: trains in eval mode (training.segmenter.warm_start).
    init_onnx: Path | None = None
    #: "cpu", "cuda" or "auto" (CUDA when torch sees a GPU). Not part of the resume
    #: signature: a run started on a lent GPU may go on here.
    device: str = "cpu"
    #: bfloat16 autocast for the forward pass on CUDA (no loss scaling needed); ignored on
    #: the CPU, where it would only slow the step down.
    amp: bool = True
    #: Wall seconds after which this call validates, saves and stops (None: no limit).
    time_limit_s: float | None = None

    def run_signature(self, n_train: int) -> dict[str, Any]:
        """JSON-normalised settings a resumed run must share (tuples become lists)."""
        sig = {
            "batch_size": self.batch_size,
            "seed": self.seed,
            "crop": self.crop.to_dict(),
            "augment": self.augment.to_dict(),
            "segments": self.segments,
            "n_train": n_train,
            "lr": self.lr,
            "gamma": self.gamma,
            "extra_train": [[str(p), int(r)] for p, r in self.extra_train],
            "init_onnx": None if self.init_onnx is None else str(self.init_onnx),
        }
        return json.loads(json.dumps(sig))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def _setup_logging(out: Path) -> list[logging.Handler]:
    """JSON lines on stdout (the run writes them to ``OUT/train_log.jsonl`` too)."""
    out.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    for h in handlers:
        h.setFormatter(_JsonFormatter())
        log.addHandler(h)
    log.setLevel(logging.INFO)
    return handlers


def _cache_summary(cache: SegCache) -> dict[str, Any]:
    keys = (
        "source",
        "generator_version",
        "package_version",
        "seeds",
        "case_keys",
        "n_cases",
        "n_samples",
        "size",
        "include_side_branches",
        "main_mask",
    )
    return {"path": str(cache.path), **{k: cache.meta.get(k) for k in keys}}


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else the CPU; ``"cuda"`` without a GPU is an
    error rather than a silent CPU run of a job sized for a GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no CUDA device")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device {name!r}: expected cpu, cuda[:N] or auto")
    return torch.device(name)


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"
    )


class Validator:
    """Validation crops (main SOI, no augmentation) rendered once and kept in memory."""

    def __init__(
        self,
        ds: SegDataset,
        limit: int | None,
        batch: int,
        device: torch.device | None = None,
        amp: bool = False,
    ):
        n = len(ds) if limit is None else min(limit, len(ds))
        xs, ys = zip(*(ds[i] for i in range(n)), strict=True) if n else ((), ())
        self.x = torch.stack(xs) if n else None
        self.y = torch.stack(ys) if n else None
        self.batch = batch
        self.loss = BCEDiceLoss()
        self.device = device or torch.device("cpu")
        self.amp = amp

    def __call__(
        self, model: torch.nn.Module, channels_last: bool, prefix: str = "val"
    ) -> dict[str, float]:
        if self.x is None:
            return {}
        was_training = model.training
        model.eval()
        dices, losses = [], []
        with torch.inference_mode():
            for i in range(0, len(self.x), self.batch):
                x, y = self.x[i : i + self.batch], self.y[i : i + self.batch]
                x, y = x.to(self.device), y.to(self.device)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with _autocast(self.device, self.amp):
                    logits = model(x)
                logits = logits.float()
                dices.append(dice_per_sample(logits, y).cpu())
                losses.append(self.loss(logits, y).item() * len(x))
        if was_training:
            model.train()
        d = torch.cat(dices).numpy()
        return {
            f"{prefix}_dice": float(d.mean()),
            f"{prefix}_dice_median": float(np.median(d)),
            f"{prefix}_dice_p10": float(np.percentile(d, 10)),
            f"{prefix}_loss": float(sum(losses) / len(d)),
            f"{prefix}_n": len(d),
        }


class _StopFlag:
    """SIGTERM / SIGINT ask the loop to save ``last`` after the current step and exit
    (a hard kill is safe too, it only loses the steps since the last save)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume); returns a summary with the final counters and best metric."""
    out = Path(cfg.out)
    handlers = _setup_logging(out)
    try:
        with _StopFlag() as flag:
            return _train(cfg, out, flag)
    finally:
        for h in handlers:
            log.removeHandler(h)
            h.close()


def _train(cfg: TrainConfig, out: Path, flag: _StopFlag | None = None) -> dict[str, Any]:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        # Fixed crop size: let cuDNN pick its fastest kernels once.
        torch.backends.cudnn.benchmark = True
    data = Path(cfg.data)
    train_cache, val_cache = SegCache(data / "train"), SegCache(data / "val")
    train_ds: SegDataset | MixedDataset = SegDataset(
        train_cache, crop=cfg.crop, augment=cfg.augment, segments=cfg.segments, seed=cfg.seed
    )
    extra_caches = [(SegCache(p), int(r)) for p, r in cfg.extra_train]
    if extra_caches:
        train_ds = MixedDataset(
            [
                (train_ds, 1),
                *(
                    (SegDataset(c, crop=cfg.crop, augment=cfg.augment, seed=cfg.seed + k + 1), r)
                    for k, (c, r) in enumerate(extra_caches)
                ),
            ]
        )
    val_ds = SegDataset(val_cache, crop=cfg.crop, augment=None, segments="main")
    extra_val = [SegCache(p) for p in cfg.extra_val]
    n_train = len(train_ds)
    per_epoch = EpochBatchSampler.batches_per_epoch(n_train, cfg.batch_size)
    if per_epoch == 0:
        raise ValueError(f"{n_train} training samples make no batch of {cfg.batch_size}")
    signature = cfg.run_signature(n_train)

    model = build_segmenter(cfg.encoder)
    encoder_init: Any = "random (trained from scratch)"
    if cfg.encoder_weights is not None:
        encoder_init = load_encoder_weights(model, cfg.encoder_weights)
    if cfg.init_onnx is not None:
        loaded = load_from_onnx(model, cfg.init_onnx)
        encoder_init = {"warm_start": {k: v for k, v in loaded.items() if k != "modules"}}

    def train_mode() -> None:
        model.train()
        if cfg.init_onnx is not None:
            freeze_batchnorm(model)

    # Before the optimizer exists, so its state lives where the parameters do.
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    run = ResumableRun(
        out,
        model=model,
        optimizer=opt,
        scheduler=sched,
        config_format=CONFIG_FORMAT,
        best=BestMetric("val_dice", "max"),
        signature={k: signature[k] for k in _RESUME_KEYS},
        logger=log,
    )
    if run.start(cfg.resume) is not None:
        encoder_init = run.saved.get("encoder_init", encoder_init)
    run.extra = {"batches_per_epoch": per_epoch, "encoder_init": encoder_init}
    st = run.state

    def validator(ds: SegDataset) -> Validator:
        return Validator(ds, cfg.val_limit, cfg.val_batch, device=device, amp=cfg.amp)

    validators = [("val", validator(val_ds))]
    for k, c in enumerate(extra_val):
        ds = SegDataset(c, crop=cfg.crop, augment=None, segments="main")
        validators.append((f"val{k + 1}", validator(ds)))
    loss_fn = BCEDiceLoss()

    def config_for(metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            **architecture(cfg.encoder),
            "crop": cfg.crop.to_dict(),
            "normalization": NORMALISATION,
            "input": {
                "name": "image",
                "shape": ["N", 1, cfg.crop.height, cfg.crop.width],
                "dtype": "float32",
                "source": "view image in [0, 1] (MONOCHROME2), SoiCrop.warp (linear), "
                "then normalise_crop",
            },
            "output": {"name": "logits", "probability": "sigmoid(logits)", "threshold": 0.5},
            "encoder_init": encoder_init,
            "data": {
                "train": _cache_summary(train_cache),
                "val": _cache_summary(val_cache),
                "extra_train": [{**_cache_summary(c), "repeats": r} for c, r in extra_caches],
                "extra_val": [_cache_summary(c) for c in extra_val],
            },
            "training": {
                "loss": "BCE + soft Dice (probabilities, smooth 1)",
                "optimizer": "Adam",
                "lr": cfg.lr,
                "lr_schedule": f"ExponentialLR gamma {cfg.gamma} per epoch",
                "batch_size": cfg.batch_size,
                "epochs": cfg.epochs,
                "seed": cfg.seed,
                "segments": cfg.segments,
                "augment": cfg.augment.to_dict(),
                "channels_last": cfg.channels_last,
                "device": device.type,
                "amp": "bfloat16 autocast" if cfg.amp and device.type == "cuda" else None,
            },
            "metrics": metrics,
            "epoch": st["epoch"],
            "step": st["step"],
            "versions": _versions(),
            "created_unix": round(time.time(), 3),
        }

    def validate() -> dict[str, Any]:
        t0 = time.perf_counter()
        metrics: dict[str, Any] = {}
        for prefix, validator in validators:
            metrics.update(validator(model, cfg.channels_last, prefix))
        if len(validators) > 1 and metrics.get("val_dice") is not None:
            # The selection score: each validation set weighs the same.
            metrics["val_dice_own"] = metrics["val_dice"]
            metrics["val_dice"] = float(
                np.mean([metrics[f"{p}_dice"] for p, _ in validators if f"{p}_dice" in metrics])
            )
        metrics["val_seconds"] = round(time.perf_counter() - t0, 2)
        return metrics

    def epoch_batches(epoch: int, first: int) -> Iterable[tuple[float, Any]]:
        """(seconds waited for the batch, batch) of an epoch from batch ``first`` on."""
        sampler = EpochBatchSampler(n_train, cfg.batch_size, cfg.seed, epoch, start_batch=first)
        loader = DataLoader(
            train_ds,
            batch_sampler=sampler,
            num_workers=cfg.workers,
            worker_init_fn=_worker_init if cfg.workers else None,
            pin_memory=device.type == "cuda",
            # A private generator: creating a loader must not draw from the global RNG,
            # or a resumed run would diverge from an uninterrupted one.
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        t_data = time.perf_counter()
        for batch in loader:
            yield time.perf_counter() - t_data, batch
            t_data = time.perf_counter()

    window: list[tuple[float, float, float]] = []

    def train_step(item: tuple[float, Any]) -> None:
        nonlocal window
        data_s, (x, y) = item
        t0 = time.perf_counter()
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, cfg.amp):
            logits = model(x)
        # The loss in float32: soft Dice sums over the crop.
        bce, dice = loss_fn.parts(logits.float(), y)
        loss = bce + dice
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_v = loss.item()  # waits for a GPU, so step_s below is the step's real time
        step_s = time.perf_counter() - t0
        window.append((loss_v, step_s, data_s))
        if not math.isfinite(loss_v):
            raise FloatingPointError(f"step {st['step']}: loss is {loss_v}")
        if st["step"] % cfg.log_every == 0 or st["step"] == 1:
            w = np.asarray(window)
            run.log(
                {
                    "event": "train",
                    "epoch": st["epoch"],
                    "batch": st["batch_in_epoch"],
                    "step": st["step"],
                    "loss": loss_v,
                    "bce": bce.item(),
                    "dice_loss": dice.item(),
                    "loss_avg": float(w[:, 0].mean()),
                    "lr": opt.param_groups[0]["lr"],
                    "step_s": round(float(w[:, 1].mean()), 4),
                    "data_wait_s": round(float(w[:, 2].mean()), 4),
                }
            )
            window = []

    run.log(
        {
            "event": "start",
            "n_train": n_train,
            "n_val": len(val_ds) if cfg.val_limit is None else min(cfg.val_limit, len(val_ds)),
            "n_extra_val": [len(v.x) if v.x is not None else 0 for _, v in validators[1:]],
            "batches_per_epoch": per_epoch,
            "threads": torch.get_num_threads(),
            "workers": cfg.workers,
            "device": str(device),
            "epoch": st["epoch"],
            "step": st["step"],
        }
    )
    train_mode()
    outcome = run.fit(
        epochs=cfg.epochs,
        batches_per_epoch=per_epoch,
        epoch_batches=epoch_batches,
        train_step=train_step,
        validate=validate,
        config=config_for,
        save_every=cfg.save_every,
        max_steps=cfg.max_steps,
        stop_requested=(lambda: flag.signal) if flag is not None else None,
        time_limit_s=cfg.time_limit_s,
    )
    if outcome == "interrupted":
        return {"event": "interrupted", "step": st["step"], "last": str(out / "last")}
    summary = {
        "event": "done",
        "epoch": st["epoch"],
        "step": st["step"],
        "best_val_dice": st["best_val_dice"],
        "best_step": st["best_step"],
        "last": str(out / "last"),
        "best": str(out / "best"),
    }
    run.log(summary)
    return summary


def _versions() -> dict[str, str]:
    import segmentation_models_pytorch as smp

    from angio_deploy import __version__

    return {"torch": torch.__version__, "smp": smp.__version__, "angio_deploy": __version__}
