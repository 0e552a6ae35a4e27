"""The steps that token samplers share. Where two processes take the same step, they call the same function:

- MDLM's ancestral step, SEDD's Tweedie step and flow matching's Euler step are all ``ancestral_step``:
  the processes differ only in the reveal probability (and the token distribution) they hand it;
- LLaDA's confidence rule (in MDLM, in a block of BD3, and in the exact ``oracle.sampler_distribution``)
  is ``reveal_counts`` + ``top_k_reveal``;
- ReMDM's self-correction is ``remask_step`` after ``reveal_step``;
- adaptive parallel decoding (Fast-dLLM's confidence threshold, the EB-sampler's entropy budget) is
  ``adaptive_counts`` + ``top_k_reveal``: how many tokens a step decides depends on the predictions.

Every random draw is made on the CPU with the caller's ``generator`` and then moved, so a seed gives the
same tokens on every device.
"""

from __future__ import annotations

import math

import torch

from ..runtime import accum_dtype


def uniform(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """u ~ U[0, 1) of ``shape``, drawn on the CPU with ``generator``, then moved to ``device``."""
    return torch.rand(shape, generator=generator).to(device)


def gumbel_noise(shape, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel noise -log(-log u), u ~ U(0, 1), drawn on the CPU with ``generator`` (the same draw on
    every device): argmax(log p + noise) is a sample from p (the Gumbel-max trick)."""
    return -torch.log(-torch.log(torch.rand(shape, generator=generator).clamp_min(1e-20)))


def categorical(log_probs: torch.Tensor, generator: torch.Generator | None = None,
                temperature: float = 1.0) -> torch.Tensor:
    """One token per position, x ~ softmax(log p / temperature), by the Gumbel-max trick:

        x = argmax_v ( log p_v / temperature + G_v ),   G_v ~ Gumbel(0, 1) i.i.d.

    ``temperature`` 0 is the argmax. The noise is drawn at every temperature, so one seed gives one stream
    of random numbers whatever the temperature."""
    gumbel = gumbel_noise(log_probs.shape, generator).to(log_probs.device)
    if temperature == 0:
        return log_probs.argmax(-1)
    return (log_probs / temperature + gumbel).argmax(-1)


def top_p_filter(log_probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering (Holtzman et al., 2020): per position keep the most probable tokens until their
    probability reaches ``top_p``, drop the rest, renormalise (log-probabilities, same shape). Unlike a
    temperature it keeps the ratios of the tokens it keeps: it removes the tail, not the spread."""
    if top_p >= 1:
        return log_probs
    ranked, order = log_probs.sort(dim=-1, descending=True, stable=True)      # ties: the lower id first, on any device
    p = ranked.exp()
    drop = (p.cumsum(-1) - p) >= top_p                    # the mass before this token already reaches top_p
    kept = torch.full_like(log_probs, -math.inf).scatter(-1, order, ranked.masked_fill(drop, -math.inf))
    return kept - kept.logsumexp(-1, keepdim=True)


def categorical_from_probs(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of ``probs`` (..., K) by the inverse CDF:

        u ~ U[0, 1) (drawn on the CPU),   x = #{k : P(X <= k) <= u * total}

    so state k is chosen with probability probs_k / total (and never when probs_k = 0).
    """
    dtype = accum_dtype(probs.device)
    cdf = probs.to(dtype).cumsum(-1)
    u = torch.rand(probs.shape[:-1], generator=generator, dtype=torch.float64).to(probs.device, dtype)
    x = (cdf <= u.unsqueeze(-1) * cdf[..., -1:]).sum(-1)
    return x.clamp(max=probs.shape[-1] - 1)


def reveal_step(z: torch.Tensor, x: torch.Tensor, p_reveal: torch.Tensor, u: torch.Tensor,
                mask_id: int) -> torch.Tensor:
    """z_s from z_t: a masked position takes its drawn token x where u < p_reveal ((B,) or (B, L));
    every other position is kept."""
    p = p_reveal.to(z.device, torch.float32)
    p = p[:, None] if p.ndim == 1 else p
    return torch.where((z == mask_id) & (u < p), x, z)


def ancestral_step(z: torch.Tensor, log_probs: torch.Tensor, p_reveal: torch.Tensor, mask_id: int,
                   generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
    """One parallel unmasking step: every masked position is revealed, independently, with probability
    ``p_reveal`` and a token drawn from exp(``log_probs``) (B, L, V) (MDLM's ancestral step, SEDD's
    tau-leaping step, flow matching's Euler step)."""
    x = categorical(log_probs, generator, temperature)
    return reveal_step(z, x, p_reveal, uniform(z.shape, generator, z.device), mask_id)


def remask_step(z: torch.Tensor, sigma: torch.Tensor, u: torch.Tensor, mask_id: int,
                allowed: torch.Tensor) -> torch.Tensor:
    """ReMDM's remasking: a position in ``allowed`` (decided before this step, not given by the user) goes
    back to [MASK] where u < sigma ((B,)), so that a wrong early token can be revised."""
    back = allowed & (u < sigma.to(z.device, torch.float32)[:, None])
    return torch.where(back, torch.full_like(z, mask_id), z)


def reveal_counts(n_masked: torch.Tensor, num_steps: int, k: int) -> torch.Tensor:
    """n_k, the number of tokens step k of ``num_steps`` reveals (LLaDA's split): the ``n_masked`` (B,)
    positions spread evenly over the steps, n // K each, the remainder going to the first steps."""
    return n_masked // num_steps + (k < n_masked % num_steps).long()


def top_k_reveal(score: torch.Tensor, masked: torch.Tensor, n_k: torch.Tensor) -> torch.Tensor:
    """The ``n_k`` (B,) masked positions with the highest ``score`` (B, L) in each row, as a bool mask: the
    positions a confidence (or random-order) step reveals. Ties go to the leftmost position (a stable
    sort), as in ``diffnlp.evaluation.oracle.sampler_distribution``."""
    if score.ndim != 2 or masked.shape != score.shape or n_k.shape != score.shape[:1]:
        raise ValueError(f"score and masked must have one shape (B, L) and n_k shape (B,); got {tuple(score.shape)}, "
                         f"{tuple(masked.shape)} and {tuple(n_k.shape)}")
    score = torch.where(masked, score, torch.full_like(score, -math.inf))
    rank = score.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
    return masked & (rank < n_k[:, None].to(score.device))


def confidence_step(z: torch.Tensor, x: torch.Tensor, log_probs: torch.Tensor, masked: torch.Tensor,
                    n_k: torch.Tensor) -> torch.Tensor:
    """LLaDA's low-confidence remasking, one step: of the masked positions, reveal the ``n_k`` whose drawn
    token x has the highest probability log p(x) under the (untempered) ``log_probs``; the rest stay masked."""
    score = log_probs.gather(-1, x[..., None])[..., 0]
    return torch.where(top_k_reveal(score, masked, n_k), x, z)


def random_order_step(z: torch.Tensor, x: torch.Tensor, masked: torch.Tensor, n_k: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The "random" strategy, one step: reveal ``n_k`` masked positions chosen uniformly at random."""
    score = uniform(z.shape, generator, z.device)
    return torch.where(top_k_reveal(score, masked, n_k), x, z)


ADAPTIVE_RULES = ("threshold", "entropy")


def token_entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """H_i = -sum_v p_i(v) log p_i(v) of every position (B, L), in nats (0 log 0 = 0)."""
    p = log_probs.exp()
    return -torch.where(p > 0, p * log_probs, torch.zeros_like(p)).sum(-1)


def entropy_bounded_counts(entropy: torch.Tensor, masked: torch.Tensor, budget: float) -> torch.Tensor:
    """The EB-sampler's count (B,): sort the masked positions' entropies (B, L), lowest first, and take the
    longest prefix whose sum is at most ``budget`` (nats); ``adaptive_counts`` then makes it at least one."""
    ranked = torch.where(masked, entropy, torch.full_like(entropy, math.inf)).sort(1).values     # lowest first
    return (ranked.cumsum(1) <= budget).sum(1)


def adaptive_counts(log_probs: torch.Tensor, masked: torch.Tensor, rule: str, value: float,
                    at_least: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive parallel decoding, the choice of one step: ``(score, n_k)`` for ``top_k_reveal``. Both depend
    on the predicted distributions p_i only, never on the drawn tokens, so with independent positions and
    exact conditionals the samples follow the data exactly (tests/test_adaptive_exact.py).

    - "threshold" (Fast-dLLM, Wu et al., 2025): decide every masked position whose confidence
      c_i = max_v p_i(v) is at least ``value`` (the threshold tau); score c_i.
    - "entropy" (EB-sampler, Ben-Hamu et al., 2025): sort the masked positions by entropy H_i, lowest first,
      and decide the longest prefix whose entropies sum to at most ``value`` (the budget gamma, nats); the
      error of deciding them together is bounded by that sum; score -H_i.

    At least one position is decided while any is masked, and at least ``at_least`` (B,) (the sampler's
    step cap: enough to finish in the steps left)."""
    if rule == "threshold":
        score = log_probs.max(-1).values.exp()
        n_k = ((score >= value) & masked).sum(1)
    elif rule == "entropy":
        h = token_entropy(log_probs)
        score, n_k = -h, entropy_bounded_counts(h, masked, value)
    else:
        raise ValueError(f"rule={rule!r} is not an adaptive rule; allowed: {', '.join(ADAPTIVE_RULES)}")
    n_k = torch.maximum(n_k, masked.any(1).long())
    if at_least is not None:
        n_k = torch.maximum(n_k, at_least.to(n_k.device))
    return score, torch.minimum(n_k, masked.sum(1))


def adaptive_step(z: torch.Tensor, x: torch.Tensor, log_probs: torch.Tensor, masked: torch.Tensor, rule: str,
                  value: float, at_least: torch.Tensor | None = None) -> torch.Tensor:
    """One step of adaptive parallel decoding: decide the positions ``adaptive_counts`` chooses, each taking
    its drawn token x ~ p_i; the rest stay masked."""
    score, n_k = adaptive_counts(log_probs, masked, rule, value, at_least)
    return torch.where(top_k_reveal(score, masked, n_k), x, z)


def steps_left_minimum(n_masked: torch.Tensor, steps_left: int) -> torch.Tensor:
    """ceil(n_masked / steps_left): the fewest tokens a step must decide to finish within the step cap."""
    return -(-n_masked // max(steps_left, 1))
