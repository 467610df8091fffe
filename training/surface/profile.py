"""Ring-profile network: data from an SR cache, model, training loop, validation.

Inputs are :func:`angio_deploy.pipeline.profile.ring_profiles` of each cached MI mesh (the
very function the runtime calls). Targets: per ring and view, where the truth's lumen
edges lie on the ring's line across the vessel, relative to MI's edges, in units of MI's
projected radius. The truth ring matched to an MI ring is the one whose centre is
nearest (both meshes have 100 rings along the same segment).

Training: Adam, batch of rings, smooth-L1 on the corrections (robust to the few rings
where the matched truth ring sits at a branch or a lesion shoulder). Validation is the
product's own measure: the mesh rebuilt from the corrected rings, mean distance (mm) of
its vertices to the truth surface, against MI's. ``OUT/best`` keeps the best epoch,
``OUT/last`` the latest (resumable), ``train_log.jsonl`` one line per epoch (the loop,
checkpoints, resume and best tracking: :mod:`training.resumable`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from angio_deploy.metrics.surface import point_mesh_distance
from angio_deploy.pipeline.profile import (
    CONTEXT,
    N_CHANNELS,
    N_FEATURES,
    N_OUTPUTS,
    N_VIEWS,
    PER_VIEW,
    PROFILE_OFFSETS,
    refined_mesh,
    ring_edges,
    ring_profiles,
)
from angio_deploy.topology import N_AROUND, ring_faces

from .data import SRCache

log = logging.getLogger(__name__)

CONFIG_FORMAT = "angio-profile-checkpoint/1"
HIDDEN = 256
#: Rings at each end left out of training: their matched truth ring may lie past the end.
END_RINGS = 2
#: Smallest feature standard deviation used for the built-in standardisation.
STD_FLOOR = 0.05
#: Targets are clipped to +-this many radii: beyond, the matched truth ring is not the
#: same piece of lumen (a branch, the segment's end).
TARGET_CLIP = 2.0


class ProfileNet(nn.Module):
    """Ring features (R, N_FEATURES) -> edge corrections (R, 4); standardisation built in."""

    def __init__(self, hidden: int = HIDDEN):
        super().__init__()
        self.register_buffer("mean", torch.zeros(N_FEATURES))
        self.register_buffer("std", torch.ones(N_FEATURES))
        self.mlp = nn.Sequential(
            nn.Linear(N_FEATURES, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, N_OUTPUTS),
        )
        # Untrained, the network leaves MI alone.
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp((features - self.mean) / self.std)


def case_profiles(z: dict[str, np.ndarray]):
    """RingProfiles of one cached case (crops, crop_P, mi)."""
    return ring_profiles(
        [c.astype(np.float32) for c in z["crops"]],
        list(z["crop_P"]),
        z["mi"].astype(np.float64),
    )


def edge_targets(rp, truth: np.ndarray) -> np.ndarray:
    """(R, 4) truth edge corrections of a case's rings (see module docstring)."""
    tr = np.asarray(truth, dtype=np.float64).reshape(-1, N_AROUND, 3)
    tc = tr.mean(axis=1)
    match = np.argmin(np.linalg.norm(rp.centres[:, None] - tc[None], axis=2), axis=1)
    out = []
    for v in range(N_VIEWS):
        tlo, thi = ring_edges(rp.projections[v], tr[match], rp.centre_px[v], rp.normal_px[v])
        r = 0.5 * (rp.hi[v] - rp.lo[v])
        out += [(tlo - rp.lo[v]) / r, (thi - rp.hi[v]) / r]
    return np.stack(out, axis=1)


