"""The one network of every text model (nanoGPT-style, one file): ``TransformerConfig``, ``Transformer``,
``KVCache`` and the block-causal mask.

Masked diffusion, the autoregressive baseline, block diffusion and Diffusion-LM all use it: bidirectional,
causal or block-causal, with or without time conditioning, token ids or vectors in, logits or vectors out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_int, check_tensor
from .denoisers import TimeEmbedding


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
    rope: bool = False             # True: rotary position embeddings in attention instead of learned absolute
                                   # ones (what MDLM's DiT uses; a bidirectional model on real text needs them)

    def __post_init__(self):
        """Checked when made (nanoGPT-style: the config, not the network, validates the sizes)."""
        check_int("vocab_size", self.vocab_size, low=0)
        check_int("max_len", self.max_len, low=1)
        check_int("d_model", self.d_model, low=1)
        check_int("n_layers", self.n_layers, low=1)
        check_int("n_heads", self.n_heads, low=1)
        check_int("input_dim", self.input_dim, low=0)
        check_int("output_dim", self.output_dim, low=0)
        check_int("block_length", self.block_length, low=0, high=self.max_len)
        check_int("num_classes", self.num_classes, low=0)
        if self.rope and (self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2):
            raise ValueError(f"rope=True needs an even head size; d_model={self.d_model} / n_heads={self.n_heads} "
                             "does not give one")
        if self.block_length and self.causal:
            raise ValueError("block_length > 0 (block-causal attention) and causal=True exclude each other")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.vocab_size == 0 and (self.input_dim == 0 or self.output_dim == 0):
            raise ValueError("vocab_size=0 needs both input_dim > 0 and output_dim > 0 (vectors in and out)")


def block_causal_mask(query_positions: torch.Tensor, key_length: int, block_length: int) -> torch.Tensor:
    """Block-causal attention (block diffusion): query i may attend to key j iff block(j) <= block(i),
    with block(i) = i // block_length; a bool mask (len(query_positions), key_length), True = attend."""
    check_int("block_length", block_length, low=1)
    check_int("key_length", key_length, low=0)
    kb = torch.arange(key_length, device=query_positions.device) // block_length
    return kb[None, :] <= (query_positions // block_length)[:, None]


def two_stream_mask(length: int, block_length: int, device=None) -> torch.Tensor:
    """BD3-LM's training mask over x_t ⊕ x_0 (2L positions; query rows, key columns; True = attend), which
    denoises every block in one forward pass. With b(i) the block of position i in its own half:

        x_t query i, x_t key j:   b(j) == b(i)    block-diagonal: the noisy block sees itself
        x_t query i, x_0 key j:   b(j) <  b(i)    offset block-causal: and the clean blocks before it
        x_0 query i, x_0 key j:   b(j) <= b(i)    block-causal: the clean stream is the sampler's KV cache
        x_0 query i, x_t key j:   never

    so the logits of block b in the x_t half are those of the block-causal model fed (x_0 blocks < b, x_t block b)."""
    check_int("length", length, low=1)
    check_int("block_length", block_length, low=1)
    b = torch.arange(length, device=device) // block_length
    noisy_noisy = b[None, :] == b[:, None]
    noisy_clean = b[None, :] < b[:, None]
    clean_clean = b[None, :] <= b[:, None]
    return torch.cat([torch.cat([noisy_noisy, noisy_clean], 1),
                      torch.cat([torch.zeros_like(clean_clean), clean_clean], 1)], 0)


class KVCache:
    """The keys and values of the positions seen so far, one (k, v) pair per layer, for causal decoding:
    each new token attends to the cached past instead of recomputing it."""

    def __init__(self):
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        self.length = 0
        self.commit: bool | int = True   # True: store the new positions; False: attend to the cache without
                                         # storing them; an int m: store only the first m new positions

    def stored(self, new: int) -> int:
        """How many of ``new`` positions fed to the model this call are kept (``commit``)."""
        return new if self.commit is True else 0 if self.commit is False else min(int(self.commit), new)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if layer == len(self.layers):
            self.layers.append(None)
        keep = self.stored(k.shape[2])
        if self.layers[layer] is not None:
            pk, pv = self.layers[layer]
            keep += pk.shape[2]
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
        if keep:
            self.layers[layer] = (k[:, :, :keep], v[:, :, :keep])
        return k, v


def rotary(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (RoPE, Su et al. 2021) of queries or keys x (B, H, L, d), d even: the pair
    (x_i, x_{i + d/2}) at position p is rotated by the angle p theta_i, theta_i = 10000^(-2i/d), so that
    q_p . k_r depends on the positions only through p - r."""
    half = x.shape[-1] // 2
    theta = 10000.0 ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angle = positions.to(x.device, torch.float32)[:, None] * theta[None, :]          # (L, d/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


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
        self.rope = c.rope

    def forward(self, h: torch.Tensor, causal: bool, cache: KVCache | None, layer: int,
                block_length: int = 0, attn_mask: torch.Tensor | None = None,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        B, L, D = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        if self.rope:
            q, k = rotary(q, positions), rotary(k, positions)
        past = 0
        if cache is not None:
            past = cache.layers[layer][0].shape[2] if layer < len(cache.layers) and cache.layers[layer] else 0
            k, v = cache.update(layer, k, v)
        mask, is_causal = None, False
        if attn_mask is not None:
            mask = attn_mask
        elif block_length:
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

    Called as ``model(z_t, t)`` (the token-denoiser contract, docs/architecture.md); ``cache`` (a ``KVCache``) makes
    causal decoding incremental; with ``num_classes > 0``, ``label`` (B,) conditions on a class, and
    ``label=None`` (or the value ``num_classes``) means "no label" (``guidance.Conditioned`` fixes one).
    """

    def __init__(self, config: TransformerConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = config or TransformerConfig(**kwargs)
        self.embed = nn.Embedding(c.vocab_size, c.d_model) if c.input_dim == 0 else nn.Linear(c.input_dim, c.d_model)
        self.pos = None if c.rope else nn.Parameter(torch.zeros(c.max_len, c.d_model))
        self.time = TimeEmbedding(c.d_model) if c.time_conditioning else None
        self.label = nn.Embedding(c.num_classes + 1, c.d_model) if c.num_classes else None
        self.blocks = nn.ModuleList([_Block(c) for _ in range(c.n_layers)])
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.output_dim or c.vocab_size)
        self.apply(self._init)
        if self.pos is not None:
            nn.init.normal_(self.pos, std=0.02)

    @staticmethod
    def _init(m: nn.Module):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, cache: KVCache | None = None,
                label: torch.Tensor | None = None, clean: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if clean is not None:
            return self._two_stream(x, t, clean, label)
        if c.input_dim == 0:
            if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.ndim != 2:
                raise TypeError(f"x must be token ids, a LongTensor of shape (batch, length); got "
                                f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        elif not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != c.input_dim:
            raise ValueError(f"x must be vectors of shape (batch, length, {c.input_dim}), got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if c.input_dim == 0:
            self._check_ids("x", x)
        if cache is not None and not (c.causal or c.block_length):
            raise ValueError("a KVCache needs a causal or block-causal Transformer: in a bidirectional one the "
                             "past would have to see the new tokens too")
        start = cache.length if cache is not None else 0
        L = x.shape[1]
        if start + L > c.max_len:
            raise ValueError(f"the sequence (length {start + L}) is longer than the model's max_len={c.max_len}")
        positions = torch.arange(start, start + L, device=x.device)
        h = self.embed(x) if self.pos is None else self.embed(x) + self.pos[start:start + L]
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
            h = block(h, c.causal, cache, i, c.block_length, positions=positions)
        if cache is not None:
            cache.length += cache.stored(L)
        return self.head(self.ln_f(h))

    def _two_stream(self, x: torch.Tensor, t, clean: torch.Tensor, label) -> torch.Tensor:
        """Block diffusion's training pass: the noisy sequence x (B, L) and the clean one (B, L) side by side,
        both at positions 0..L-1, under ``two_stream_mask``; the logits of the noisy half (B, L, V)."""
        c = self.config
        if not c.block_length:
            raise ValueError("clean= (the x_t ⊕ x_0 training pass) needs a block-causal Transformer (block_length > 0)")
        check_tensor("clean", clean, floating=False)
        if clean.shape != x.shape:
            raise ValueError(f"clean must have the shape of x {tuple(x.shape)}, got {tuple(clean.shape)}")
        L = x.shape[1]
        if L > c.max_len or L % c.block_length:
            raise ValueError(f"length {L} must be a multiple of block_length={c.block_length} and at most "
                             f"max_len={c.max_len}")
        both = torch.cat([x, clean], 1)
        self._check_ids("x", x)
        self._check_ids("clean", clean)
        positions = torch.arange(L, device=x.device).repeat(2)            # both halves at positions 0..L-1
        h = self.embed(both) if self.pos is None else self.embed(both) + self.pos[positions]
        if self.time is not None:
            raise ValueError("the x_t ⊕ x_0 training pass needs a model without time conditioning")
        if self.label is not None:
            h = h + self.label(self._labels(label, x.shape[0], h.device))[:, None, :]
        mask = two_stream_mask(L, c.block_length, h.device)
        for i, block in enumerate(self.blocks):
            h = block(h, False, None, i, c.block_length, attn_mask=mask, positions=positions)
        return self.head(self.ln_f(h[:, :L]))

    def _check_ids(self, name: str, ids: torch.Tensor) -> None:
        v = self.config.vocab_size
        if ids.numel() and (ids.min() < 0 or ids.max() >= v):
            raise ValueError(f"{name} has token ids from {ids.min().item()} to {ids.max().item()}; allowed: "
                             f"0 <= id < vocab_size={v}")

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
