"""Block diffusion (BD3-LM; Arriola et al., 2025): autoregressive over blocks, masked diffusion inside
each block.

A sequence of L tokens is cut into blocks of ``block_length``. The model factorises

    p(x) = prod_b p(x_b | x_<b),

and each factor is an MDLM: block b is masked and denoised while the earlier blocks are clean and
visible. One block-causal Transformer (``TransformerConfig(block_length=...)``: a position sees its own
block and the ones before) gives every factor. Training draws one block per sequence and a time t, and
masks only that block:

    NELBO(x) = sum_b E_t E_{z_t} [ w(t) sum_{i in block b, masked} -log p_theta(x^i | z_t, x_<b) ],

estimated as (number of blocks) x the term of the drawn block. Sampling goes block by block: the
finished blocks sit in a KV cache (their keys and values never change, since they only see each
other), the current block is denoised with ``num_steps`` ancestral steps attending to the cache, and
generation stops once every sequence has ended (its block holds the end token, [PAD] for the stories).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .._checks import check_choice, check_int
from ..base import Estimate, Trajectory, at_least_float32, is_time_conditioned, model_device
from ..models.transformer import KVCache
from ..sampling.kernels import ancestral_step, categorical, confidence_step, random_order_step, reveal_counts
from ..schedules import time_grid
from .masked import MaskedDiffusion


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

    def noisy(self, x0: torch.Tensor, blocks: torch.Tensor, t: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """z: block ``blocks[b]`` of sequence b masked as MDLM's z_t, the blocks before it clean, the blocks
        after it all [MASK] (the block-causal model never looks at them)."""
        L, n = x0.shape[1], self.block_length
        z_t = self.masking.add_noise(x0, t, generator)
        block_of = torch.arange(L, device=x0.device) // n
        b = blocks.to(x0.device)[:, None]
        mask = torch.full_like(x0, self.mask_id)
        return torch.where(block_of < b, x0, torch.where(block_of == b, z_t, mask))

    def loss(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None,
             weighting: str = "nelbo") -> torch.Tensor:
        """A one-sample NELBO estimate per sequence (nats, (B,)): one block and one time per sequence,
        times the number of blocks. ``weighting="token"``: the mean cross-entropy of the masked tokens,
        scaled to the sequence (the same minimiser, lower variance; see ``MaskedDiffusion.loss``)."""
        x0 = self.masking.check_x0(x0)
        B, L = x0.shape
        self._check_model(model, L)
        n_blocks = L // self.block_length
        blocks = torch.randint(0, n_blocks, (B,), generator=generator)
        t = self.masking.sample_t(B, generator).to(x0.device)
        z = self.noisy(x0, blocks, t, generator)
        logits = self.masking.subs_logits(model, z, t)
        nll = -torch.log_softmax(logits, -1).gather(-1, x0[..., None])[..., 0]
        in_block = (torch.arange(L, device=x0.device) // self.block_length)[None] == blocks.to(x0.device)[:, None]
        masked = (z == self.mask_id) & in_block
        total = torch.where(masked, nll, torch.zeros_like(nll)).sum(-1)
        if weighting == "token":
            return total * L / masked.sum(-1).clamp_min(1)
        return n_blocks * torch.where(masked.any(-1), self.masking.weight(t) * total, torch.zeros_like(total))

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
                     cache: KVCache | None = None) -> torch.Tensor:
        """log p_theta(. | block, prefix) for the positions of ``block`` (B, n, V), with the SUBS rules.
        With ``cache`` (holding ``prefix``), only the block is fed and nothing is stored; without it the
        whole sequence is recomputed (positions after the block are [MASK] and never seen)."""
        if cache is not None:
            cache.commit = False
            try:
                logits = model(block, t, cache=cache)
            finally:
                cache.commit = True
        else:
            L = model.config.max_len
            pad = torch.full((block.shape[0], L - prefix.shape[1] - block.shape[1]), self.mask_id,
                             dtype=block.dtype, device=block.device)
            logits = model(torch.cat([prefix, block, pad], 1), t)[:, prefix.shape[1]:prefix.shape[1] + block.shape[1]]
        return self.masking.subs_log_probs(self.masking.never_mask(at_least_float32(logits)), block)

    sample_options = {
        "strategy": "'ancestral' (MDLM inside each block), 'confidence' (LLaDA's rule inside each block) or "
                    "'random' (uniformly chosen positions, the block's tokens split evenly over the steps)",
        "kv_cache": "keep the finished blocks' keys and values (exact: they never attend to later blocks)",
        "end_id": "stop after the first block in which every sequence holds this token ([PAD] ends a story)",
    }

    def sample(self, model, num_samples: int, length: int, num_steps: int | None = None, *,
               generator: torch.Generator | None = None, strategy: str = "ancestral", kv_cache: bool = True,
               end_id: int | None = None) -> Trajectory:
        """A ``Trajectory`` of every state (B, L), block by block, ``num_steps`` steps *per block*: MDLM's
        "ancestral" steps; "random" (uniformly chosen masked positions, the block split evenly over the
        steps), which is exact with one token per step when the conditionals are; or "confidence" (LLaDA's
        rule inside the block: draw a token for every masked position and keep the most probable draws; not
        exact: it favours likely tokens, and with several tokens per step it can do worse than "ancestral",
        see ``python -m diffnlp bench frontier``). "confidence" and "random" reveal at least one token per
        step, so ``num_steps`` is then at most ``block_length``.

        ``kv_cache``: keep the finished blocks' keys and values (exact: they never attend to later blocks);
        ``end_id``: stop after the first block in which every sequence holds this token (the end of a
        story: [PAD]) and fill the rest with it."""
        num_samples = check_int("num_samples", num_samples, low=1)
        length = check_int("length", length, low=1)
        num_steps = check_int("num_steps", self.block_length if num_steps is None else num_steps, low=1)
        self._check_model(model, length)
        check_choice("strategy", strategy, ("ancestral", "random", "confidence"))
        if strategy != "ancestral" and num_steps > self.block_length:
            raise ValueError(f"strategy={strategy!r} reveals at least one token per step: num_steps must be at "
                             f"most block_length={self.block_length}, got {num_steps}")
        if kv_cache and is_time_conditioned(model):
            raise ValueError("kv_cache=True needs a model without time conditioning (the cached blocks' keys would "
                             "depend on the time at which they were stored)")
        if end_id is not None:
            check_int("end_id", end_id, low=0)
        return Trajectory(lambda traj: self._run(traj, model, num_samples, length, num_steps, kv_cache, end_id,
                                                 strategy, generator))

    def _run(self, traj, model, B, L, K, kv_cache, end_id, strategy, generator) -> Iterator[torch.Tensor]:
        dev, n = model_device(model), self.block_length
        z = torch.full((B, L), self.mask_id, dtype=torch.long, device=dev)
        kv = KVCache() if kv_cache else None
        grid = time_grid(K)
        yield z.clone()
        for b in range(L // n):
            prefix, block = z[:, :b * n], z[:, b * n:(b + 1) * n].clone()
            n_masked = torch.full((B,), n, device=dev)
            for k in range(K):
                t = torch.full((B,), grid[k].item(), dtype=torch.float64)
                s = torch.full((B,), grid[k + 1].item(), dtype=torch.float64)
                logp = self.block_logits(model, prefix, block, t.float().to(dev), kv)
                traj.network_calls += 1
                if strategy == "ancestral":
                    block = ancestral_step(block, logp, self.masking.reveal_probability(t, s), self.mask_id, generator)
                else:
                    x, masked, n_k = categorical(logp, generator), block == self.mask_id, reveal_counts(n_masked, K, k)
                    if strategy == "confidence":                                 # the n_k most probable draws
                        block = confidence_step(block, x, logp, masked, n_k)
                    else:                                                        # n_k positions, uniformly
                        block = random_order_step(block, x, masked, n_k, generator)
                z[:, b * n:(b + 1) * n] = block
                yield z.clone()
            if kv is not None and (b + 1) * n < L:
                model(block, torch.ones(B, device=dev), cache=kv)              # commit the finished block
                traj.network_calls += 1
            if end_id is not None and bool((block == end_id).any(1).all()) and (b + 1) * n < L:
                z[:, (b + 1) * n:] = end_id                                     # every story has ended
                yield z.clone()
                return
