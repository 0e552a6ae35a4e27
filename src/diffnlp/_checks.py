"""Argument checks shared by the package: every bad input gets a ValueError or TypeError
that names the argument, the value it got and what is allowed, before any tensor math runs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from pathlib import Path

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


# ---- text, id lists and paths (the tokenizers and loaders) ----------------------------------------


def check_text(name: str, text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__} {text!r:.80}")
    if not text.strip():
        raise ValueError(f"{name}={text!r:.80}: text is empty (or only whitespace); give at least one token")
    return text


def check_texts(name: str, texts) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list or tuple of str, got {type(texts).__name__} {texts!r:.80}")
    if len(texts) == 0:
        raise ValueError(f"{name} is an empty list; give at least one text")
    return list(texts)


def check_id_list(name: str, ids) -> list[int]:
    """A list/tuple of ints or a 1-D integer tensor as a list of Python ints."""
    if isinstance(ids, torch.Tensor):
        check_tensor(name, ids, floating=False)
        if ids.ndim != 1 or ids.dtype == torch.bool:
            raise ValueError(f"{name} must be a 1-D integer tensor, got shape {tuple(ids.shape)} dtype {ids.dtype}")
        return ids.tolist()
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise TypeError(f"{name} must be a list/tuple of ints or a 1-D LongTensor, got {type(ids).__name__}")
    out = []
    for i, v in enumerate(ids):
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise TypeError(f"{name}[{i}] must be an int, got {type(v).__name__} {v!r:.40}")
        out.append(int(v))
    return out


def check_id_lists(name: str, ids_lists) -> list[list[int]]:
    """A list of id sequences (lists, tuples or 1-D tensors), or a 2-D tensor, as lists of ints."""
    if isinstance(ids_lists, torch.Tensor):
        check_tensor(name, ids_lists, floating=False)
        if ids_lists.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, L) when a tensor, got shape {tuple(ids_lists.shape)}")
        rows = ids_lists.tolist()
    elif isinstance(ids_lists, (str, bytes)) or not isinstance(ids_lists, Sequence):
        raise TypeError(f"{name} must be a list of id lists or a 2-D LongTensor, got {type(ids_lists).__name__}")
    else:
        rows = [check_id_list(f"{name}[{i}]", row) for i, row in enumerate(ids_lists)]
    if len(rows) == 0:
        raise ValueError(f"{name} is empty; give at least one sequence of ids")
    return rows


def check_path(name: str, path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike path, got {type(path).__name__} {path!r:.80}")
    return Path(path)
