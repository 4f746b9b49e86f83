"""learn2mix for any Python training loop, PyTorch's included.

learn2mix (Venkatasubramanian & Tarokh, arXiv 2412.16482) moves the class proportions
of every batch toward the normalised class-wise losses, so that the classes the model
finds hard fill more of each batch. This package is the Rust toolkit l2m's mixing math
(its ``l2m-core`` crate) for Python:

- :class:`Mixture`: the proportions ``alpha`` and the rule that moves them;
- :class:`BatchSampler`: the batches, class by class with exact counts from ``alpha``,
  usable as ``DataLoader(dataset, batch_sampler=sampler)``, one rank's slice of the
  global batch under DistributedDataParallel, resumable mid-epoch;
- :class:`ClassLosses`: per-class mean losses of an epoch from per-sample losses,
  summed across ranks with ``torch.distributed``.

numpy is the only dependency; torch is imported only by the methods that take or use
it.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from . import _core

__all__ = ["Mixture", "BatchSampler", "ClassLosses", "class_proportions", "rule_names"]
__version__ = "0.1.0"


def rule_names() -> List[str]:
    """The mixing rules this build knows (l2m-core's registry)."""
    return list(_core.rule_names())


def _as_labels(labels: Any, num_classes: Optional[int] = None) -> np.ndarray:
    """Class indices as an int64 array, checked."""
    if hasattr(labels, "detach"):  # a torch tensor
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
            raise ValueError(f"labels must be class indices (integers), got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"labels must be non-negative class indices, got {int(arr.min())}")
    if num_classes is not None and arr.size and arr.max() >= num_classes:
        raise ValueError(
            f"label {int(arr.max())} is out of range for num_classes = {num_classes}"
        )
    return arr


def class_proportions(labels: Any, num_classes: Optional[int] = None) -> np.ndarray:
    """The dataset's class proportions ``alpha*`` (learn2mix's starting point)."""
    arr = _as_labels(labels, num_classes)
    if arr.size == 0:
        raise ValueError("labels is empty")
    k = num_classes if num_classes is not None else int(arr.max()) + 1
    counts = np.bincount(arr, minlength=k).astype(np.float64)
    return counts / counts.sum()


class Mixture:
    """Class proportions ``alpha`` and the rule that moves them.

    ``rule`` is one of :func:`rule_names` (``"learn2mix"``: ``alpha <- alpha + gamma
    (L / sum L - alpha)``, the paper's; ``"eg"``: exponentiated gradient with step
    ``eta``; ``"tempered"``: learn2mix toward ``L^(1/temperature)``). ``floor`` in
    [0, 1) mixes every update with the uniform proportions, so every class keeps at
    least ``floor / num_classes``. ``alpha`` is the start (default uniform; learn2mix
    starts from the data's proportions: see :meth:`from_labels`).
    """

    def __init__(
        self,
        num_classes: int,
        gamma: float = 0.1,
        rule: str = "learn2mix",
        eta: Optional[float] = None,
        temperature: Optional[float] = None,
        floor: float = 0.0,
        alpha: Optional[Sequence[float]] = None,
    ) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
            raise ValueError(f"num_classes must be an integer, got {num_classes!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        start = None
        if alpha is not None:
            start = [float(a) for a in np.asarray(alpha, dtype=np.float64).ravel()]
        self._settings = dict(
            num_classes=int(num_classes),
            gamma=float(gamma),
            rule=str(rule),
            eta=None if eta is None else float(eta),
            temperature=None if temperature is None else float(temperature),
            floor=float(floor),
        )
        self._core = _core.Rule(
            int(num_classes),
            str(rule),
            float(gamma),
            self._settings["eta"],
            self._settings["temperature"],
            float(floor),
            start,
        )
        self.updates = 0

    @classmethod
    def from_labels(cls, labels: Any, num_classes: Optional[int] = None, **kwargs: Any) -> "Mixture":
        """A mixture starting at the data's class proportions, as learn2mix does."""
        alpha = class_proportions(labels, num_classes)
        return cls(len(alpha), alpha=alpha, **kwargs)

    @property
    def num_classes(self) -> int:
        return self._settings["num_classes"]

    @property
    def alpha(self) -> np.ndarray:
        """The current proportions (a float64 copy; they sum to 1)."""
        return np.asarray(self._core.alpha(), dtype=np.float64)

    def update(self, class_losses: Any) -> np.ndarray:
        """One step of the rule from the class-wise losses; returns the new alpha."""
        if hasattr(class_losses, "detach"):
            class_losses = class_losses.detach().cpu().numpy()
        losses = np.asarray(class_losses, dtype=np.float64).ravel()
        self._core.update([float(x) for x in losses])
        self.updates += 1
        return self.alpha

    def state_dict(self) -> Dict[str, Any]:
        return {
            "alpha": [float(a) for a in self._core.alpha()],
            "updates": self.updates,
            **self._settings,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        for key in ("num_classes", "rule"):
            if key in state and state[key] != self._settings[key]:
                raise ValueError(
                    f"the saved mixture has {key} = {state[key]!r}, this one {self._settings[key]!r}"
                )
        if "alpha" not in state:
            raise ValueError("the state has no 'alpha'")
        self._core.set_alpha([float(a) for a in state["alpha"]])
        self.updates = int(state.get("updates", 0))

    def __repr__(self) -> str:
        a = ", ".join(f"{x:.4f}" for x in self.alpha)
        return f"Mixture(rule={self._settings['rule']!r}, alpha=[{a}])"


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 64-bit seed for (seed, epoch) (splitmix64), the same on every rank."""
    mask = (1 << 64) - 1
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(epoch) + 1) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


class BatchSampler:
    """Batches drawn class by class with exact per-class counts from a :class:`Mixture`.

    Every epoch reads the mixture's current ``alpha`` once and splits each batch of
    ``batch_size`` samples into per-class counts (largest remainder, at least one
    sample of every class with data). Each class is walked through a fresh random
    permutation (the paper's cyclic sampler): every sample of a class is used once
    before any repeats. The permutations of epoch ``e`` depend on ``seed`` and ``e``
    only, so every rank draws the same global batch; with ``world_size > 1`` each rank
    yields its own slice (the slices are disjoint and their union is the batch one
    process would draw). ``batch_size`` is the global batch.

    An epoch has ``len(labels) // batch_size`` steps (rounded up with
    ``drop_last=False``); every batch is full. ``set_epoch(e)`` chooses the epoch (as
    with ``DistributedSampler``); without it epochs count up from 0.
    ``state_dict()`` records the batches yielded so far, and after
    ``load_state_dict`` the next iteration continues with the very batches that would
    have come next.
    """

    def __init__(
        self,
        labels: Any,
        batch_size: int,
        mixture: Mixture,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        if not isinstance(mixture, Mixture):
            raise ValueError(f"mixture must be a learn2mix.Mixture, got {type(mixture).__name__}")
        k = mixture.num_classes
        arr = _as_labels(labels, k)
        if arr.size == 0:
            raise ValueError("labels is empty")
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if int(world_size) != world_size or world_size < 1:
            raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
        if int(rank) != rank or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size = {world_size}), got {rank!r}")
        if int(seed) != seed or seed < 0 or seed >= 1 << 64:
            raise ValueError(f"seed must be an integer in [0, 2^64), got {seed!r}")
        self.batch_size = int(batch_size)
        self.mixture = mixture
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.drop_last = bool(drop_last)
        self.num_samples = int(arr.size)
        order = np.argsort(arr, kind="stable")
        sizes = np.bincount(arr, minlength=k)
        self.class_sizes = [int(n) for n in sizes]
        members: List[List[int]] = []
        start = 0
        for n in self.class_sizes:
            members.append([int(i) for i in order[start : start + n]])
            start += n
        self._core = _core.Cyclic(members, 0)
        self._next_epoch = 0
        self._resume: Optional[Dict[str, Any]] = None
        self._epoch: Optional[int] = None
        self._counts: Optional[List[int]] = None
        self._step = 0
        self._check_alpha(mixture.alpha)

    def _check_alpha(self, alpha: np.ndarray) -> None:
        empty = [c for c, n in enumerate(self.class_sizes) if n == 0 and alpha[c] > 0]
        if empty:
            raise ValueError(
                f"class(es) {empty} have no samples in labels but a positive proportion in the "
                "mixture (start it from the data's proportions with Mixture.from_labels, or give "
                "those classes alpha 0)"
            )

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration draws (the same on every rank)."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self._next_epoch = int(epoch)

    def batch_counts(self) -> List[int]:
        """The global per-class counts of a batch under the mixture's current alpha."""
        alpha = self.mixture.alpha
        self._check_alpha(alpha)
        return list(_core.batch_counts([float(a) for a in alpha], self.batch_size, self.class_sizes))

    def __iter__(self) -> Iterator[List[int]]:
        if self._resume is not None:
            state, self._resume = self._resume, None
            epoch, counts, skip = state["epoch"], state["counts"], state["step"]
        else:
            epoch, counts, skip = self._next_epoch, self.batch_counts(), 0
        self._next_epoch = epoch + 1
        self._epoch, self._counts, self._step = epoch, counts, 0
        self._core.reseed(_epoch_seed(self.seed, epoch))
        steps = len(self)
        for _ in range(skip):
            self._core.batch(counts, 0, 1)
            self._step += 1
        while self._step < steps:
            batch = self._core.batch(counts, self.rank, self.world_size)
            self._step += 1
            yield batch

    def state_dict(self) -> Dict[str, Any]:
        """Where the sampler stands: the epoch, its counts and the batches yielded."""
        if self._resume is not None:
            return {**self._resume, **self._identity()}
        if self._epoch is None or self._step >= len(self):
            # Between epochs: the next iteration starts the next epoch afresh.
            return {"epoch": self._next_epoch, "step": 0, "counts": None, **self._identity()}
        return {"epoch": self._epoch, "step": self._step, "counts": list(self._counts), **self._identity()}

    def _identity(self) -> Dict[str, Any]:
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "num_samples": self.num_samples,
            "class_sizes": list(self.class_sizes),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue from ``state`` at the next iteration (mid-epoch: the same next batches)."""
        mine = self._identity()
        for key, value in mine.items():
            if key in state and state[key] != value:
                raise ValueError(f"the saved sampler has {key} = {state[key]!r}, this one {value!r}")
        epoch, step = int(state["epoch"]), int(state["step"])
        if state.get("counts") is None or step == 0:
            self._next_epoch = epoch
            self._resume = None
            if state.get("counts") is not None:
                self._resume = {"epoch": epoch, "counts": list(state["counts"]), "step": 0}
            return
        counts = [int(c) for c in state["counts"]]
        if len(counts) != len(self.class_sizes) or sum(counts) != self.batch_size:
            raise ValueError(f"the saved counts {counts} do not make batches of {self.batch_size}")
        if not 0 <= step <= len(self):
            raise ValueError(f"the saved step {step} is outside an epoch of {len(self)} steps")
        self._resume = {"epoch": epoch, "counts": counts, "step": step}


class ClassLosses:
    """Per-class mean losses of an epoch, from per-sample losses.

    ``add(losses, labels)`` takes a ``reduction="none"`` loss (numpy or torch) and the
    batch's labels; ``mean()`` gives each class's mean (NaN for a class not seen);
    ``all_reduce()`` sums the totals over ``torch.distributed`` ranks when it is
    initialised, so every rank computes the same mean and the same next alpha.
    """

    def __init__(self, num_classes: int) -> None:
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.reset()

    def reset(self) -> None:
        self.sums = np.zeros(self.num_classes, dtype=np.float64)
        self.counts = np.zeros(self.num_classes, dtype=np.float64)

    def add(self, losses: Any, labels: Any) -> None:
        if hasattr(losses, "detach"):
            losses = losses.detach().to("cpu").double().numpy()
        values = np.asarray(losses, dtype=np.float64).ravel()
        classes = _as_labels(labels, self.num_classes)
        if values.shape != classes.shape:
            raise ValueError(
                f"losses has {values.size} values and labels {classes.size}: one loss per "
                "sample is expected (reduction='none')"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("losses contain NaN or infinity")
        self.sums += np.bincount(classes, weights=values, minlength=self.num_classes)
        self.counts += np.bincount(classes, minlength=self.num_classes)

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)

    def all_reduce(self) -> None:
        """Sums the totals over all ranks (no-op without an initialised process group)."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        both = torch.tensor(np.concatenate([self.sums, self.counts]), dtype=torch.float64)
        dist.all_reduce(both, op=dist.ReduceOp.SUM)
        out = both.numpy()
        self.sums = out[: self.num_classes].copy()
        self.counts = out[self.num_classes :].copy()
