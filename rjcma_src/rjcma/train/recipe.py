"""The paper's training schedule (§4.2.2) as a pure state machine, without torch.

The loop asks the recipe two things: which learning rate to use for a step (:meth:`Recipe.lr_for_step`) and,
at the end of each epoch, what to do given the validation CCC (:meth:`Recipe.end_epoch`). The answer is a
:class:`Decision`: whether this epoch is the new best (snapshot it) or the best state must be reloaded, whether
a backbone layer group is released (new optimizer, lr reset, warm-up again), and whether to stop.

Schedule, in the paper's words and the released code's numbers:

* **Release 0 at epoch 0.** The first of the three backbone layer groups is trainable from the start.
* **Warm-up.** For the first ``warmup_epochs`` epochs after each release the lr ramps linearly *within* the epoch
  from ``lr / n_steps`` to ``lr`` ("repetitive warm-up until epoch 5").
* **ReduceLROnPlateau** (mode max on validation CCC, ``patience``, ``factor``) after the warm-up. Its own best
  and bad-epoch counter start afresh with each release (a new scheduler). An improvement is a strictly larger
  CCC (threshold 0). The lr never goes below the floor ``min_lr``.
* **Gradual release.** When a reduction is due while the lr already sits at the floor (the lr "has fallen below
  ``min_lr``": 1e-5 → 1e-6 → 1e-7 → 1e-8 → release), the next group is released: new optimizer and scheduler,
  lr reset to ``lr``, best state reloaded, early-stop counter reset. Nothing left to release → stop.
* **Best state reloaded at the end of every epoch**: an epoch that improves the best CCC becomes the best state;
  any other epoch ends by loading the best state back.
* **Early stopping** after ``early_stop`` epochs without improvement (counter reset at each release), and at
  most ``max_epochs`` epochs.

Cached mode (frozen encoders, features read from the store) has no backbone to release (``groups=0``). The
recipe then degrades to warm-up + plateau + best-state reload + early stopping: the epoch-0 "release" only
starts the schedule, and the first reduction due at the floor stops training ("floor reached, nothing left to
release"). The loop logs this as the event ``no-backbone``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rjcma.config import TrainConfig

_REL_EPS = 1e-6  # tolerance when comparing a learning rate with the floor


@dataclass
class Decision:
    """What the loop must do after an epoch."""

    epoch: int
    score: float
    improved: bool  # this epoch is the new best: snapshot the model
    reload_best: bool  # load the best state back (always True when not improved and a best exists)
    release: int | None  # index of the layer group released now (new optimizer, lr reset), else None
    stop: bool
    lr_next: float  # base lr of the next epoch
    events: list[str] = field(default_factory=list)
    stop_reason: str = ""


@dataclass
class Recipe:
    """State of the schedule. All fields are plain numbers so :meth:`state_dict` is JSON."""

    lr: float = 1e-5
    min_lr: float = 1e-8
    warmup_epochs: int = 5
    patience: int = 5
    factor: float = 0.1
    early_stop: int = 50
    max_epochs: int = 100
    groups: int = 3  # backbone layer groups available (0 in cached mode)

    # ---- state ---------------------------------------------------------------------------------
    epoch: int = 0  # next epoch to run
    base_lr: float = -1.0  # current lr outside warm-up (set by start())
    released: int = 0  # groups released so far
    release_epoch: int = 0  # epoch of the latest release
    best_score: float = float("-inf")
    best_epoch: int = -1
    since_best: int = 0  # early-stop counter
    plateau_best: float = float("-inf")  # the current scheduler's best (fresh per release)
    plateau_bad: int = 0
    started: bool = False
    stopped: bool = False
    stop_reason: str = ""

    @classmethod
    def from_config(cls, train_cfg: TrainConfig, groups: int) -> "Recipe":
        """Build from ``cfg.train``; ``groups`` = backbone layer groups to release (0 for cached mode)."""
        return cls(
            lr=float(train_cfg.lr),
            min_lr=float(train_cfg.min_lr),
            warmup_epochs=int(train_cfg.warmup_epochs),
            patience=int(train_cfg.plateau_patience),
            factor=float(train_cfg.plateau_factor),
            early_stop=int(train_cfg.early_stop),
            max_epochs=int(train_cfg.max_epochs),
            groups=int(groups),
        )

    # ---- schedule ------------------------------------------------------------------------------
    def start(self) -> list[str]:
        """Epoch 0: release the first group (if any). Returns the events to log."""
        if self.started:
            return []
        self.started = True
        self.base_lr = self.lr
        self.release_epoch = 0
        if self.groups > 0:
            self.released = 1
            return ["release:0"]
        return ["no-backbone"]

    def in_warmup(self, epoch: int | None = None) -> bool:
        e = self.epoch if epoch is None else epoch
        return e - self.release_epoch < self.warmup_epochs

    def lr_for_step(self, step: int, n_steps: int) -> float:
        """Learning rate of optimisation step ``step`` (0-based) of the current epoch of ``n_steps`` steps."""
        if not self.started:
            raise RuntimeError("Recipe.start() must be called before training")
        if self.in_warmup():
            return self.base_lr * (step + 1) / max(1, n_steps)  # linear in-epoch warm-up
        return self.base_lr

    def _at_floor(self) -> bool:
        return self.base_lr <= self.min_lr * (1 + _REL_EPS)

    def end_epoch(self, score: float) -> Decision:
        """Advance the schedule with the validation CCC of the epoch just run."""
        if self.stopped:
            raise RuntimeError("the recipe has stopped; no further epochs")
        epoch = self.epoch
        events: list[str] = []
        score = float(score)
        improved = score > self.best_score  # NaN never improves
        if improved:
            self.best_score, self.best_epoch, self.since_best = score, epoch, 0
            events.append("best")
        else:
            self.since_best += 1
            if self.best_epoch >= 0:
                events.append("reload")
        reload_best = (not improved) and self.best_epoch >= 0
        release: int | None = None

        # ReduceLROnPlateau, only once the warm-up epochs of the current release are over
        if not self.in_warmup(epoch):
            if score > self.plateau_best:
                self.plateau_best, self.plateau_bad = score, 0
            else:
                self.plateau_bad += 1
            if self.plateau_bad > self.patience:
                self.plateau_bad = 0
                if self._at_floor():
                    # the lr would fall below the floor: release the next group, or stop
                    if self.released < self.groups:
                        release = self.released
                        self.released += 1
                        self.base_lr = self.lr
                        self.release_epoch = epoch + 1
                        self.plateau_best, self.plateau_bad = float("-inf"), 0
                        self.since_best = 0
                        reload_best = self.best_epoch >= 0
                        events.append(f"release:{release}")
                    else:
                        self._stop("lr floor reached, nothing left to release")
                else:
                    self.base_lr = max(self.base_lr * self.factor, self.min_lr)
                    events.append(f"plateau:{self.base_lr:.3g}")

        if not self.stopped and self.since_best >= self.early_stop:
            self._stop(f"early stop: {self.since_best} epochs without improvement")
        self.epoch = epoch + 1
        if not self.stopped and self.epoch >= self.max_epochs:
            self._stop(f"max epochs ({self.max_epochs})")
        if self.stopped:
            events.append("stop")
        return Decision(
            epoch=epoch,
            score=score,
            improved=improved,
            reload_best=reload_best,
            release=release,
            stop=self.stopped,
            lr_next=self.base_lr,
            events=events,
            stop_reason=self.stop_reason,
        )

    def _stop(self, reason: str) -> None:
        self.stopped, self.stop_reason = True, reason

    # ---- persistence (JSON) --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():  # JSON has no -inf
            if isinstance(v, float) and v == float("-inf"):
                d[k] = "-inf"
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for f in dataclasses.fields(self):
            if f.name in d:
                v = d[f.name]
                setattr(self, f.name, float("-inf") if v == "-inf" else v)


def simulate(recipe: Recipe, scores: list[float], n_steps: int = 4) -> list[dict[str, Any]]:
    """Run the schedule on a fake metric sequence (used by tests and the training notebook).

    Returns one row per epoch: epoch, the lr of each step, the score, and the decision's events.
    """
    rows = []
    recipe.start()
    for s in scores:
        lrs = [recipe.lr_for_step(i, n_steps) for i in range(n_steps)]
        e = recipe.epoch
        d = recipe.end_epoch(s)
        rows.append({"epoch": e, "lrs": lrs, "score": s, "events": d.events, "release": d.release, "stop": d.stop})
        if d.stop:
            break
    return rows
