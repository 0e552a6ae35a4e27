"""Argument checks shared by the package: every bad input gets a ValueError or TypeError
that names the argument, the value it got and what is allowed, before any tensor math runs."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real

import torch


def check_choice(name: str, value, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(map(repr, allowed))}")
    return value


def _in_range(name: str, value, low, high):
    """``value`` if low <= value <= high (a bound of None is open; NaN is never in range), else a ValueError."""
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}={value} is out of range; allowed: {lo} <= {name} <= {hi}")
    return value


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return _in_range(name, int(value), low, high)


def check_float(name: str, value, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return _in_range(name, float(value), low, high)


def check_tensor(name: str, value, *, floating: bool | None = None, ndim_min: int | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating is True and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if floating is False and value.is_floating_point():
        raise TypeError(f"{name} must be an integer tensor, got dtype {value.dtype}")
    if ndim_min is not None and value.ndim < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} dimension(s), got shape {tuple(value.shape)}")
    return value
