"""Denoisers for points and digits. They know nothing of diffusion: a network maps (x_t, timesteps) to a
tensor shaped like x_t, and the process (``GaussianDiffusion``) says what that tensor means.

- ``TimeEmbedding``: sinusoidal features of the timestep, then a small MLP.
- ``MLPDenoiser``: points in R^D (the 2-D clouds of lesson 01).
- ``DigitsDenoiser``: a small convolutional net for 8x8 images (lesson 02).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_int


def sinusoidal_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """emb(t) = [cos(t w_0), ..., cos(t w_{d/2-1}), sin(t w_0), ...],  w_i = max_period^(-2i/d)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=timesteps.device) / half)
    args = timesteps.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t followed by Linear-SiLU-Linear."""

    def __init__(self, dim: int):
        super().__init__()
        dim = check_int("time_dim", dim, low=2)
        if dim % 2:
            raise ValueError(f"time_dim={dim} must be even (half cosine, half sine features)")
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(timesteps, self.dim))


@dataclass
class MLPConfig:
    """``MLPDenoiser``'s sizes."""

    data_dim: int = 2
    hidden: int = 256
    depth: int = 4
    time_dim: int = 64


class MLPDenoiser(nn.Module):
    """h = W_in x + E(t); then ``depth`` residual blocks h += W2 SiLU(W1 h + E_i(t)); out = W_out SiLU(h).

    There is no normalisation layer on purpose: the output must be free to grow with |x_t|
    (far from the data the optimal eps is about x_t itself), or the deterministic DDIM sampler
    drifts away on the rare starting points that lie far out.
    """

    def __init__(self, config: MLPConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or MLPConfig(**kwargs)
        c = self.config
        check_int("data_dim", c.data_dim, low=1)
        check_int("hidden", c.hidden, low=1)
        check_int("depth", c.depth, low=1)
        self.time = TimeEmbedding(c.time_dim)
        self.inp = nn.Linear(c.data_dim, c.hidden)
        self.temb = nn.Linear(c.time_dim, c.hidden)
        self.blocks = nn.ModuleList([
            nn.ModuleDict({"fc1": nn.Linear(c.hidden, c.hidden),
                           "t": nn.Linear(c.time_dim, c.hidden), "fc2": nn.Linear(c.hidden, c.hidden)})
            for _ in range(c.depth)])
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(c.hidden, c.data_dim))

    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        if x_t.ndim != 2 or x_t.shape[1] != self.config.data_dim:
            raise ValueError(f"x_t must have shape (batch, {self.config.data_dim}), got {tuple(x_t.shape)}")
        e = self.time(timesteps)
        h = self.inp(x_t) + self.temb(e)
        for b in self.blocks:
            h = h + b["fc2"](nn.functional.silu(b["fc1"](h) + b["t"](e)))
        return self.out(h)


@dataclass
class DigitsConfig:
    """``DigitsDenoiser``'s architecture and sizes."""

    arch: str = "mlp"      # "mlp": a residual MLP over the 64 pixels; "conv": a two-level conv net
    hidden: int = 512      # mlp width
    depth: int = 3         # mlp residual blocks
    channels: int = 64     # conv channels
    time_dim: int = 64
    image_size: int = 8


class _ResBlock(nn.Module):
    """h + Conv(SiLU(GroupNorm(Conv(SiLU(GroupNorm(h))) + E(t))))."""

    def __init__(self, channels: int, time_dim: int):
        super().__init__()
        self.n1 = nn.GroupNorm(8, channels)
        self.c1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.t = nn.Linear(time_dim, channels)
        self.n2 = nn.GroupNorm(8, channels)
        self.c2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        r = self.c1(nn.functional.silu(self.n1(h))) + self.t(e)[:, :, None, None]
        return h + self.c2(nn.functional.silu(self.n2(r)))


class DigitsDenoiser(nn.Module):
    """A denoiser for 1x8x8 images. ``arch="mlp"`` (the default, fastest on a CPU) runs an
    ``MLPDenoiser`` on the 64 flattened pixels; ``arch="conv"`` is a two-level conv net
    8x8 -> 4x4 -> 8x8 with a skip connection (more image-like, about 2x slower per step)."""

    def __init__(self, config: DigitsConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or DigitsConfig(**kwargs)
        c = self.config
        from .._checks import check_choice

        check_choice("arch", c.arch, ("mlp", "conv"))
        size = check_int("image_size", c.image_size, low=2)
        if size % 2:
            raise ValueError(f"image_size={size} must be even (the net halves it and doubles it back)")
        if c.arch == "mlp":
            self.mlp = MLPDenoiser(MLPConfig(data_dim=c.image_size ** 2, hidden=c.hidden, depth=c.depth,
                                             time_dim=c.time_dim))
            return
        C = check_int("channels", c.channels, low=8)
        if C % 8:
            raise ValueError(f"channels={C} must be a multiple of 8 (GroupNorm with 8 groups)")
        self.time = TimeEmbedding(c.time_dim)
        self.inp = nn.Conv2d(1, C, 3, padding=1)
        self.down1 = _ResBlock(C, c.time_dim)
        self.pool = nn.Conv2d(C, C, 3, stride=2, padding=1)
        self.mid1 = _ResBlock(C, c.time_dim)
        self.mid2 = _ResBlock(C, c.time_dim)
        self.up = nn.ConvTranspose2d(C, C, 2, stride=2)
        self.merge = nn.Conv2d(2 * C, C, 1)
        self.up1 = _ResBlock(C, c.time_dim)
        self.out = nn.Sequential(nn.GroupNorm(8, C), nn.SiLU(), nn.Conv2d(C, 1, 3, padding=1))

    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        s = self.config.image_size
        if x_t.ndim != 4 or tuple(x_t.shape[1:]) != (1, s, s):
            raise ValueError(f"x_t must have shape (batch, 1, {s}, {s}), got {tuple(x_t.shape)}")
        if self.config.arch == "mlp":
            return self.mlp(x_t.reshape(x_t.shape[0], -1), timesteps).reshape(x_t.shape)
        e = self.time(timesteps)
        h1 = self.down1(self.inp(x_t), e)
        h = self.mid2(self.mid1(self.pool(h1), e), e)
        h = self.merge(torch.cat([self.up(h), h1], dim=1))
        return self.out(self.up1(h, e))
