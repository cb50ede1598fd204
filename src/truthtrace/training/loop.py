"""``fit_module``: the training loop shared by the torch detectors (mlp, lstm, gnn).

AdamW with linear warmup + cosine decay, class-weighted BCE on logits, gradient clipping,
an optional EMA of the weights, mixed precision on CUDA only, early stopping on validation
AUROC, atomic best/last checkpoints that resume exactly, an optional ``torch.compile`` of the
module's forward (eager where it fails), and tracker logging: per epoch the scalars, the per-step
learning rate, histograms of every weight and gradient, and at the end the trained module as an
artifact. The caller
gives the module and a ``forward(module, batch, device) -> (B,)`` logits function, so the
loop never knows which features a detector reads.
"""

from __future__ import annotations

import copy
import math
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from truthtrace import metrics
from truthtrace.training import ddp
from truthtrace.training.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from truthtrace.training.compile import compile_forward, restore_forward
from truthtrace.training.config import LoopConfig
from truthtrace.training.ema import ema_module, make_ema
from truthtrace.training.tracking import Tracker, log_epoch, log_module, start_tracker

Batch = dict[str, Any]
Forward = Callable[[torch.nn.Module, Batch, str], torch.Tensor]


@dataclass
class FitResult:
    """What a run did: best epoch (1-based) and its val AUROC, epochs run, the per-epoch history."""

    best_epoch: int
    best_auroc: float
    epochs: int
    stopped_early: bool
    pos_weight: float
    history: list[dict] = field(default_factory=list)

    def info(self) -> dict:
        """JSON-safe summary without the history."""
        return {k: v for k, v in asdict(self).items() if k != "history"}


def batch_labels(batch: Batch, whole: bool = False) -> torch.Tensor:
    """Labels ``(B,)`` int64 of a batch (1 = hallucinated, 0 = correct, -1 = unknown); ``whole``: of the whole batch
    when this rank holds a part of it (``"label_full"``, see :mod:`truthtrace.training.ddp`)."""
    return torch.as_tensor(batch["label_full" if whole and "label_full" in batch else "label"]).long().reshape(-1)


def label_counts(batches: Iterable[Batch]) -> tuple[int, int, int]:
    """One pass over ``batches``: ``(n_negative, n_positive, n_batches)`` of the whole batches; unknown labels are
    skipped."""
    neg = pos = n = 0
    for batch in batches:
        y = batch_labels(batch, whole=True)
        neg, pos, n = neg + int((y == 0).sum()), pos + int((y == 1).sum()), n + 1
    return neg, pos, n


def pos_weight_from_counts(n_neg: int, n_pos: int) -> float:
    """BCE ``pos_weight`` = n_negative / n_positive, so both classes weigh the same in the loss.

    Raises:
        ValueError: if either class is absent.
    """
    if n_neg == 0 or n_pos == 0:
        raise ValueError(f"the train split must contain both classes (got {n_neg} correct, {n_pos} hallucinated)")
    return n_neg / n_pos


def predict(module: torch.nn.Module, forward: Forward, batches: Iterable[Batch],
            device: str) -> tuple[np.ndarray, np.ndarray]:
    """Score ``batches`` in eval mode; returns scores ``(n,)`` float64 (logits) and labels ``(n,)`` int64."""
    was_training = module.training
    module.eval()
    scores, labels = [], []
    with torch.no_grad():
        for batch in batches:
            scores.append(forward(module, batch, device).float().cpu().numpy().astype(np.float64).reshape(-1))
            labels.append(batch_labels(batch).numpy() if "label" in batch else np.full(len(scores[-1]), -1))
    module.train(was_training)
    if not scores:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64)
    return np.concatenate(scores), np.concatenate(labels).astype(np.int64)


