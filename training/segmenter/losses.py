"""BCE + Dice loss (3DAngioNet L_seg) and the Dice metric."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - Dice on probabilities, per sample (smooth 1), averaged over the batch."""
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (p * t).sum(1)
    dice = (2.0 * inter + smooth) / (p.sum(1) + t.sum(1) + smooth)
    return (1.0 - dice).mean()


class BCEDiceLoss(torch.nn.Module):
    """BCE (with logits, mean over pixels) + soft Dice loss; ``forward`` returns the sum."""

    def __init__(self, smooth: float = 1.0, bce_weight: float = 1.0, dice_weight: float = 1.0):
        super().__init__()
        self.smooth, self.bce_weight, self.dice_weight = smooth, bce_weight, dice_weight

    def parts(
        self, logits: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        bce = F.binary_cross_entropy_with_logits(logits, target)
        return bce, soft_dice_loss(logits, target, self.smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce, dice = self.parts(logits, target)
        return self.bce_weight * bce + self.dice_weight * dice


def dice_per_sample(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5):
    """Hard Dice per sample at probability ``threshold`` (both empty -> 1)."""
    pred = (torch.sigmoid(logits) > threshold).flatten(1).float()
    t = (target > 0.5).flatten(1).float()
    inter = (pred * t).sum(1)
    denom = pred.sum(1) + t.sum(1)
    return torch.where(denom > 0, 2.0 * inter / denom.clamp_min(1.0), torch.ones_like(denom))
