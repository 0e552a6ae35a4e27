"""The contract every process shares (docs/architecture.md, "The process protocol").

Every process of the course (``GaussianDiffusion``, ``EmbeddingDiffusion``, ``MaskedDiffusion``,
``BlockDiffusion``, ``ScoreEntropy``, ``MaskedFlowMatching``, ``D3PM``, ``Autoregressive``) offers

    loss(model, x0, *, generator=None)                     -> (B,) tensor, what training minimises
    nelbo(model, x0, *, generator=None, ...)               -> Estimate: a bound on -log p per sequence
    sample(model, num_samples, length, num_steps, *, generator=None, **options) -> Trajectory

(``GaussianDiffusion.sample`` takes a ``shape`` in place of ``num_samples, length``), and declares the
options its sampler takes in ``sample_options`` (name -> meaning). One word means one thing across
processes: ``kv_cache`` keeps the keys and values of finished tokens; ``reuse_unchanged`` skips a network
call when the state did not change; ``strategy="random"`` reveals uniformly chosen positions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class Estimate:
    """A bound per sequence: ``mean`` and its Monte-Carlo standard error ``stderr``, both (batch,).
    An exact computation (the autoregressive NLL) has ``stderr`` 0."""

    mean: torch.Tensor
    stderr: torch.Tensor

    @classmethod
    def exact(cls, values: torch.Tensor) -> Estimate:
        """An exact value: its standard error is 0."""
        return cls(values, torch.zeros_like(values))


class Trajectory:
    """What every sampler returns: an iterator over every state of one run, the prior (x_T, all [MASK])
    first and the sample last, with ``run()`` for the final state.

    It counts the network calls made (``network_calls``), the ones a cache saved (``calls_saved``) and, for
    samplers whose samples finish at different times, the calls each sample needed (``calls_per_sample``),
    and it steps the sampler with gradients off, whatever the caller's grad mode: sampling never
    builds an autograd graph. ``steps(trajectory)`` is the sampler's generator function; it updates
    the counters of the trajectory it is given."""

    def __init__(self, steps: Callable[[Trajectory], Iterator[torch.Tensor]]):
        self.network_calls = 0
        self.calls_saved = 0
        self.calls_per_sample: torch.Tensor | None = None
        self._gen = steps(self)

    def count_call(self, active: torch.Tensor | None = None) -> None:
        """One network call. ``active`` (B,) bool, for samplers whose samples finish at different times (a
        story that ended, an adaptive sampler done early): the samples that needed the call, counted in
        ``calls_per_sample``, the calls each would have cost alone (a finished sample rides along in a batch)."""
        self.network_calls += 1
        if active is not None:
            a = active.detach().cpu().long()
            self.calls_per_sample = a if self.calls_per_sample is None else self.calls_per_sample + a

    def __iter__(self) -> Trajectory:
        return self

    def __next__(self) -> torch.Tensor:
        with torch.no_grad():
            return next(self._gen)

    def run(self) -> torch.Tensor:
        """Run to the end and return the final state."""
        last = None
        for state in self:
            last = state
        return last


class Process(Protocol):
    """The process protocol (see the module docstring): what ``lm_eval``, the benchmarks and the recipes use."""

    sample_options: dict[str, str]

    def loss(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def nelbo(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None) -> Estimate: ...

    def sample(self, model, num_samples: int, length: int, num_steps: int, *,
               generator: torch.Generator | None = None, **options) -> Trajectory: ...


def model_device(model) -> torch.device:
    """The device of a model's parameters (the CPU for a parameter-free callable, e.g. an exact oracle)."""
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def is_time_conditioned(model) -> bool:
    """Whether a token denoiser reads the time t (``config.time_conditioning``)."""
    return bool(getattr(getattr(model, "config", None), "time_conditioning", False))


def at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """Logits in float32 at least: a float64 oracle stays float64, a float16 model is read in float32."""
    return logits if logits.dtype == torch.float64 else logits.float()


def float_logits(model, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A token denoiser's logits ``model(z_t, t)``, in float32 at least (``at_least_float32``)."""
    return at_least_float32(model(z_t, t))


def check_options(owner: str, options: dict, allowed: dict[str, str]) -> None:
    """A sampler option that ``owner`` does not take is a TypeError naming the ones it does take."""
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise TypeError(f"unexpected sampling option(s) for {owner}: {', '.join(unknown)}; it takes "
                        f"{', '.join(allowed) or 'none'}")


def decision_steps(trajectory: list[torch.Tensor], mask_id: int) -> torch.Tensor:
    """For each position, the index of the first state in ``trajectory`` where it is no longer masked
    (0 for positions given from the start, -1 if never revealed): the order in which a sampler decides."""
    states = torch.stack([s.cpu() for s in trajectory])           # (S, B, L)
    revealed = states != mask_id
    first = revealed.float().argmax(0)
    return torch.where(revealed.any(0), first, torch.full_like(first, -1))


def set_steps(states: list[torch.Tensor], mask_id: int) -> torch.Tensor:
    """(S, L) for a trajectory of S states (L,): for every frame i and position, the step at which the
    token shown there was (last) set, or -1 while it is masked. With remasking a position can be set,
    masked again and set anew; it then shows the step of its latest decision."""
    if not len(states) or any(s.shape != states[0].shape or s.ndim != 1 for s in states):
        raise ValueError("states must be a non-empty list of 1-D token tensors of one length")
    out = torch.full((len(states), len(states[0])), -1, dtype=torch.long)
    out[0] = torch.where(states[0] == mask_id, -1, 0)
    for i in range(1, len(states)):
        new = (states[i] != mask_id) & (states[i - 1] == mask_id)
        out[i] = torch.where(states[i] == mask_id, -1, torch.where(new, i, out[i - 1]))
    return out
