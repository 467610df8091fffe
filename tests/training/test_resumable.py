"""The shared resumable training loop (training/resumable.py) on a tiny CPU model:
interrupted + resumed == uninterrupted bit for bit, best tracking, refused checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from training.resumable import BestMetric, ResumableRun
from training.segmenter.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    CheckpointError,
    load_tensors,
    verify_checkpoint,
)

N, BATCH = 24, 4  # 6 batches an epoch
PER_EPOCH = N // BATCH
FORMAT = "test-resumable/1"


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(N, 5, generator=g)
    return x, x @ torch.linspace(-1, 1, 5)[:, None] + 0.1


class Job:
    """A tiny regression run: dropout draws from the global RNG (or a shuffle from the
    run's own generator), Adam, ExponentialLR."""

    def __init__(self, out: Path, *, own_generator: bool = False, seed: int = 0, init: int = 0):
        torch.manual_seed(init)  # a resumed run must not depend on its fresh init
        self.x, self.y = _data()
        # Dropout draws from the global RNG; a run with its own generator restores only
        # that one, so it must not draw from the global RNG.
        drop = torch.nn.Identity() if own_generator else torch.nn.Dropout(0.3)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(5, 16), torch.nn.ReLU(), drop, torch.nn.Linear(16, 1)
        )
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        self.sched = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma=0.9)
        self.gen = torch.Generator().manual_seed(seed) if own_generator else None
        self.run = ResumableRun(
            out,
            model=self.model,
            optimizer=self.opt,
            scheduler=self.sched,
            generator=self.gen,
            config_format=FORMAT,
            best=BestMetric("val_loss", "min"),
            signature={"seed": seed, "n": N},
        )
        self.seed = seed
        self.val_losses: list[float] | None = None  # scripted validation results
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def batches(self, epoch: int, first: int):
        if self.gen is not None:  # the run's own generator: whole epochs only
            order = torch.randperm(N, generator=self.gen).numpy()
        else:
            order = np.random.default_rng(self.seed + epoch).permutation(N)
        for b in range(first, PER_EPOCH):
            yield torch.as_tensor(order[b * BATCH : (b + 1) * BATCH])

    def step(self, idx: torch.Tensor) -> None:
        self.model.train()
        loss = torch.nn.functional.mse_loss(self.model(self.x[idx]), self.y[idx])
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def validate(self) -> dict[str, float]:
        self.model.eval()
        with torch.no_grad():
            loss = float(torch.nn.functional.mse_loss(self.model(self.x), self.y))
        st = self.run.state
        self.snapshots[st["epoch"]] = {k: v.clone() for k, v in self.model.state_dict().items()}
        if self.val_losses is not None:
            loss = self.val_losses[len(st["history"])]
        return {"val_loss": loss}

    def config(self, metrics: dict[str, float]) -> dict:
        return {"format": FORMAT, "metrics": metrics}

    def fit(self, epochs: int, **kw) -> str:
        return self.run.fit(
            epochs=epochs,
            batches_per_epoch=PER_EPOCH,
            epoch_batches=self.batches,
            train_step=self.step,
            validate=self.validate,
            config=self.config,
            **kw,
        )


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_tensors(out / "last" / MODEL_FILE)


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_run_stopped_mid_epoch_and_resumed_equals_an_uninterrupted_one(tmp_path) -> None:
    straight = Job(tmp_path / "straight")
    straight.run.start(resume=False)
    assert straight.fit(3, save_every=4) == "done"

    part = Job(tmp_path / "part")
    part.run.start(resume=False)
    assert part.fit(3, max_steps=9, save_every=4) == "done"  # 9 = 1.5 epochs
    assert verify_checkpoint(tmp_path / "part" / "last")["batch_in_epoch"] == 3
    again = Job(tmp_path / "part", init=99)
    assert again.run.start(resume=True) is not None
    assert (again.run.state["step"], again.run.state["epoch"]) == (9, 1)
    assert again.fit(3, save_every=4) == "done"

    assert again.run.state["step"] == straight.run.state["step"] == 3 * PER_EPOCH
    _assert_same(straight.model.state_dict(), again.model.state_dict())
    _assert_same(_weights(tmp_path / "straight"), _weights(tmp_path / "part"))
    assert again.sched.get_last_lr() == straight.sched.get_last_lr()
    log = [json.loads(x) for x in (tmp_path / "part" / "train_log.jsonl").read_text().splitlines()]
    # Saved every 4 steps but not at an epoch's end (validation saves then): 4, 8 | 16.
    kept = [(e["event"], e["step"]) for e in log if e["event"] in ("resume", "checkpoint")]
    assert kept == [("checkpoint", 4), ("checkpoint", 8), ("resume", 9), ("checkpoint", 16)]


