"""Block diffusion (BD3-LM; Arriola et al., 2025): autoregressive over blocks, masked diffusion inside
each block.

A sequence of L tokens is cut into blocks of ``block_length``. The model factorises

    p(x) = prod_b p(x_b | x_<b),

and each factor is an MDLM: block b is masked and denoised while the earlier blocks are clean and
visible. One block-causal Transformer (``TransformerConfig(block_length=...)``: a position sees its own
block and the ones before) gives every factor. Training masks every block, each at its own time t_b, and
denoises all of them in one forward pass over x_t ⊕ x_0 (BD3-LM's two streams, ``two_stream_mask``):

    NELBO(x) = sum_b E_t E_{z_t} [ w(t) sum_{i in block b, masked} -log p_theta(x^i | z_t^b, x_<b) ].

Sampling goes block by block: the finished blocks sit in a KV cache (their keys and values never change,
since they only see each other; a finished block is stored by the next block's first step), the current
block is denoised with ``num_steps`` steps attending to the cache, and generation stops once every sequence
has ended (its block holds the end token, [PAD] for the stories).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .._checks import check_choice, check_float, check_int
from ..base import Estimate, Trajectory, at_least_float32, is_time_conditioned, model_device
from ..models.transformer import KVCache
from ..sampling.kernels import (
    ADAPTIVE_RULES,
    adaptive_step,
    ancestral_step,
    categorical,
    confidence_step,
    random_order_step,
    reveal_counts,
    steps_left_minimum,
    top_p_filter,
)
from ..schedules import time_grid
from .masked import STRATEGIES, MaskedDiffusion


class BlockDiffusion:
    """BD3-LM-style block diffusion over blocks of ``block_length`` tokens, MDLM (``schedule``) inside."""

    def __init__(self, block_length: int = 8, schedule: str = "loglinear", mask_id: int = 1, alpha_min: float = 1e-3):
        self.block_length = check_int("block_length", block_length, low=1)
        self.masking = MaskedDiffusion(schedule, mask_id, alpha_min)
        self.mask_id = self.masking.mask_id

    def __repr__(self) -> str:
        return f"BlockDiffusion(block_length={self.block_length}, masking={self.masking!r})"

    def _check_model(self, model, length: int):
        c = getattr(model, "config", None)
        if getattr(c, "block_length", None) != self.block_length:
            raise ValueError(f"the model must be a block-causal Transformer with block_length={self.block_length}, "
                             f"got block_length={getattr(c, 'block_length', None)}")
        if length % self.block_length:
            raise ValueError(f"length={length} must be a multiple of block_length={self.block_length}")

    def noisy(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z_t with one time per block: ``t`` (B, number of blocks); every token of block b is [MASK] with
        probability 1 - alpha(t_b), independently (MDLM's forward process, block by block)."""
        x0 = self.masking.check_x0(x0)
        B, L = x0.shape
        n_blocks = L // self.block_length
        if not isinstance(t, torch.Tensor) or t.shape != (B, n_blocks):
            raise ValueError(f"t must have shape ({B}, {n_blocks}) (one time per block), got "
                             f"{tuple(getattr(t, 'shape', ()))}")
        self.masking.check_t(t.reshape(-1), B * n_blocks)
        u = torch.rand(x0.shape, generator=generator).to(x0.device)
        drop = (1 - self.masking.alpha(t.to(x0.device))).repeat_interleave(self.block_length, 1)
        return torch.where(u < drop, torch.full_like(x0, self.mask_id), x0)

    def loss(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None,
             weighting: str = "nelbo", t: torch.Tensor | None = None, z_t: torch.Tensor | None = None) -> torch.Tensor:
        """A one-sample NELBO estimate per sequence (nats, (B,)) from **every block at once** (BD3-LM): one
        time t_b per block (stratified over the batch), z_t = ``noisy(x0, t)``, and one forward pass over
        x_t ⊕ x_0 (``Transformer(..., clean=x0)``, ``two_stream_mask``) gives every block's prediction given
        its clean past:

            loss(x) = sum_b w(t_b) sum_{i in block b, masked} -log p_theta(x^i | z_t^b, x_<b).

        It equals the mean over b of the one-block estimate (number of blocks) x (the term of block b)
        (tests/test_block_diffusion.py), with every block's signal in one step. ``weighting="token"``
        replaces w(t_b) by n / k_b (k_b masked in the block): the same minimiser, a lower variance (see
        ``MaskedDiffusion.loss``). ``t`` (B, blocks) and ``z_t`` may be given (for tests)."""
        check_choice("weighting", weighting, ("nelbo", "token"))
        x0 = self.masking.check_x0(x0)
        B, L = x0.shape
        self._check_model(model, L)
        n, n_blocks = self.block_length, L // self.block_length
        if t is None:
            t = self.masking.sample_t(B * n_blocks, generator).view(n_blocks, B).T     # stratified over B x blocks
        z = self.noisy(x0, t, generator) if z_t is None else z_t
        if z.shape != x0.shape:
            raise ValueError(f"z_t must have the shape of x0 {tuple(x0.shape)}, got {tuple(z.shape)}")
        logits = self.masking.never_mask(at_least_float32(model(z, clean=x0)))
        nll = -torch.log_softmax(logits, -1).gather(-1, x0[..., None])[..., 0]
        masked = z == self.mask_id
        per_block = torch.where(masked, nll, torch.zeros_like(nll)).view(B, n_blocks, n).sum(-1)
        k = masked.view(B, n_blocks, n).sum(-1)
        if weighting == "token":
            return (per_block * n / k.clamp_min(1)).sum(-1)
        w = self.masking.weight(t.to(x0.device))
        return torch.where(k > 0, w * per_block, torch.zeros_like(per_block)).sum(-1)

    @torch.no_grad()
    def nelbo(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None,
              n_samples: int = 16) -> Estimate:
        """Monte-Carlo NELBO per sequence (nats) with its standard error: the sum over blocks of each block's
        MDLM NELBO given the clean blocks before it, each estimated as ``MaskedDiffusion.nelbo`` does (a
        uniform number k of masked positions in the block, weight n / k; no 1/t weight)."""
        x0 = self.masking.check_x0(x0)
        n_samples = check_int("n_samples", n_samples, low=2)
        B, L = x0.shape
        self._check_model(model, L)
        n = self.block_length
        draws = torch.zeros(B, n_samples, dtype=torch.float64)
        pos = torch.arange(L, device=x0.device)
        for b in range(L // n):
            offset = torch.rand(B, generator=generator)
            for s in range(n_samples):
                k = 1 + ((offset + s / n_samples) % 1.0 * n).long().clamp(max=n - 1)      # stratified k in 1..n
                scores = torch.rand(B, n, generator=generator)
                rank = scores.argsort(1).argsort(1)
                hide = torch.zeros(B, L, dtype=torch.bool)
                hide[:, b * n:(b + 1) * n] = rank < k[:, None]
                hide = hide.to(x0.device)
                z = torch.where(hide | (pos >= (b + 1) * n)[None], torch.full_like(x0, self.mask_id), x0)
                logp = self.masking.log_probs(model, z, torch.ones(B, device=x0.device))
                nll = -logp.gather(-1, x0[..., None])[..., 0]
                term = torch.where(hide, nll, torch.zeros_like(nll)).sum(1) * n / k.to(x0.device)
                draws[:, s] += term.cpu().double()                     # float64 on the CPU only
        return Estimate(draws.mean(1), draws.std(1) / n_samples ** 0.5)

    @torch.no_grad()
    def block_logits(self, model, prefix: torch.Tensor, block: torch.Tensor, t: torch.Tensor,
                     cache: KVCache | None = None, pending: torch.Tensor | None = None) -> torch.Tensor:
        """log p_theta(. | block, prefix) for the positions of ``block`` (B, n, V), with the SUBS rules.
        With ``cache`` (holding ``prefix``, except its last finished block ``pending`` when given), the
        pending block and ``block`` are fed together and only the pending block is stored: BD3-LM folds the
        commit of a finished block into the next block's first step, so K steps a block cost K calls.
        Without a cache the whole sequence is recomputed (positions after the block are [MASK], never seen)."""
        if cache is not None:
            fed = block if pending is None else torch.cat([pending, block], 1)
            cache.commit = 0 if pending is None else pending.shape[1]
            try:
                logits = model(fed, t, cache=cache)[:, -block.shape[1]:]
            finally:
                cache.commit = True
        else:
            L = model.config.max_len
            pad = torch.full((block.shape[0], L - prefix.shape[1] - block.shape[1]), self.mask_id,
                             dtype=block.dtype, device=block.device)
            logits = model(torch.cat([prefix, block, pad], 1), t)[:, prefix.shape[1]:prefix.shape[1] + block.shape[1]]
        return self.masking.subs_log_probs(self.masking.never_mask(at_least_float32(logits)), block)

    sample_options = {
        "strategy": "'ancestral' (MDLM inside each block), 'confidence' (LLaDA's rule inside each block), "
                    "'random' (uniformly chosen positions, the block's tokens split evenly over the steps), or "
                    "adaptive inside each block: 'threshold' (Fast-dLLM) or 'entropy' (EB-sampler)",
        "threshold": "strategy 'threshold': decide every position whose top probability is at least this (tau)",
        "entropy_budget": "strategy 'entropy': decide the lowest-entropy positions while their entropies sum to at "
                          "most this (gamma, nats)",
        "temperature": "tokens drawn from softmax(log p / temperature) (1: the model; below 1: sharper, less diverse)",
        "top_p": "nucleus sampling: draw from the most probable tokens that make up this much probability (1: all); "
                 "the adaptive and confidence rules still choose positions from the unfiltered predictions",
        "kv_cache": "keep the finished blocks' keys and values (exact: they never attend to later blocks)",
        "end_id": "stop after the first block in which every sequence holds this token ([PAD] ends a story)",
    }

    def sample(self, model, num_samples: int, length: int, num_steps: int | None = None, *,
               generator: torch.Generator | None = None, strategy: str = "ancestral", kv_cache: bool = True,
               end_id: int | None = None, threshold: float = 0.9, entropy_budget: float = 1.0,
               temperature: float = 1.0, top_p: float = 1.0) -> Trajectory:
        """A ``Trajectory`` of every state (B, L), block by block, ``num_steps`` steps *per block*: MDLM's
        "ancestral" steps; "random" (uniformly chosen masked positions, the block split evenly over the
        steps), which is exact with one token per step when the conditionals are; "confidence" (LLaDA's
        rule inside the block: draw a token for every masked position and keep the most probable draws; not
        exact: it favours likely tokens, and with several tokens per step it can do worse than "ancestral",
        see ``python -m diffnlp bench frontier``); or adaptive parallel decoding inside the block,
        "threshold" or "entropy" (``MaskedDiffusion.sample``, ``kernels.adaptive_counts``), for which
        ``num_steps`` is a cap and a block ends as soon as it is decided. All but "ancestral" reveal at least
        one token per step, so ``num_steps`` is then at most ``block_length``.

        ``kv_cache``: keep the finished blocks' keys and values (exact: they never attend to later blocks);
        a finished block is stored by the next block's first step, in the same call, so K steps a block cost
        K calls. ``end_id``: stop after the first block in which every sequence holds this token (the end of
        a story: [PAD]) and fill the rest with it; ``calls_per_sample`` counts the calls each story needed
        (those after its end, or after its block was decided, ride along in a batch)."""
        num_samples = check_int("num_samples", num_samples, low=1)
        length = check_int("length", length, low=1)
        num_steps = check_int("num_steps", self.block_length if num_steps is None else num_steps, low=1)
        self._check_model(model, length)
        check_choice("strategy", strategy, STRATEGIES)
        if strategy != "ancestral" and num_steps > self.block_length:
            raise ValueError(f"strategy={strategy!r} reveals at least one token per step: num_steps must be at "
                             f"most block_length={self.block_length}, got {num_steps}")
        if kv_cache and is_time_conditioned(model):
            raise ValueError("kv_cache=True needs a model without time conditioning (the cached blocks' keys would "
                             "depend on the time at which they were stored)")
        if end_id is not None:
            check_int("end_id", end_id, low=0)
        value = (check_float("threshold", threshold, 0.0, 1.0) if strategy == "threshold" else
                 check_float("entropy_budget", entropy_budget, 0.0, 1e6) if strategy == "entropy" else None)
        temperature = check_float("temperature", temperature, 1e-3, 1e3)
        top_p = check_float("top_p", top_p, 1e-6, 1.0)
        return Trajectory(lambda traj: self._run(traj, model, num_samples, length, num_steps, kv_cache, end_id,
                                                 strategy, value, temperature, top_p, generator))

    def _run(self, traj, model, B, L, K, kv_cache, end_id, strategy, value, temperature, top_p,
             generator) -> Iterator[torch.Tensor]:
        dev, n = model_device(model), self.block_length
        z = torch.full((B, L), self.mask_id, dtype=torch.long, device=dev)
        kv = KVCache() if kv_cache else None
        grid = time_grid(K)
        pending = None
        ended = torch.zeros(B, dtype=torch.bool, device=dev)       # a finished block holds end_id
        adaptive = strategy in ADAPTIVE_RULES
        yield z.clone()
        for b in range(L // n):
            prefix, block = z[:, :b * n], z[:, b * n:(b + 1) * n].clone()
            n_masked = torch.full((B,), n, device=dev)
            for k in range(K):
                masked = block == self.mask_id
                if adaptive and not masked.any():
                    break                                               # every sample has decided the block
                t = torch.full((B,), grid[k].item(), dtype=torch.float64)
                s = torch.full((B,), grid[k + 1].item(), dtype=torch.float64)
                raw = self.block_logits(model, prefix, block, t.float().to(dev), kv, pending if k == 0 else None)
                logp = top_p_filter(raw, top_p)            # tokens are drawn from the nucleus; the rules below
                # choose positions from the model's own (unfiltered) predictions, as without top_p
                traj.count_call(~ended & masked.any(1) if adaptive else ~ended)
                if strategy == "ancestral":
                    block = ancestral_step(block, logp, self.masking.reveal_probability(t, s), self.mask_id, generator,
                                           temperature)
                else:
                    x = categorical(logp, generator, temperature)
                    if adaptive:                            # as many as the rule allows, enough to finish in K
                        block = adaptive_step(block, x, raw, masked, strategy, value,
                                              steps_left_minimum(masked.sum(1), K - k))
                    elif strategy == "confidence":                               # the n_k most probable draws
                        block = confidence_step(block, x, raw, masked, reveal_counts(n_masked, K, k))
                    else:                                                        # n_k positions, uniformly
                        block = random_order_step(block, x, masked, reveal_counts(n_masked, K, k), generator)
                z[:, b * n:(b + 1) * n] = block
                yield z.clone()
            pending = block                       # stored in the cache by the next block's first step
            if end_id is not None:
                ended |= (block == end_id).any(1)
                if bool(ended.all()) and (b + 1) * n < L:
                    z[:, (b + 1) * n:] = end_id                                 # every story has ended
                    yield z.clone()
                    return