def warmup_cosine(total_steps: int, warmup_frac: float) -> Callable[[int], float]:
    """LR multiplier: linear from ~0 to 1 over the warmup steps, then cosine down to 0 at ``total_steps``."""
    warmup = int(round(warmup_frac * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _set_epoch(batches: Iterable[Batch], epoch: int) -> None:
    """Reshuffle a loader for ``epoch`` when it (or its dataset) supports ``set_epoch``."""
    for obj in (batches, getattr(batches, "dataset", None)):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
            return


def _val_auroc(module, forward, val, device) -> float:
    scores, y = predict(module, forward, val, device)
    known = y >= 0
    with warnings.catch_warnings(record=True):
        return metrics.auroc(scores[known], y[known])


class _Run:
    """The objects of one training run (kept together so checkpointing sees them all)."""

    def __init__(self, model: torch.nn.Module, config: LoopConfig, steps_per_epoch: int, pos_weight: float):
        self.config, self.device = config, config.resolve_device()
        self.model = model.to(self.device)
        self.writer = ddp.is_writer()  # rank 0 (or one process) writes checkpoints and logs
        decay, no_decay = [], []
        for p in model.parameters():  # no weight decay on biases and norm gains (1-d tensors)
            (decay if p.ndim > 1 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)
        schedule = warmup_cosine(config.max_epochs * max(1, steps_per_epoch), config.warmup_frac)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.ema = make_ema(model, config.ema_decay) if config.ema_decay is not None else None
        dev_type = torch.device(self.device).type
        self.amp_dtype = None
        if config.amp and dev_type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.autocast = (lambda: torch.autocast(dev_type, dtype=self.amp_dtype)) if self.amp_dtype else nullcontext
        self.loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=self.device))
        self.step_lrs: list[tuple[int, float]] = []  # (optimizer step, lr) of the current epoch
        # after the EMA copy (a deep copy) is made; fit_module restores the eager forward at the end
        compile_forward(self.model, config.compile, f"{type(model).__name__}.forward")
        self.train_model = ddp.wrap(self.model)  # DDP under torchrun: gradients all-reduced in backward

    def eval_module(self) -> torch.nn.Module:
        return ema_module(self.ema, self.model)

    def step(self, forward: Forward, batch: Batch, real: bool = True) -> float | None:
        """One optimizer step on ``batch``; returns the loss, or None if no label in it is known.

        Under DDP every rank steps on every turn (an all-reduce waits for all): a batch without a known
        label, or a filler (``real`` False), then steps with zero loss. A rank's part of a split batch weighs
        its share of the batch (:func:`~truthtrace.training.ddp.part_weight`); the loss returned is the part's mean.
        """
        y = batch_labels(batch).to(self.device)
        known = (y >= 0) & real
        if not bool(known.any()) and self.train_model is self.model:
            return None
        with self.autocast():
            logits = forward(self.train_model, batch, self.device).reshape(-1)
        if not bool(known.any()):
            loss = logits.float().sum() * 0.0
            self._backward_and_step(loss)
            return None
        loss = self.loss_fn(logits[known].float(), y[known].float())
        self._backward_and_step(loss * ddp.part_weight(batch, int(known.sum())))
        return float(loss.detach())

    def _backward_and_step(self, loss: torch.Tensor) -> None:
        """Backward (DDP all-reduces the gradients here), clip, optimizer and scheduler step, EMA update."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step_lrs.append((self.scheduler.last_epoch, self.optimizer.param_groups[0]["lr"]))
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def epoch(self, forward: Forward, train: Iterable[Batch], val: Iterable[Batch], epoch: int) -> dict:
        """Train one epoch (0-based ``epoch``) and validate; returns the epoch's record."""
        _set_epoch(train, epoch)
        self.model.train()
        self.step_lrs = []
        steps = (self.step(forward, batch, real) for batch, real in ddp.rank_batches(train))
        losses = [loss for loss in steps if loss is not None]
        auroc = _val_auroc(self.eval_module(), forward, val, self.device)
        if math.isnan(auroc):
            raise ValueError("the val split must contain both classes for early stopping on AUROC")
        return {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                "val_auroc": auroc, "lr": self.scheduler.get_last_lr()[0]}

    def checkpoint(self, tag: str, best_state: dict | None, meta: dict) -> None:
        if self.config.checkpoint_dir and self.writer:
            save_checkpoint(self.config.checkpoint_dir, tag, model=self.model, optimizer=self.optimizer,
                            scheduler=self.scheduler, ema=self.ema, best_state=best_state, meta=meta)


def _advance(run: _Run, state: dict, best_state: dict | None, record: dict) -> dict | None:
    """Fold one epoch's ``record`` into ``state``, checkpoint best/last; returns the best weights so far."""
    state["history"].append(record)
    state["epoch"] = record["epoch"]
    if record["val_auroc"] > state["best_auroc"]:
        best_state = copy.deepcopy(run.eval_module().state_dict())
        state.update(best_auroc=record["val_auroc"], best_epoch=record["epoch"], bad_epochs=0)
        run.checkpoint("best", best_state, state)
    else:
        state["bad_epochs"] += 1
    run.checkpoint("last", best_state, state)
    return best_state


# settings that do not change the trained weights, so a run may resume with other values
_FREE_SETTINGS = ("resume", "quiet", "tracking", "log_dir", "checkpoint_dir", "device", "amp")


def _settings(config: LoopConfig, desc: str) -> dict:
    """What a checkpoint must have been trained with to be resumed by this run."""
    return {"desc": desc, **{k: v for k, v in config.to_dict().items() if k not in _FREE_SETTINGS}}