def symmetry_permutations() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The 8 symmetries of a ring's features and targets, as index maps.

    Each view's line across the vessel may point either way (mirror: profiles reversed,
    centre offset negated, lower and upper edge swapped and negated), and the rings may
    run either way along the vessel (context order reversed). Running the vessel backwards
    is reverse + both mirrors, exactly (tested); a single view's mirror assumes the data
    are mirror-symmetric across the vessel, which validation suggests they are not quite.
    Each entry: (feature index (F,), feature sign (F,), target index (4,), target sign
    (4,)).
    """
    K = len(PROFILE_OFFSETS)
    n_ctx = 2 * CONTEXT + 1
    out = []
    for reverse in (False, True):
        for mirror in ((False, False), (True, False), (False, True), (True, True)):
            idx = np.arange(N_FEATURES).reshape(n_ctx, N_VIEWS, PER_VIEW).copy()
            sign = np.ones((n_ctx, N_VIEWS, PER_VIEW), np.float32)
            if reverse:
                idx = idx[::-1].copy()
            tidx, tsign = np.arange(N_OUTPUTS), np.ones(N_OUTPUTS, np.float32)
            for v, m in enumerate(mirror):
                if not m:
                    continue
                for c in range(N_CHANNELS):
                    idx[:, v, c * K : (c + 1) * K] = idx[:, v, c * K : (c + 1) * K][:, ::-1]
                sign[:, v, 2 * K + 1] = -1.0
                tidx[2 * v : 2 * v + 2] = [2 * v + 1, 2 * v]
                tsign[2 * v : 2 * v + 2] = -1.0
            out.append(
                (
                    torch.from_numpy(idx.reshape(-1)),
                    torch.from_numpy(sign.reshape(-1)),
                    torch.from_numpy(tidx),
                    torch.from_numpy(tsign),
                )
            )
    return out


def build_arrays(cache: SRCache, end_rings: int = END_RINGS) -> tuple[np.ndarray, np.ndarray]:
    """Stacked features (M, N_FEATURES) float32 and targets (M, 4) float32 of a cache."""
    F, T = [], []
    for i in range(len(cache)):
        z = cache[i]
        rp = case_profiles(z)
        t = edge_targets(rp, z["truth"])
        s = slice(end_rings, len(t) - end_rings)
        F.append(rp.features[s])
        T.append(np.clip(t[s], -TARGET_CLIP, TARGET_CLIP).astype(np.float32))
    return np.concatenate(F), np.concatenate(T)


def validate(net: ProfileNet, cache: SRCache) -> dict[str, float]:
    """Mean / median over cases of the mean vertex-to-truth-surface distance (mm), MI and
    refined; share of cases improved."""
    faces = ring_faces()
    mi_d, sr_d = [], []
    net.eval()
    for i in range(len(cache)):
        z = cache[i]
        rp = case_profiles(z)
        with torch.no_grad():
            corr = net(torch.from_numpy(rp.features)).numpy().astype(np.float64)
        truth = z["truth"].astype(np.float64)
        mi_d.append(point_mesh_distance(z["mi"].astype(np.float64), truth, faces).mean())
        v = refined_mesh(rp, corr, z["reference"])[0]
        sr_d.append(point_mesh_distance(v, truth, faces).mean())
    mi_d, sr_d = np.array(mi_d), np.array(sr_d)
    return {
        "val_mi_mean": float(mi_d.mean()),
        "val_mean": float(sr_d.mean()),
        "val_mi_median": float(np.median(mi_d)),
        "val_median": float(np.median(sr_d)),
        "val_improved_share": float((sr_d < mi_d).mean()),
    }


@dataclass
class ProfileTrainConfig:
    data: str
    out: str
    epochs: int = 8
    lr: float = 1e-3
    gamma: float = 0.8
    batch: int = 256
    weight_decay: float = 1e-4
    smooth_l1_beta: float = 0.05
    seed: int = 0
    threads: int = 2
    max_mi_mae_mm: float | None = 2.0
    resume: bool = False
    #: Train on a random one of the 8 symmetries per batch (see symmetry_permutations).
    #: Off by default: on validation it was worse (0.1969 mm after 7 epochs against 0.1955
    #: after 3 without), so the data are not quite mirror-symmetric.
    augment: bool = False


def train_profile(cfg: ProfileTrainConfig) -> dict[str, Any]:
    """Train, validate each epoch, keep ``best`` and ``last``; returns the final state."""
    from training.resumable import BestMetric, ResumableRun

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train = SRCache(Path(cfg.data) / "train").within(cfg.max_mi_mae_mm)
    val = SRCache(Path(cfg.data) / "val").within(cfg.max_mi_mae_mm)
    t0 = time.perf_counter()
    X, Y = build_arrays(train)
    log.info("%d rings from %d cases (%.0f s)", len(X), len(train), time.perf_counter() - t0)
    X_t, Y_t = torch.from_numpy(X), torch.from_numpy(Y)
    net = ProfileNet()
    net.mean.copy_(X_t.mean(0))
    # Floor: a feature constant over the training rings (a saturated probability) must
    # not turn a small change at run time into a huge input.
    net.std.copy_(X_t.std(0).clamp_min(STD_FLOOR))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # One generator for the whole run (seeded once), its state saved with `last`: a
    # resumed run shuffles exactly as an uninterrupted one.
    g = torch.Generator().manual_seed(cfg.seed)
    run = ResumableRun(
        out,
        model=net,
        optimizer=opt,
        config_format=CONFIG_FORMAT,
        best=BestMetric("val_mean", "min"),
        generator=g,
        logger=log,
        # train_log.jsonl: one line per epoch.
        log_events=False,
    )
    run.start(cfg.resume)
    config = {"format": CONFIG_FORMAT, "n_features": N_FEATURES, "train": asdict(cfg)}
    loss_fn = nn.SmoothL1Loss(beta=cfg.smooth_l1_beta)
    syms = symmetry_permutations()
    epoch_loss = [0.0, 0]  # summed batch loss x size, rings

    def epoch_start(epoch: int) -> None:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * cfg.gamma**epoch
        net.train()
        epoch_loss[:] = [0.0, 0]

    def epoch_batches(epoch: int, first: int) -> Iterable[torch.Tensor]:
        # ``last`` is saved at epoch ends only, so an epoch always starts at batch 0.
        assert first == 0, "the profile trainer resumes at epoch boundaries"
        perm = torch.randperm(len(X_t), generator=g)
        for i in range(0, len(perm), cfg.batch):
            yield perm[i : i + cfg.batch]

    def train_step(b: torch.Tensor) -> None:
        xb, yb = X_t[b], Y_t[b]
        if cfg.augment:
            fi, fs, ti, ts = syms[int(torch.randint(len(syms), (1,), generator=g))]
            xb, yb = xb[:, fi] * fs, yb[:, ti] * ts
        loss = loss_fn(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        epoch_loss[0] += float(loss.detach()) * len(b)
        epoch_loss[1] += len(b)

    def validate_epoch() -> dict[str, Any]:
        metrics = validate(net, val)
        train_loss = epoch_loss[0] / epoch_loss[1]
        return {"train_loss": train_loss, **metrics, "time_s": time.perf_counter() - t0}

    run.fit(
        epochs=cfg.epochs,
        batches_per_epoch=math.ceil(len(X_t) / cfg.batch),
        epoch_batches=epoch_batches,
        train_step=train_step,
        validate=validate_epoch,
        config=lambda metrics: config,
        epoch_start=epoch_start,
    )
    latest = run.state["history"][-1] if run.state["history"] else {}
    return {**latest, **run.state}


def load_profile_net(ckpt: str | Path) -> tuple[ProfileNet, dict[str, Any], str]:
    """(ProfileNet in eval mode, config, weights sha256) of a checkpoint folder."""
    from training.segmenter.checkpoint import load_tensors, read_json, sha256_file

    ckpt = Path(ckpt)
    config = read_json(ckpt / "config.json")
    if config.get("format") != CONFIG_FORMAT or config.get("n_features") != N_FEATURES:
        raise ValueError(f"{ckpt}: not a ring-profile checkpoint for {N_FEATURES} features")
    net = ProfileNet()
    net.load_state_dict(load_tensors(ckpt / "model.safetensors"))
    net.eval()
    return net, config, sha256_file(ckpt / "model.safetensors")