def test_an_interrupted_run_saves_last_and_resumes_bit_for_bit(tmp_path) -> None:
    straight = Job(tmp_path / "straight")
    straight.run.start(resume=False)
    straight.fit(2)

    part = Job(tmp_path / "part")
    part.run.start(resume=False)
    asked = iter([None] * 3 + [15])  # a signal arrives after the fourth step

    assert part.fit(2, stop_requested=lambda: next(asked, None)) == "interrupted"
    assert verify_checkpoint(tmp_path / "part" / "last")["step"] == 4
    again = Job(tmp_path / "part", init=7)
    again.run.start(resume=True)
    assert again.fit(2) == "done"
    _assert_same(straight.model.state_dict(), again.model.state_dict())


def test_the_runs_own_generator_is_saved_and_restored(tmp_path) -> None:
    straight = Job(tmp_path / "straight", own_generator=True)
    straight.run.start(resume=False)
    straight.fit(3)
    part = Job(tmp_path / "part", own_generator=True)
    part.run.start(resume=False)
    part.fit(2)
    again = Job(tmp_path / "part", own_generator=True)
    again.run.start(resume=True)
    again.fit(3)
    _assert_same(straight.model.state_dict(), again.model.state_dict())


@pytest.mark.parametrize(
    ("mode", "losses", "best_epoch"), [("min", [3.0, 1.0, 2.0], 2), ("max", [1.0, 3.0, 2.0], 2)]
)
def test_best_keeps_the_model_of_the_best_validation(tmp_path, mode, losses, best_epoch) -> None:
    job = Job(tmp_path)
    job.run.best = BestMetric("val_loss", mode)
    job.val_losses = losses
    job.run.start(resume=False)
    job.fit(3)
    st = job.run.state
    want = min(losses) if mode == "min" else max(losses)
    assert st["best_val_loss"] == want and st["best_epoch"] == best_epoch
    assert st["best_step"] == best_epoch * PER_EPOCH
    best = tmp_path / "best"
    saved = verify_checkpoint(best)
    assert saved["epoch"] == best_epoch and saved["best_val_loss"] == want
    assert not (best / "optim.safetensors").exists()  # best is a model, not a resume point
    _assert_same(load_tensors(best / MODEL_FILE), job.snapshots[best_epoch])
    assert json.loads((best / CONFIG_FILE).read_text())["metrics"] == {"val_loss": want}
    log = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [e["best"] for e in log if e["event"] == "val"] == [True, True, False]
    assert [h["val_loss"] for h in st["history"]] == losses


def test_a_missing_metric_never_becomes_the_best() -> None:
    b = BestMetric("val_dice", "max")
    assert b.key == "best_val_dice"
    assert not b.improves(None, None) and b.improves(0.1, None) and not b.improves(0.1, 0.2)


def _one_epoch(out: Path) -> None:
    job = Job(out)
    job.run.start(resume=False)
    job.fit(1)


def test_an_existing_run_is_not_overwritten(tmp_path) -> None:
    _one_epoch(tmp_path)
    with pytest.raises(FileExistsError, match="--resume"):
        Job(tmp_path).run.start(resume=False)


def test_resume_without_a_checkpoint_starts_fresh(tmp_path) -> None:
    job = Job(tmp_path)
    assert job.run.start(resume=True) is None and job.run.state["step"] == 0
    log = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "resume" and log[0]["from"] is None


def test_a_corrupt_checkpoint_is_refused_by_name(tmp_path) -> None:
    _one_epoch(tmp_path)
    weights = tmp_path / "last" / MODEL_FILE
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=str(weights)):
        Job(tmp_path).run.start(resume=True)


def test_a_checkpoint_of_another_trainer_is_refused(tmp_path) -> None:
    # A complete, consistent checkpoint of the same run settings, written by another trainer.
    from training.segmenter.checkpoint import save_checkpoint

    job = Job(tmp_path / "other")
    save_checkpoint(
        tmp_path / "foreign" / "last",
        model=job.model,
        config={"format": "angio-sr-checkpoint/1"},
        state={"epoch": 1, "best_val_loss": None, "run": {"seed": 0, "n": N}},
        optimizer=job.opt,
        rng_state=torch.get_rng_state(),
    )
    with pytest.raises(CheckpointError, match="format 'angio-sr-checkpoint/1'"):
        Job(tmp_path / "foreign").run.start(resume=True)


def test_a_checkpoint_of_another_run_names_the_setting(tmp_path) -> None:
    _one_epoch(tmp_path)
    with pytest.raises(CheckpointError, match="different seed"):
        Job(tmp_path, seed=1).run.start(resume=True)


def test_a_model_only_checkpoint_cannot_be_resumed(tmp_path) -> None:
    _one_epoch(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "last")
    shutil.copytree(tmp_path / "best", tmp_path / "last")
    with pytest.raises(CheckpointError, match="not a resumable run"):
        Job(tmp_path).run.start(resume=True)


def test_a_model_of_another_shape_is_refused(tmp_path) -> None:
    _one_epoch(tmp_path)
    job = Job(tmp_path)
    job.model[0] = torch.nn.Linear(5, 8)
    job.run.model = job.model
    with pytest.raises(CheckpointError, match="does not fit"):
        job.run.start(resume=True)
