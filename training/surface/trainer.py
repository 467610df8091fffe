"""Surface refinement training loop: resumable, logged, best validation checkpoint kept.

As the paper: Adam 1e-3, learning rate x 0.99 per epoch, batch size 1 (one case: two
views, one 6000-vertex mesh), loss eq. 8 (weights configurable). Checkpoints are the
segmenter's format (training.segmenter.checkpoint: safetensors + JSON, atomic, hashed):
``OUT/last`` after every ``checkpoint_every`` steps and each epoch, ``OUT/best`` when the
validation vertex MAE (world mm) improves. ``train_log.jsonl`` holds one JSON object per
event. The loop, checkpoints, resume and best tracking are :mod:`training.resumable`'s.

Silhouette target: by default the truth mesh rendered with the same soft rasteriser (the
product over stacked rim triangles pushes any soft silhouette's 0.5 level outwards, so a
binary mask target would bias the prediction inwards; rendering both sides alike cancels
that). The silhouettes are rendered in crop pixels (256 x 160), from one side of the
closed mesh by default (``render.one_side``: half the cost, both renders alike).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from training.resumable import BestMetric, ResumableRun

from .data import SRCache
from .losses import LossWeights, SRLoss
from .model import SurfaceRefinementNet, edge_index_of, project_h
from .render import SIGMA_PX2, one_side, soft_silhouette
from .topology import ring_topology

log = logging.getLogger(__name__)

CONFIG_FORMAT = "angio-sr-checkpoint/1"


@dataclass
class SRTrainConfig:
    data: str
    out: str
    epochs: int = 100
    lr: float = 1e-3
    gamma: float = 0.99
    seed: int = 0
    threads: int = 2
    weights: LossWeights = field(default_factory=LossWeights)
    silhouette_sigma: float = SIGMA_PX2
    #: "one_side" (default: half the faces, same hard silhouette) or "all".
    silhouette_faces: str = "one_side"
    #: Also keep OUT/epoch_N after every epoch (for equal-budget ablations).
    keep_epochs: bool = False
    #: Leave out cases whose MI is further than this (mean vertex distance, mm) from the
    #: truth, in training and validation: there MI followed another vessel or mismatched
    #: the views, which no local displacement can mend, and the squared error of such a
    #: case (a 15 mm MAE is ~2,000x a typical case) would dominate the gradient.
    max_mi_mae_mm: float | None = 2.0
    #: Regression target of the vertex terms: "surface" (the truth surface's nearest
    #: points to the MI vertices; see training.surface.data.surface_target) or "vertex"
    #: (the truth vertex of the same index, as the paper).
    target: str = "surface"
    checkpoint_every: int = 200
    val_limit: int | None = None
    max_steps: int | None = None
    resume: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["weights"] = self.weights.to_dict()
        return d


def _frame(sample: dict[str, np.ndarray]):
    from angio_deploy.pipeline.sr import sr_frame

    f = sr_frame(sample["mi"].astype(np.float64), sample["reference"])
    return (
        torch.as_tensor(f.R, dtype=torch.float32),
        torch.as_tensor(f.b, dtype=torch.float32),
        float(f.scale),
    )


TARGETS = ("surface", "vertex")


def target_of(sample: dict[str, np.ndarray], target: str) -> np.ndarray:
    """The regression target (6000, 3) mm: the truth surface's nearest points to the MI
    vertices ("surface", training.surface.data.surface_target) or the truth vertices."""
    if target == "vertex":
        return sample["truth"]
    if "truth_surface" not in sample:
        raise ValueError(
            "the SR cache has no surface targets (<key>.surface.npy): rerun "
            "python -m training.build_sr_data on it, or train with --target vertex"
        )
    return sample["truth_surface"]


def _tensors(sample: dict[str, np.ndarray], target: str = "surface") -> dict[str, torch.Tensor]:
    return {
        "crops": torch.as_tensor(sample["crops"].astype(np.float32)),
        "crop_P": torch.as_tensor(sample["crop_P"], dtype=torch.float32),
        "mi": torch.as_tensor(sample["mi"], dtype=torch.float32),
        "truth": torch.as_tensor(sample["truth"], dtype=torch.float32),
        "target": torch.as_tensor(target_of(sample, target), dtype=torch.float32),
    }


class _Step:
    """Forward + loss of one case."""

    def __init__(
        self,
        net: SurfaceRefinementNet,
        loss: SRLoss,
        sigma: float,
        faces: str = "one_side",
        target: str = "surface",
    ):
        if faces not in ("one_side", "all"):
            raise ValueError(f"silhouette_faces must be 'one_side' or 'all', not {faces!r}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
        self.net, self.loss, self.sigma, self.one_side = net, loss, sigma, faces == "one_side"
        self.target = target
        topo = ring_topology()
        self.faces = torch.as_tensor(topo.faces_capped)
        # Rendered truth silhouettes per case key: fixed, so rendered once (float16).
        self._targets: dict[str, list[torch.Tensor]] = {}

    def _render(self, uv: torch.Tensor, H: int, W: int) -> torch.Tensor:
        faces = one_side(uv, self.faces) if self.one_side else self.faces
        return soft_silhouette(uv, faces, H, W, self.sigma)

    def _target(self, key: str | None, P: torch.Tensor, truth, v: int, H: int, W: int):
        cached = self._targets.get(key) if key is not None else None
        if cached is not None and len(cached) > v:
            return cached[v].float()
        with torch.no_grad():
            t = self._render(project_h(P, truth), H, W)
        if key is not None:
            self._targets.setdefault(key, []).append(t.half())
        return t

    def __call__(
        self, sample: dict[str, np.ndarray], with_silhouette: bool, key: str | None = None
    ):
        t = _tensors(sample, self.target)
        R, b, scale = _frame(sample)
        pred, pos = self.net(t["crops"], t["crop_P"], t["mi"], R, b, scale)
        true = scale * (t["target"] @ R.T + b)
        world = (pred / scale - b) @ R
        sils = None
        if with_silhouette:
            H, W = t["crops"].shape[-2:]
            sils = []
            for v in range(t["crop_P"].shape[0]):
                P = t["crop_P"][v]
                target = self._target(key, P, t["truth"], v, H, W)
                sils.append((self._render(project_h(P, world), H, W), target))
        total, parts = self.loss(pred, true, pos, sils)
        mae = float((world.detach() - t["target"]).norm(dim=1).mean())
        return total, parts, mae


def train_sr(cfg: SRTrainConfig) -> dict[str, Any]:
    """Train (or resume) an SR model; returns the final state summary."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train, val = SRCache(Path(cfg.data) / "train"), SRCache(Path(cfg.data) / "val")
    if len(train) == 0:
        raise ValueError(f"{cfg.data}/train holds no cases")
    excluded: dict[str, int] = {}
    if cfg.max_mi_mae_mm is not None:
        kept = train.within(cfg.max_mi_mae_mm), val.within(cfg.max_mi_mae_mm)
        excluded = {"train": len(train) - len(kept[0]), "val": len(val) - len(kept[1])}
        train, val = kept
        if len(train) == 0:
            raise ValueError(f"{cfg.data}/train: no case with MI MAE <= {cfg.max_mi_mae_mm} mm")
    channels = int(train[0]["crops"].shape[1])
    topo = ring_topology()
    net = SurfaceRefinementNet(edge_index_of(topo.edges), in_channels=channels)
    loss = SRLoss(topo, cfg.weights)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    signature = {"data": str(Path(cfg.data).resolve()), "n_train": len(train), "seed": cfg.seed}
    run = ResumableRun(
        out,
        model=net,
        optimizer=opt,
        scheduler=sched,
        config_format=CONFIG_FORMAT,
        best=BestMetric("val_mae_mm", "min", state_key="best_val_mae"),
        signature=signature,
        position_key="index",
        logger=log,
    )
    run.start(cfg.resume)
    st = run.state

    step_fn = _Step(net, loss, cfg.silhouette_sigma, cfg.silhouette_faces, cfg.target)
    with_sil = cfg.weights.silhouette > 0

    def config(metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            "in_channels": channels,
            "channels": ["image", "probability"][:channels],
            "crop": {
                "width": int(train[0]["crops"].shape[-1]),
                "height": int(train[0]["crops"].shape[-2]),
            },
            "topology": {"n_rings": topo.n_rings, "n_around": topo.n_around},
            "frame": "ring 0 centre, z start->end, x from view A's direction, fit in [0,1]",
            "data": {
                "train": train.index | {"keys": len(train)},
                "val": {"cases": len(val)},
                "excluded_by_mi_mae": excluded,
            },
            "training": cfg.to_dict(),
            "metrics": metrics,
            "epoch": st["epoch"],
            "step": st["step"],
        }

    def validate() -> dict[str, float]:
        net.eval()
        maes, mi_maes = [], []
        n = len(val) if cfg.val_limit is None else min(cfg.val_limit, len(val))
        with torch.no_grad():
            for i in range(n):
                s = val[i]
                _, _, mae = step_fn(s, with_silhouette=False)
                maes.append(mae)
                target = target_of(s, cfg.target)
                mi_maes.append(float(np.linalg.norm(s["mi"] - target, axis=1).mean()))
        net.train()
        return {
            "val_mae_mm": float(np.mean(maes)),
            "val_mae_median_mm": float(np.median(maes)),
            "mi_mae_mm": float(np.mean(mi_maes)),
            "val_n": n,
        }

    def epoch_cases(epoch: int, first: int) -> Iterable[int]:
        """Case indices of an epoch (a fixed permutation per epoch) from ``first`` on."""
        order = np.random.default_rng(cfg.seed + epoch).permutation(len(train))
        return (int(i) for i in order[first:])

    def train_step(i: int) -> None:
        t0 = time.perf_counter()
        total, parts, mae = step_fn(train[i], with_sil, key=train.keys[i])
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if st["step"] % 10 == 0:
            run.log(
                {
                    "event": "train",
                    "epoch": st["epoch"],
                    "step": st["step"],
                    "loss": float(total.detach()),
                    **parts,
                    "mae_mm": mae,
                    "lr": opt.param_groups[0]["lr"],
                    "step_s": round(time.perf_counter() - t0, 3),
                }
            )

    run.log({"event": "start", "config": cfg.to_dict(), "step": st["step"]})
    outcome = run.fit(
        epochs=cfg.epochs,
        batches_per_epoch=len(train),
        epoch_batches=epoch_cases,
        train_step=train_step,
        validate=validate,
        config=config,
        save_every=cfg.checkpoint_every,
        max_steps=cfg.max_steps,
        validate_at_max_steps=False,
        keep_epochs=cfg.keep_epochs,
    )
    return {**st, "stopped": "max_steps"} if outcome == "max_steps" else st