def _start_state(run: _Run, desc: str) -> tuple[dict, dict | None]:
    """Loop counters (and best weights) to start from: fresh, or from ``last`` when resuming.

    Raises:
        ValueError: if ``last`` was written with other settings (e.g. another lr or layer).
    """
    cfg = run.config
    fresh = {"epoch": 0, "best_auroc": -math.inf, "best_epoch": 0, "bad_epochs": 0, "history": [],
             "settings": _settings(cfg, desc)}
    if not (cfg.resume and has_checkpoint(cfg.checkpoint_dir, "last")):
        return fresh, None
    meta, best = load_checkpoint(cfg.checkpoint_dir, "last", model=run.model, optimizer=run.optimizer,
                                 scheduler=run.scheduler, ema=run.ema)
    saved = meta.get("settings", {})
    diff = sorted(k for k in set(saved) | set(fresh["settings"]) if saved.get(k) != fresh["settings"].get(k))
    if diff:
        raise ValueError(f"{cfg.checkpoint_dir}/last.json was written with other settings ({', '.join(diff)}); "
                         "delete the checkpoint dir or turn resume off")
    meta["best_auroc"] = -math.inf if meta["best_auroc"] is None else meta["best_auroc"]
    return meta, best


def _train_epochs(run: _Run, state: dict, best_state: dict | None, data: tuple, tracker: Tracker,
                  callback: Callable[[int, dict], None] | None, desc: str) -> dict | None:
    """The epochs still to run (``data`` = forward, train, val); returns the best weights so far."""
    cfg = run.config
    # a resumed run that had already early-stopped trains no further
    start = state["epoch"] if state["bad_epochs"] < cfg.patience else cfg.max_epochs
    with tqdm(range(start, cfg.max_epochs), desc=desc, disable=cfg.quiet, leave=False) as bar:
        for epoch in bar:
            record = run.epoch(*data, epoch)
            log_epoch(tracker, record, run.step_lrs, run.model)
            best_state = _advance(run, state, best_state, record)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}", val_auroc=f"{record['val_auroc']:.4f}",
                            best=state["best_epoch"])
            if callback is not None:
                callback(epoch + 1, record)
            if state["bad_epochs"] >= cfg.patience:
                break
    return best_state


def fit_module(model: torch.nn.Module, forward: Forward, train: Iterable[Batch], val: Iterable[Batch],
               config: LoopConfig, callback: Callable[[int, dict], None] | None = None,
               desc: str = "train") -> FitResult:
    """Train ``model`` on ``train``, early-stopping on ``val`` AUROC; leaves the best weights in ``model``.

    Args:
        model: module whose ``forward(model, batch, device)`` gives logits ``(B,)`` (> 0 = hallucinated).
        forward: maps a batch dict to logits on ``device``; batches need ``"label"`` ``(B,)`` (-1 = unknown,
            ignored).
        train, val: re-iterable batch sources (lists or DataLoaders); each pass is one epoch. ``set_epoch``
            is called on ``train`` (or its ``dataset``) before each epoch when present.
        config: the :class:`LoopConfig`.
        callback: called as ``callback(epoch, record)`` after each epoch's checkpoint (tests use it to crash).
        desc: progress-bar label.
    Returns:
        A :class:`FitResult`. With EMA on, ``model`` holds the best EMA weights.
    Raises:
        ValueError: if train or val lacks a class, or a checkpoint to resume does not fit.
    """
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    n_neg, n_pos, n_batches = label_counts(train)
    ddp.check_same_data(n_neg, n_pos, n_batches)
    pos_weight = pos_weight_from_counts(n_neg, n_pos)
    run = _Run(model, config, ddp.steps_per_epoch(n_batches, ddp.splits_batches(train)), pos_weight)
    state, best_state = _start_state(run, desc)
    tracker = start_tracker(config.tracking if run.writer else "none", config.log_dir,
                            {**config.to_dict(), "compile": config.compile}, run_name=desc)
    try:
        best_state = _train_epochs(run, state, best_state, (forward, train, val), tracker, callback, desc)
        if best_state is not None:
            run.model.load_state_dict(best_state)
        if tracker.active:
            log_module(tracker, run.model, "detector", {"desc": desc, "pos_weight": pos_weight, **{
                k: state[k] for k in ("best_epoch", "best_auroc", "epoch", "history")}, "config": config.to_dict()})
    finally:
        restore_forward(run.model)
        tracker.close()
    run.model.eval()
    if not config.quiet:
        stop = " (early stop)" if state["epoch"] < config.max_epochs else ""
        tqdm.write(f"{desc}: best val AUROC {state['best_auroc']:.4f} at epoch {state['best_epoch']} "
                   f"of {state['epoch']}{stop}")
    return FitResult(best_epoch=state["best_epoch"], best_auroc=float(state["best_auroc"]), epochs=state["epoch"],
                     stopped_early=state["epoch"] < config.max_epochs, pos_weight=pos_weight,
                     history=state["history"])
