"""Checkpoints as safetensors (the weights) + a JSON file (model class, config, metadata): nothing is ever
unpickled."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from ..models import build_model, model_config


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    # append the suffix (with_suffix would eat a dot in the name: "run.1" -> "run.safetensors")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict | None = None) -> Path:
    """Write ``path.safetensors`` (the weights) and ``path.json`` (model class, config, ``meta``)."""
    from safetensors.torch import save_file

    weights, config = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(weights))
    config.write_text(json.dumps({"model": model_config(model), "meta": meta or {}}, indent=2))
    return weights


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> tuple[nn.Module, dict]:
    """Load a checkpoint written by ``save_checkpoint``; return ``(model, meta)``.

    Without ``model`` one is built from the JSON config. With one, its config must match the
    file's. Missing, corrupt and mismatched files raise ValueError naming the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, config = _paths(path)
    for f in (weights, config):
        if not f.is_file():
            raise ValueError(f"checkpoint file {str(f)!r} does not exist")
    try:
        info = json.loads(config.read_text())
        description = info["model"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"checkpoint config {str(config)!r} is corrupt: {exc}") from None
    if model is None:
        model = build_model(description)
    elif model_config(model) != description:
        raise ValueError(f"checkpoint {str(weights)!r} was saved from {description}, "
                         f"which does not match the given model {model_config(model)}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"checkpoint weights {str(weights)!r} are corrupt: {exc}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"checkpoint weights {str(weights)!r} do not fit the model: {exc}") from None
    return model.eval(), info.get("meta", {})
