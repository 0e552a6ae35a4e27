"""The autoregressive baseline: the same Transformer, causal, predicting each token from the ones before.

    log p(x) = sum_i log p_theta(x^i | x^{<i})        (exact: no bound, unlike the diffusion NELBO)

The model reads the sequence shifted right by one, with a start token in front. We use the ``[MASK]``
id as the start token: "nothing is known yet", which the AR model never sees anywhere else.

``BigramLM`` is the simplest autoregressive model of all (counts of word pairs): the story grammar's
long-range rules are invisible to it, which is why its NLL sits far above the entropy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .._checks import check_float, check_int, check_tensor
from ..base import Estimate, Trajectory, model_device
from ..models.transformer import KVCache
from ..sampling.kernels import categorical


def _check_ids(name: str, x) -> torch.Tensor:
    check_tensor(name, x, floating=False)
    if x.ndim != 2:
        raise ValueError(f"{name} must be token ids of shape (batch, length), got shape {tuple(x.shape)}")
    if x.numel() and x.min() < 0:
        raise ValueError(f"{name} has a negative token id {x.min().item()}")
    return x


class Autoregressive:
    """Left-to-right language modelling with a causal ``Transformer`` (``causal=True``).

    ``start_id``: the token read before the first position (by default the [MASK] id, 1).
    """

    def __init__(self, start_id: int = 1):
        self.start_id = check_int("start_id", start_id, low=0)

    def __repr__(self) -> str:
        return f"Autoregressive(start_id={self.start_id})"

    def _check_model(self, model):
        if not getattr(getattr(model, "config", None), "causal", True):
            raise ValueError("the autoregressive model needs a causal Transformer (causal=True); a bidirectional "
                             "one would see the token it has to predict")

    def shift_right(self, x: torch.Tensor) -> torch.Tensor:
        """[start, x^1, ..., x^{L-1}]: the inputs, so that output i predicts x^i from x^{<i}."""
        return torch.cat([torch.full_like(x[:, :1], self.start_id), x[:, :-1]], dim=1)

    def nll(self, model, x: torch.Tensor) -> torch.Tensor:
        """-log p_theta(x) = -sum_i log p_theta(x^i | x^{<i}) per sequence, in nats, shape (batch,)."""
        x = _check_ids("x", x)
        self._check_model(model)
        logits = model(self.shift_right(x), torch.zeros(x.shape[0], device=x.device)).float()
        return -torch.log_softmax(logits, dim=-1).gather(-1, x[..., None])[..., 0].sum(-1)

    def loss(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The training loss per sequence: the exact NLL (``generator`` is unused: nothing is random)."""
        return self.nll(model, x0)

    def nelbo(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None, **_) -> Estimate:
        """The exact NLL per sequence as an ``Estimate`` with stderr 0 (no bound is needed: the AR
        factorisation is exact). Monte-Carlo options of the diffusion processes (``n_samples``) are ignored."""
        return Estimate.exact(self.nll(model, x0).detach().cpu().double())

    sample_options = {
        "temperature": "tokens drawn from softmax(log p / temperature); 0 is the argmax",
        "kv_cache": "feed only the newest token and reuse the keys and values of the past (same tokens, faster)",
        "end_id": "stop once every sequence has produced this token ([PAD] ends a story) and fill the rest with it",
    }

    def sample(self, model, num_samples: int, length: int, num_steps: int | None = None, *,
               generator: torch.Generator | None = None, temperature: float = 1.0, kv_cache: bool = True,
               end_id: int | None = None) -> Trajectory:
        """Generate left to right, one token per network call; a ``Trajectory`` of every state (B, length):
        the tokens generated so far, then ``start_id`` (nothing known yet) in the positions still to come.

        ``num_steps`` must be None or ``length``: an autoregressive model takes one step per token.
        With ``kv_cache`` each step feeds only the newest token and reuses the keys and values of the
        past (a ``KVCache``); without it each step recomputes the whole prefix. Both give the same tokens.
        ``end_id`` (e.g. [PAD]): generation stops as soon as every sequence has produced it (tokens are never
        forced), and the last state is then padded with it, as block diffusion does.
        """
        num_samples = check_int("num_samples", num_samples, low=1)
        length = check_int("length", length, low=1)
        if num_steps is not None and check_int("num_steps", num_steps, low=1) != length:
            raise ValueError(f"num_steps={num_steps}: an autoregressive model takes one step per token, so "
                             f"num_steps must be None or length={length}")
        temperature = check_float("temperature", temperature, low=0.0, high=1e6)
        self._check_model(model)
        max_len = getattr(getattr(model, "config", None), "max_len", length)
        if length > max_len:
            raise ValueError(f"length={length} is longer than the model's max_len={max_len}")
        if end_id is not None:
            check_int("end_id", end_id, low=0)
        return Trajectory(lambda traj: self._run(traj, model, num_samples, length, temperature, generator, kv_cache,
                                                 end_id))

    def _run(self, traj, model, B, length, temperature, generator, kv_cache, end_id) -> Iterator[torch.Tensor]:
        dev = model_device(model)
        x = torch.full((B, 1 + length), self.start_id, dtype=torch.long, device=dev)    # start token, then x^1..x^L
        cache = KVCache() if kv_cache else None
        t = torch.zeros(B, device=dev)
        ended = torch.zeros(B, dtype=torch.bool, device=dev)
        yield x[:, 1:].clone()
        for i in range(length):
            inputs = x[:, i:i + 1] if kv_cache else x[:, :i + 1]                  # the newest token, or all
            logits = model(inputs, t, cache=cache)[:, -1].float()
            traj.count_call(~ended)                          # a story that has ended would stop here alone
            nxt = categorical(torch.log_softmax(logits, -1), generator, temperature)   # x^i ~ p(. | x^{<i})
            x[:, i + 1] = nxt
            if end_id is not None:
                ended |= nxt == end_id
                if bool(ended.all()) and i < length - 1:
                    x[:, i + 2:] = end_id
                    yield x[:, 1:].clone()
                    return
            yield x[:, 1:].clone()


