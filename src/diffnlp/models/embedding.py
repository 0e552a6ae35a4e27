"""Diffusion-LM's networks: ``EmbeddingDenoiser`` (learned word vectors + a Transformer predicting x_0)
and ``NoisyClassifier`` (an attribute of x_0 read from noisy vectors x_t, for plug-and-play guidance)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_int, check_tensor
from .transformer import Transformer, TransformerConfig


@dataclass
class EmbeddingDenoiserConfig:
    """``EmbeddingDenoiser``'s word vectors and Transformer sizes."""

    vocab_size: int = 173
    max_len: int = 32
    embed_dim: int = 16            # the word vectors the diffusion runs in (Diffusion-LM: 16 to 128)
    num_train_timesteps: int = 1000  # the Transformer sees t = timesteps / T
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: int = 4
    embed_std: float = 1.0         # the word vectors' initial scale

    def __post_init__(self):
        check_int("vocab_size", self.vocab_size, low=1)
        check_int("embed_dim", self.embed_dim, low=1)
        check_int("num_train_timesteps", self.num_train_timesteps, low=2)


class EmbeddingDenoiser(nn.Module):
    """Diffusion-LM's network: learned word vectors EMB (``embedding``, V x embed_dim) and a Transformer
    that maps noisy vectors x_t (B, L, embed_dim) and timesteps (B,) to a prediction of x_0 (B, L, embed_dim).

    A Gaussian denoiser (``model(x_t, timesteps)``); the Transformer gets t = timesteps / T."""

    def __init__(self, config: EmbeddingDenoiserConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = config or EmbeddingDenoiserConfig(**kwargs)
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        nn.init.normal_(self.embedding.weight, std=c.embed_std)
        self.transformer = Transformer(TransformerConfig(
            vocab_size=0, max_len=c.max_len, d_model=c.d_model, n_layers=c.n_layers, n_heads=c.n_heads,
            mlp_ratio=c.mlp_ratio, time_conditioning=True, input_dim=c.embed_dim, output_dim=c.embed_dim))

    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        check_tensor("timesteps", timesteps, floating=False)
        return self.transformer(x_t, timesteps.to(x_t.dtype) / self.config.num_train_timesteps)


@dataclass
class NoisyClassifierConfig:
    """``NoisyClassifier``'s sizes: vectors of ``input_dim`` in, ``num_classes`` logits out, and a small
    time-conditioned Transformer between them."""

    input_dim: int = 16
    num_classes: int = 16
    max_len: int = 32
    num_train_timesteps: int = 1000
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4


class NoisyClassifier(nn.Module):
    """A classifier of noisy vector sequences: ``model(x_t, timesteps)`` -> logits (B, num_classes).

    A time-conditioned Transformer over the positions, averaged over them, then a linear layer: it
    predicts an attribute of the sequence x_0 from x_t, for plug-and-play guidance."""

    def __init__(self, config: NoisyClassifierConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = config or NoisyClassifierConfig(**kwargs)
        check_int("num_classes", c.num_classes, low=2)
        self.transformer = Transformer(TransformerConfig(
            vocab_size=0, max_len=c.max_len, d_model=c.d_model, n_layers=c.n_layers, n_heads=c.n_heads,
            time_conditioning=True, input_dim=c.input_dim, output_dim=c.d_model))
        self.head = nn.Linear(c.d_model, c.num_classes)

    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        check_tensor("timesteps", timesteps, floating=False)
        h = self.transformer(x_t, timesteps.to(x_t.dtype) / self.config.num_train_timesteps)
        return self.head(h.mean(dim=1))
