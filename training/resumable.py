"""One resumable training loop for every trainer: counters, checkpoints, resume, best, log.

A run folder ``OUT`` holds::

    last/             everything a resumed run needs to continue bit-for-bit: model,
                      optimizer, scheduler, RNG state (the global torch RNG, or the run's
                      own generator), counters, the run's signature and the trainer's
                      extra state (training.segmenter.checkpoint format: safetensors +
                      JSON, written atomically, every file hashed)
    best/             the model with the best validation metric so far (no optimizer)
    epoch_N/          optional resumable copies after each epoch
    train_log.jsonl   one JSON object per event

Counters (``ResumableRun.state``): ``epoch`` (completed epochs), the position in the epoch
(batches taken, under the trainer's key), ``step`` (global optimizer steps), the best
metric value (under its key), ``best_step``, ``best_epoch`` and ``history`` (one entry per
validation). The trainer supplies the data order of an epoch as a function of (epoch,
first batch), so that a resumed run replays exactly the batches an uninterrupted run
takes; and a train step, a validation and the checkpoint's config.json.

A run whose ``last`` exists is refused unless resuming; resuming checks that ``last`` is a
complete checkpoint of this trainer (config.json ``format``) and of the same run (every
key of the signature), else :class:`CheckpointError` names the file and the key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from training.segmenter.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    OPTIM_FILE,
    RNG_KEY,
    CheckpointError,
    find_checkpoint,
    load_tensors,
    optimizer_state_dict,
    read_json,
    save_checkpoint,
    verify_checkpoint,
)

LOG_FILE = "train_log.jsonl"

_default_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BestMetric:
    """The validation metric that picks ``best``: its key in the metrics, whether lower or
    higher is better, and the state key its best value is kept under (default
    ``best_<name>``)."""

    name: str
    mode: Literal["min", "max"]
    state_key: str | None = None

    @property
    def key(self) -> str:
        return self.state_key or f"best_{self.name}"

    def improves(self, value: Any, best: Any) -> bool:
        """Whether ``value`` beats ``best`` (any value beats no best; no value beats none)."""
        if value is None:
            return False
        if best is None:
            return True
        return value < best if self.mode == "min" else value > best


class ResumableRun:
    """The state of one training run in ``out`` and the loop that advances it.

    ``generator``: the run's own torch generator, whose state is saved and restored (the
    global torch RNG is then not: such a run must draw only from its generator); None
    saves and restores the global torch RNG. ``signature``: JSON settings a resumed run
    must share with the run it continues (None: not checked). ``position_key``: the state
    key of the position in the epoch. ``log_events``: also write lifecycle events (resume,
    periodic checkpoint, interruption) to train_log.jsonl, not only to the logger.
    """

    def __init__(
        self,
        out: str | Path,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        config_format: str,
        best: BestMetric,
        scheduler: Any = None,
        generator: torch.Generator | None = None,
        signature: dict[str, Any] | None = None,
        position_key: str = "batch_in_epoch",
        logger: logging.Logger | None = None,
        log_events: bool = True,
    ) -> None:
        self.out = Path(out)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.generator = generator
        self.config_format = config_format
        self.best = best
        self.signature = signature
        self.pos = position_key
        self.logger = logger or _default_log
        self.log_events = log_events
        self.state: dict[str, Any] = {
            "epoch": 0,
            position_key: 0,
            "step": 0,
            best.key: None,
            "best_step": None,
            "best_epoch": None,
            "history": [],
        }
        #: More JSON state of the trainer, saved with ``last`` and restored on resume.
        self.extra: dict[str, Any] = {}
        #: state.json of the checkpoint this run resumed from (None: a fresh run).
        self.saved: dict[str, Any] | None = None

    # ----- log ---------------------------------------------------------------------------

    def log(self, rec: dict[str, Any]) -> None:
        """One JSON object to ``out/train_log.jsonl`` and to the logger."""
        line = json.dumps(rec, default=float)
        self.logger.info(line)
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _event(self, rec: dict[str, Any]) -> None:
        if self.log_events:
            self.log(rec)
        else:
            self.logger.info(json.dumps(rec, default=float))

    # ----- resume ------------------------------------------------------------------------

    def start(self, resume: bool) -> Path | None:
        """Resume from ``out/last`` when ``resume`` (a fresh run when there is none); the
        checkpoint resumed from, or None.

        FileExistsError when a run exists and ``resume`` is off; CheckpointError when
        ``last`` is incomplete, corrupt, of another trainer or of another run.
        """
        last = find_checkpoint(self.out, "last")
        present = (self.out / "last").exists() or any(self.out.glob(".last.old-*"))
        if (last is not None or present) and not resume:
            where = last if last is not None else self.out / "last"
            raise FileExistsError(
                f"{where}: a run exists here; pass --resume or choose another --out"
            )
        if not resume:
            return None
        if last is None:
            if present:
                try:  # the reason, named by file
                    verify_checkpoint(self.out / "last")
                except ValueError as exc:
                    raise CheckpointError(f"cannot resume: {exc}") from exc
                raise CheckpointError(f"{self.out / 'last'}: cannot resume: not a checkpoint")
            note = "no checkpoint found, starting fresh"
            self._event({"event": "resume", "from": None, "note": note})
            return None
        self._load(last)
        self._event(
            {
                "event": "resume",
                "from": str(last),
                **{k: self.state[k] for k in ("epoch", self.pos, "step")},
            }
        )
        return last

    def _load(self, last: Path) -> None:
        saved = verify_checkpoint(last)
        config = read_json(last / CONFIG_FILE)
        if config.get("format") != self.config_format:
            raise CheckpointError(
                f"{last / CONFIG_FILE}: format {config.get('format')!r}, expected "
                f"{self.config_format!r} (a checkpoint of another trainer?)"
            )
        if self.signature is not None:
            run = saved.get("run")
            if not isinstance(run, dict):
                raise CheckpointError(f"{last}: state.json has no run signature ('run')")
            for k, want in self.signature.items():
                if run.get(k) != want:
                    raise CheckpointError(
                        f"{last}: cannot resume with a different {k} ({run.get(k)!r} -> {want!r})"
                    )
        for k in ("epoch", self.best.key, "optimizer"):
            if k not in saved:
                raise CheckpointError(f"{last}: state.json has no {k!r} (not a resumable run)")
        if self.scheduler is not None and "scheduler" not in saved:
            raise CheckpointError(f"{last}: state.json has no 'scheduler'")
        tensors = load_tensors(last / OPTIM_FILE)
        if RNG_KEY not in tensors:
            raise CheckpointError(f"{last / OPTIM_FILE}: no RNG state ({RNG_KEY!r})")
        try:
            self.model.load_state_dict(load_tensors(last / MODEL_FILE))
            self.optimizer.load_state_dict(optimizer_state_dict(tensors, saved["optimizer"]))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{last}: does not fit this model or optimizer: {exc}") from exc
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        if self.generator is not None:
            self.generator.set_state(tensors[RNG_KEY])
        else:
            torch.set_rng_state(tensors[RNG_KEY])
        defaults = {self.pos: 0, "step": 0, "best_step": None, "best_epoch": None, "history": []}
        for k in self.state:
            self.state[k] = saved[k] if k in saved else defaults[k]
        self.saved = saved

    # ----- save --------------------------------------------------------------------------

    def save(
        self,
        name: str,
        config: dict[str, Any],
        *,
        resumable: bool = True,
        rng_state: torch.Tensor | None = None,
    ) -> Path:
        """Write ``out/name`` atomically: the model, config.json, the counters (and the run
        signature); a resumable one also the optimizer, scheduler, RNG state (now, unless
        given) and the trainer's extra state."""
        state = dict(self.state)
        if self.signature is not None:
            state["run"] = self.signature
        if not resumable:
            return save_checkpoint(self.out / name, model=self.model, config=config, state=state)
        state |= self.extra
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        if rng_state is None:
            rng_state = (
                self.generator.get_state() if self.generator is not None else torch.get_rng_state()
            )
        return save_checkpoint(
            self.out / name,
            model=self.model,
            config=config,
            state=state,
            optimizer=self.optimizer,
            rng_state=rng_state,
        )

    def validated(
        self,
        metrics: dict[str, Any],
        config: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        keep_epoch: bool = False,
    ) -> bool:
        """Record a validation: history, best tracking (``best`` saved when it improves),
        a log line, ``last`` (and ``epoch_N`` when ``keep_epoch``). Whether it improved."""
        st = self.state
        st["history"].append({"epoch": st["epoch"], "step": st["step"], **metrics})
        improved = self.best.improves(metrics.get(self.best.name), st[self.best.key])
        if improved:
            st[self.best.key] = metrics[self.best.name]
            st["best_step"], st["best_epoch"] = st["step"], st["epoch"]
            self.save("best", config(metrics), resumable=False)
        self.log(
            {"event": "val", "epoch": st["epoch"], "step": st["step"], **metrics, "best": improved}
        )
        self.save("last", config(metrics))
        if keep_epoch:
            self.save(f"epoch_{st['epoch']}", config(metrics))
        return improved

    # ----- the loop ----------------------------------------------------------------------

    def fit(
        self,
        *,
        epochs: int,
        batches_per_epoch: int,
        epoch_batches: Callable[[int, int], Iterable[Any]],
        train_step: Callable[[Any], None],
        validate: Callable[[], dict[str, Any]],
        config: Callable[[dict[str, Any]], dict[str, Any]],
        save_every: int | None = None,
        max_steps: int | None = None,
        validate_at_max_steps: bool = True,
        keep_epochs: bool = False,
        epoch_start: Callable[[int], None] | None = None,
        stop_requested: Callable[[], int | None] | None = None,
        time_limit_s: float | None = None,
    ) -> str:
        """Train until ``epochs`` epochs (or ``max_steps`` steps) are done; returns "done",
        "max_steps" (stopped there without validating, when ``validate_at_max_steps`` is
        off) or "interrupted" (``stop_requested`` returned a signal number; ``last`` saved).

        ``epoch_batches(epoch, first)`` yields the batches of an epoch from batch ``first``
        on; ``train_step(batch)`` takes one optimizer step (the counters already count it);
        after each epoch the scheduler steps, ``validate()`` gives the metrics and
        :meth:`validated` records them. ``last`` is also saved every ``save_every`` steps.
        ``epoch_start(epoch)`` runs before each epoch's batches. ``time_limit_s``: wall
        seconds of this call after which the run stops as at ``max_steps`` (a lent GPU's
        lease is counted in minutes; the run validates and saves before it ends).
        """
        st, pos = self.state, self.pos
        deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        stop = max_steps is not None and st["step"] >= max_steps
        while st["epoch"] < epochs and not stop:
            if epoch_start is not None:
                epoch_start(st["epoch"])
            batches = epoch_batches(st["epoch"], st[pos])
            for batch in batches:
                st["step"] += 1
                st[pos] += 1
                train_step(batch)
                if max_steps is not None and st["step"] >= max_steps:
                    stop = True
                if deadline is not None and time.monotonic() >= deadline:
                    stop = True
                if st[pos] >= batches_per_epoch or stop:
                    break
                signum = stop_requested() if stop_requested is not None else None
                if signum is not None:
                    self.save("last", config({}))
                    self._event({"event": "interrupted", "signal": signum, "step": st["step"]})
                    return "interrupted"
                if save_every and st["step"] % save_every == 0:
                    self.save("last", config({}))
                    path = str(self.out / "last")
                    self._event({"event": "checkpoint", "step": st["step"], "path": path})
            del batches  # ends a DataLoader's workers before validation
            if stop and not validate_at_max_steps:
                self.save("last", config({}))
                return "max_steps"
            if st[pos] >= batches_per_epoch:
                st["epoch"] += 1
                st[pos] = 0
                if self.scheduler is not None:
                    self.scheduler.step()
                self.validated(validate(), config, keep_epoch=keep_epochs)
            elif stop:
                self.validated(validate(), config)
            signum = stop_requested() if stop_requested is not None else None
            if signum is not None:  # last/ was just saved
                self._event({"event": "interrupted", "signal": signum, "step": st["step"]})
                return "interrupted"
        return "done"