class BigramLM:
    """p(x^i | x^{i-1}) from counts with add-k smoothing, over token ids; the start token precedes
    position 1. ``fit(ids)`` then ``nll(ids)`` in nats per sequence."""

    def __init__(self, vocab_size: int, start_id: int = 1, k: float = 1e-3):
        self.vocab_size = check_int("vocab_size", vocab_size, low=2)
        self.start_id = check_int("start_id", start_id, low=0, high=vocab_size - 1)
        self.k = check_float("k", k, low=0.0)
        self.counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)

    def fit(self, ids: torch.Tensor) -> BigramLM:
        """Add the bigram counts count(a, b) of ``ids`` (N, L), each row preceded by ``start_id``."""
        ids = _check_ids("ids", ids)
        if ids.numel() and ids.max() >= self.vocab_size:
            raise ValueError(f"ids has token id {ids.max().item()} >= vocab_size={self.vocab_size}")
        prev = torch.cat([torch.full_like(ids[:, :1], self.start_id), ids[:, :-1]], 1)
        self.counts.index_put_((prev.reshape(-1), ids.reshape(-1)), torch.ones(ids.numel(), dtype=torch.float64),
                               accumulate=True)
        return self

    def log_probs(self) -> torch.Tensor:
        """log p(b | a) = log (count(a, b) + k) / (count(a) + k V), a (V, V) table."""
        c = self.counts + self.k
        return torch.log(c / c.sum(1, keepdim=True))

    def nll(self, ids: torch.Tensor) -> torch.Tensor:
        """-sum_i log p(x_i | x_{i-1}) per sequence (N,), in nats."""
        ids = _check_ids("ids", ids)
        prev = torch.cat([torch.full_like(ids[:, :1], self.start_id), ids[:, :-1]], 1)
        lp = self.log_probs()[prev, ids]
        if torch.isinf(lp).any():
            return torch.where(torch.isinf(lp).any(1), torch.full((ids.shape[0],), math.inf, dtype=torch.float64),
                               -lp.sum(1))
        return -lp.sum(1)
