"""Denoisers. They know nothing of diffusion: a network maps (x_t, timesteps) to a tensor shaped
like x_t, and the process (``GaussianDiffusion``) says what that tensor means.

- ``TimeEmbedding``: sinusoidal features of the timestep, then a small MLP.
- ``MLPDenoiser``: points in R^D (the 2-D clouds of lesson 01).
- ``DigitsDenoiser``: a small convolutional net for 8x8 images (lesson 02).
- ``Transformer``: the one network of every text model (masked diffusion, the autoregressive
  baseline, Diffusion-LM): bidirectional or causal, with or without time conditioning, token ids or
  vectors in, logits or vectors out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ._checks import check_int, check_tensor


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
        from ._checks import check_choice

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


@dataclass
class TransformerConfig:
    """``Transformer``'s sizes and modes (see the class); stored in every text checkpoint's JSON."""

    vocab_size: int = 0            # token ids in / logits out over this vocabulary (0: vectors only)
    max_len: int = 32              # the longest sequence the model accepts
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: int = 4
    causal: bool = False           # True: position i attends to positions <= i only (the AR model)
    time_conditioning: bool = False  # True: t in [0, 1] is embedded and added to every position
    input_dim: int = 0             # > 0: the input is vectors (B, L, input_dim) instead of token ids
    output_dim: int = 0            # > 0: the output is vectors (B, L, output_dim) instead of logits
    dropout: float = 0.0
    block_length: int = 0          # > 0: block-causal attention (block diffusion): a position sees its own
                                   # block and the blocks before it
    num_classes: int = 0           # > 0: a class label c in 0..num_classes-1, or num_classes for "no label",
                                   # is embedded and added to every position (classifier-free guidance)


def block_causal_mask(query_positions: torch.Tensor, key_length: int, block_length: int) -> torch.Tensor:
    """Block-causal attention (block diffusion): query i may attend to key j iff block(j) <= block(i),
    with block(i) = i // block_length; a bool mask (len(query_positions), key_length), True = attend."""
    check_int("block_length", block_length, low=1)
    check_int("key_length", key_length, low=0)
    kb = torch.arange(key_length, device=query_positions.device) // block_length
    return kb[None, :] <= (query_positions // block_length)[:, None]


class KVCache:
    """The keys and values of the positions seen so far, one (k, v) pair per layer, for causal decoding:
    each new token attends to the cached past instead of recomputing it."""

    def __init__(self):
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        self.length = 0
        self.commit = True           # False: new tokens attend to the cache without being stored in it

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if layer == len(self.layers):
            self.layers.append(None)
        if self.layers[layer] is not None:
            pk, pv = self.layers[layer]
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
        if self.commit:
            self.layers[layer] = (k, v)
        return k, v


class _Block(nn.Module):
    """Pre-norm Transformer block:  h += Attn(LN(h));  h += MLP(LN(h))."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.n_heads = c.n_heads
        self.ln1 = nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.mlp = nn.Sequential(nn.Linear(c.d_model, c.mlp_ratio * c.d_model), nn.GELU(),
                                 nn.Linear(c.mlp_ratio * c.d_model, c.d_model))
        self.dropout = c.dropout

    def forward(self, h: torch.Tensor, causal: bool, cache: KVCache | None, layer: int,
                block_length: int = 0) -> torch.Tensor:
        B, L, D = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        past = 0
        if cache is not None:
            past = cache.layers[layer][0].shape[2] if layer < len(cache.layers) and cache.layers[layer] else 0
            k, v = cache.update(layer, k, v)
        mask, is_causal = None, False
        if block_length:
            # block-causal: query at absolute position past + i sees key j iff block(j) <= block(past + i)
            mask = block_causal_mask(past + torch.arange(L, device=h.device), past + L, block_length)
        elif causal and past == 0:
            is_causal = L > 1
        elif causal and L > 1:
            # new query i (absolute position past + i) sees keys j <= past + i
            mask = torch.ones(L, past + L, dtype=torch.bool, device=h.device).tril(diagonal=past)
        drop = self.dropout if self.training else 0.0
        # softmax(q k^T / sqrt(d_head)) v, per head
        a = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=drop)
        h = h + nn.functional.dropout(self.proj(a.transpose(1, 2).reshape(B, L, D)), drop, self.training)
        return h + nn.functional.dropout(self.mlp(self.ln2(h)), drop, self.training)


class Transformer(nn.Module):
    """One Transformer for every text model of the course.

    - in: token ids (B, L) when ``input_dim == 0``, else vectors (B, L, input_dim);
    - out: logits (B, L, vocab_size) when ``output_dim == 0``, else vectors (B, L, output_dim);
    - ``causal=True`` masks attention to the past (the autoregressive model); ``causal=False`` lets
      every position see every other one (masked diffusion, Diffusion-LM);
    - ``time_conditioning=True`` adds an embedding of t in [0, 1] to every position; without it ``t`` is
      ignored (masked diffusion does not need it: the number of masks already tells the time).

    Called as ``model(z_t, t)`` (DESIGN.md's token-denoiser contract); ``cache`` (a ``KVCache``) makes
    causal decoding incremental; with ``num_classes > 0``, ``label`` (B,) conditions on a class, and
    ``label=None`` (or the value ``num_classes``) means "no label" (``guidance.Conditioned`` fixes one).
    """

    def __init__(self, config: TransformerConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = config or TransformerConfig(**kwargs)
        check_int("vocab_size", c.vocab_size, low=0)
        check_int("max_len", c.max_len, low=1)
        check_int("d_model", c.d_model, low=1)
        check_int("n_layers", c.n_layers, low=1)
        check_int("n_heads", c.n_heads, low=1)
        check_int("input_dim", c.input_dim, low=0)
        check_int("output_dim", c.output_dim, low=0)
        check_int("block_length", c.block_length, low=0, high=c.max_len)
        check_int("num_classes", c.num_classes, low=0)
        if c.block_length and c.causal:
            raise ValueError("block_length > 0 (block-causal attention) and causal=True exclude each other")
        if c.d_model % c.n_heads:
            raise ValueError(f"d_model={c.d_model} must be divisible by n_heads={c.n_heads}")
        if c.vocab_size == 0 and (c.input_dim == 0 or c.output_dim == 0):
            raise ValueError("vocab_size=0 needs both input_dim > 0 and output_dim > 0 (vectors in and out)")
        self.embed = nn.Embedding(c.vocab_size, c.d_model) if c.input_dim == 0 else nn.Linear(c.input_dim, c.d_model)
        self.pos = nn.Parameter(torch.zeros(c.max_len, c.d_model))
        self.time = TimeEmbedding(c.d_model) if c.time_conditioning else None
        self.label = nn.Embedding(c.num_classes + 1, c.d_model) if c.num_classes else None
        self.blocks = nn.ModuleList([_Block(c) for _ in range(c.n_layers)])
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.output_dim or c.vocab_size)
        self.apply(self._init)
        nn.init.normal_(self.pos, std=0.02)

    @staticmethod
    def _init(m: nn.Module):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, cache: KVCache | None = None,
                label: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if c.input_dim == 0:
            if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.ndim != 2:
                raise TypeError(f"x must be token ids, a LongTensor of shape (batch, length); got "
                                f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        elif not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != c.input_dim:
            raise ValueError(f"x must be vectors of shape (batch, length, {c.input_dim}), got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if c.input_dim == 0 and x.numel() and (x.min() < 0 or x.max() >= c.vocab_size):
            raise ValueError(f"x has token ids from {x.min().item()} to {x.max().item()}; allowed: "
                             f"0 <= id < vocab_size={c.vocab_size}")
        if cache is not None and not (c.causal or c.block_length):
            raise ValueError("a KVCache needs a causal or block-causal Transformer: in a bidirectional one the "
                             "past would have to see the new tokens too")
        start = cache.length if cache is not None else 0
        L = x.shape[1]
        if start + L > c.max_len:
            raise ValueError(f"the sequence (length {start + L}) is longer than the model's max_len={c.max_len}")
        h = self.embed(x) + self.pos[start:start + L]
        if self.time is not None:
            if t is None:
                raise ValueError("this Transformer is time-conditioned: pass t, a float tensor of shape (batch,)")
            if not isinstance(t, torch.Tensor) or t.shape != (x.shape[0],):
                raise ValueError(f"t must be a tensor of shape ({x.shape[0]},), got {tuple(getattr(t, 'shape', ()))}")
            h = h + self.time(t.to(h.device) * 1000)[:, None, :]  # t in [0, 1] on the same scale as integer timesteps
        if self.label is not None:
            h = h + self.label(self._labels(label, x.shape[0], h.device))[:, None, :]
        elif label is not None:
            raise ValueError("label was given, but this Transformer has num_classes=0 (it is not conditional)")
        for i, block in enumerate(self.blocks):
            h = block(h, c.causal, cache, i, c.block_length)
        if cache is not None and cache.commit:
            cache.length += L
        return self.head(self.ln_f(h))

    def _labels(self, label, batch: int, device) -> torch.Tensor:
        n = self.config.num_classes
        if label is None:
            return torch.full((batch,), n, dtype=torch.long, device=device)
        check_tensor("label", label, floating=False)
        if label.shape != (batch,) or (label.numel() and (label.min() < 0 or label.max() > n)):
            raise ValueError(f"label must be class ids of shape ({batch},) in 0..{n} ({n} = no label); got shape "
                             f"{tuple(label.shape)}" + (f", values {label.min().item()}..{label.max().item()}"
                                                        if label.numel() else ""))
        return label.to(device)


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


class EmbeddingDenoiser(nn.Module):
    """Diffusion-LM's network: learned word vectors EMB (``embedding``, V x embed_dim) and a Transformer
    that maps noisy vectors x_t (B, L, embed_dim) and timesteps (B,) to a prediction of x_0 (B, L, embed_dim).

    A Gaussian denoiser (``model(x_t, timesteps)``); the Transformer gets t = timesteps / T."""

    def __init__(self, config: EmbeddingDenoiserConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = config or EmbeddingDenoiserConfig(**kwargs)
        check_int("vocab_size", c.vocab_size, low=1)
        check_int("embed_dim", c.embed_dim, low=1)
        check_int("num_train_timesteps", c.num_train_timesteps, low=2)
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
    """``NoisyClassifier``'s input, classes and Transformer sizes."""

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
