from __future__ import annotations

import math

import pytest
import torch
from training.segmenter.losses import BCEDiceLoss, dice_per_sample, soft_dice_loss


def test_perfect_prediction_is_near_zero():
    y = torch.zeros(2, 1, 16, 32)
    y[:, :, 6:10, 4:28] = 1
    logits = (y * 2 - 1) * 30.0
    assert float(BCEDiceLoss()(logits, y)) < 1e-6
    assert torch.equal(dice_per_sample(logits, y), torch.ones(2))


def test_known_values():
    y = torch.ones(1, 1, 4, 4)
    logits = torch.zeros(1, 1, 4, 4)  # p = 0.5 everywhere
    bce, dice = BCEDiceLoss().parts(logits, y)
    assert float(bce) == pytest.approx(math.log(2), rel=1e-6)
    # 1 - (2 * 8 + 1) / (8 + 16 + 1)
    assert float(dice) == pytest.approx(1 - 17 / 25, rel=1e-6)
    assert float(BCEDiceLoss()(logits, y)) == pytest.approx(math.log(2) + 8 / 25, rel=1e-6)


def test_dice_is_per_sample_and_smoothed():
    y = torch.zeros(2, 1, 4, 4)
    y[0, 0, 0, 0] = 1
    logits = torch.full_like(y, -30.0)  # predicts nothing
    # sample 0: 1 - 1/2; sample 1 (empty, empty): 1 - 1/1 = 0
    assert float(soft_dice_loss(logits, y)) == pytest.approx(0.25, abs=1e-6)
    assert dice_per_sample(logits, y).tolist() == [0.0, 1.0]


def test_hard_dice_at_threshold():
    y = torch.zeros(1, 1, 2, 4)
    y[0, 0, 0] = 1  # 4 pixels
    logits = torch.full_like(y, -5.0)
    logits[0, 0, 0, :2] = 5.0  # 2 hits
    logits[0, 0, 1, :2] = 5.0  # 2 false positives
    assert float(dice_per_sample(logits, y)[0]) == pytest.approx(2 * 2 / (4 + 4))
