"""Networks. A denoiser maps a noisy input and its time to a prediction; the process says what it means.

``MODELS`` names every class a checkpoint may hold; ``model_config`` / ``build_model`` turn a model into
its JSON description and back (checkpoints never pickle)."""

from __future__ import annotations

from dataclasses import asdict

from torch import nn

from .denoisers import DigitsConfig, DigitsDenoiser, MLPConfig, MLPDenoiser
from .embedding import EmbeddingDenoiser, EmbeddingDenoiserConfig, NoisyClassifier, NoisyClassifierConfig
from .transformer import KVCache, Transformer, TransformerConfig

MODELS = {"MLPDenoiser": (MLPDenoiser, MLPConfig), "DigitsDenoiser": (DigitsDenoiser, DigitsConfig),
          "Transformer": (Transformer, TransformerConfig),
          "EmbeddingDenoiser": (EmbeddingDenoiser, EmbeddingDenoiserConfig),
          "NoisyClassifier": (NoisyClassifier, NoisyClassifierConfig)}


def model_config(model: nn.Module) -> dict:
    """The JSON-able description of a model: its class name and config fields."""
    return {"class": type(model).__name__, "config": asdict(model.config)}


def build_model(description: dict) -> nn.Module:
    """Rebuild a model from ``model_config``'s description."""
    if not isinstance(description, dict) or "class" not in description or "config" not in description:
        raise ValueError(f"a model description needs 'class' and 'config' keys, got {description!r}")
    name = description["class"]
    if name not in MODELS:
        raise ValueError(f"model class {name!r} is unknown; known: {', '.join(MODELS)}")
    cls, cfg = MODELS[name]
    try:
        return cls(cfg(**description["config"]))
    except TypeError as exc:
        raise ValueError(f"config for {name} does not match its fields: {exc}") from None


__all__ = ["MODELS", "DigitsDenoiser", "EmbeddingDenoiser", "KVCache", "MLPDenoiser", "NoisyClassifier", "Transformer",
           "TransformerConfig", "build_model", "model_config"]
