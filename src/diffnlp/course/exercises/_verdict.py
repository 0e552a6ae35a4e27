"""The exercise checkers' common parts: the Verdict, running the learner's code, comparing tensors.

A checker takes the learner's answer and returns a ``Verdict`` whose status is "not attempted"
(the stub still raises NotImplementedError or returns None), "correct" or "incorrect"; it never
raises. The reference solutions live here so the tests can show every checker accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Verdict:
    """A checker's answer: ``status`` and a ``message`` that says what is right or what to fix."""

    status: str  # "not attempted", "correct" or "incorrect"
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __repr__(self) -> str:
        mark = {"correct": "✅", "incorrect": "❌", "not attempted": "⏳"}[self.status]
        return f"{mark} {self.status}: {self.message}"

    _repr_pretty_ = lambda self, p, cycle: p.text(repr(self))  # noqa: E731


NOT_ATTEMPTED = Verdict("not attempted", "replace `raise NotImplementedError` (or `None`) with your answer, "
                                         "then run the cell again")


def run_learner(fn, *args):
    """Run the learner's function; None means the stub was not filled in."""
    if fn is None:
        return None, None
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, None
    except Exception as exc:  # the learner's code failed: report it, never raise
        return None, Verdict("incorrect", f"your function raised {type(exc).__name__}: {exc}")


def compare(got, want, what: str, atol: float = 1e-4) -> Verdict:
    if not isinstance(got, torch.Tensor):
        return Verdict("incorrect", f"{what} should be a torch.Tensor, got {type(got).__name__}")
    if got.shape != want.shape:
        return Verdict("incorrect", f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    err = float((got.double() - want.double()).abs().max())
    if not err <= atol:                                   # NaN fails too
        if err != err:
            return Verdict("incorrect", f"{what} contains NaN")
        return Verdict("incorrect", f"{what} is off by up to {err:.3g} (tolerance {atol:g})")
    return Verdict("correct", f"{what} matches the package (max error {err:.1e})")
