"""Token diffusion by masking: MDLM (Sahoo et al., 2024) and the samplers of LLaDA (Nie et al., 2025).

The forward process masks each token independently: at time t in (0, 1] a token is still clean with
probability alpha(t) and is ``[MASK]`` otherwise,

    q(z_t^i | x^i) = alpha(t) [z_t^i = x^i] + (1 - alpha(t)) [z_t^i = MASK].

The denoiser sees z_t and predicts, for every masked position, a distribution over the clean token.
SUBS parameterisation: the [MASK] logit is set to -inf (the clean token is never a mask), and a
position that is not masked keeps its token (the carry-over). The negative ELBO is then

    NELBO(x) = E_t E_{z_t} [ w(t) sum_{i: z_t^i = MASK} -log p_theta(x^i | z_t) ],   w(t) = -alpha'(t) / (1 - alpha(t)),

in nats per sequence, which for the log-linear schedule weighs time t by 1/t. With the exact
conditionals it equals -log p(x): masked diffusion is an any-order autoregressive model.

D3PM (the general discrete framework, with transition matrices) lives in ``diffnlp.processes.d3pm``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .. import schedules
from .._checks import check_choice, check_float, check_int, check_tensor
from ..base import Estimate, Trajectory, float_logits, is_time_conditioned, model_device
from ..sampling.kernels import (
    ADAPTIVE_RULES,
    adaptive_step,
    categorical,
    confidence_step,
    random_order_step,
    remask_step,
    reveal_counts,
    reveal_step,
    steps_left_minimum,
    uniform,
)
from ..schedules import MASK_SCHEDULES, mask_alpha, mask_loss_weight, time_grid
from .masked_exact import ExactNelbo

STRATEGIES = ("ancestral", "confidence", "random", *ADAPTIVE_RULES)


class MaskedDiffusion(ExactNelbo):
    """Masked (absorbing-state) diffusion over tokens in continuous time.

    ``schedule``: "loglinear" (alpha(t) = 1 - (1 - alpha_min) t) or "cosine"; ``mask_id``: the id of
    ``[MASK]``; ``alpha_min``: alpha(1), the tiny chance that a token survives to t = 1.
    """

    def __init__(self, schedule: str = "loglinear", mask_id: int = 1, alpha_min: float = 1e-3):
        self.schedule = check_choice("schedule", schedule, MASK_SCHEDULES)
        self.mask_id = check_int("mask_id", mask_id, low=0)
        self.alpha_min = check_float("alpha_min", alpha_min, 0.0, 0.5)

    def __repr__(self) -> str:
        return f"MaskedDiffusion(schedule={self.schedule!r}, mask_id={self.mask_id}, alpha_min={self.alpha_min})"

    # ------------------------------------------------------------------ the forward process
    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """alpha(t): the probability that a token is still clean at time t."""
        return mask_alpha(self.schedule, t, self.alpha_min)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """w(t) = -alpha'(t) / (1 - alpha(t)) (= 1/t for "loglinear")."""
        return mask_loss_weight(self.schedule, t, self.alpha_min)

    def check_t(self, t, batch: int) -> torch.Tensor:
        check_tensor("t", t, floating=True)
        if t.shape != (batch,):
            raise ValueError(f"t must have shape ({batch},) (one time per sequence), got {tuple(t.shape)}")
        if t.numel() and (not torch.isfinite(t).all() or t.min() <= 0 or t.max() > 1):
            raise ValueError(f"t must lie in (0, 1]; got values from {t.min().item():.4g} to {t.max().item():.4g}")
        return t

    def check_x0(self, x0) -> torch.Tensor:
        check_tensor("x0", x0, floating=False)
        if x0.ndim != 2:
            raise ValueError(f"x0 must be token ids of shape (batch, length), got shape {tuple(x0.shape)}")
        if x0.numel() and x0.min() < 0:
            raise ValueError(f"x0 has a negative token id {x0.min().item()}")
        if (x0 == self.mask_id).any():
            raise ValueError(f"x0 contains the [MASK] id {self.mask_id}: clean data never does")
        return x0

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z_t: each token of x0 is replaced by [MASK] with probability 1 - alpha(t)."""
        x0 = self.check_x0(x0)
        t = self.check_t(t, x0.shape[0])
        u = torch.rand(x0.shape, generator=generator).to(x0.device)
        masked = u < (1 - self.alpha(t.to(x0.device)))[:, None]
        return torch.where(masked, torch.full_like(x0, self.mask_id), x0)

    def sample_t(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Stratified times t_b = 1 - ((u + b / B) mod 1), u ~ U[0, 1): one per sequence, in (0, 1], spread
        evenly over the batch (MDLM's low-discrepancy sampler), which lowers the loss variance."""
        u = torch.rand(1, generator=generator, dtype=torch.float64)
        return (1 - torch.remainder(u + torch.arange(batch, dtype=torch.float64) / batch, 1.0)).float()

    # ------------------------------------------------------------------ the denoiser
    def log_probs(self, model, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log p_theta(x | z_t) with the SUBS parameterisation, shape (B, L, V): the [MASK] logit is
        -inf, and an unmasked position keeps its token (log-probability 0 on it, -inf elsewhere)."""
        return self.subs_log_probs(self.subs_logits(model, z_t, t), z_t)

    def subs_log_probs(self, logits: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
        """SUBS applied to logits (B, L, V) that already have the [MASK] logit at -inf: log-softmax, and an
        unmasked position of z_t keeps its token (log-probability 0 on it, -inf elsewhere)."""
        logp = torch.log_softmax(logits, dim=-1)
        carry = z_t != self.mask_id
        if carry.any():
            keep = torch.full_like(logp, -math.inf).scatter_(-1, z_t.clamp(max=logp.shape[-1] - 1)[..., None], 0.0)
            logp = torch.where(carry[..., None], keep, logp)
        return logp

    def subs_logits(self, model, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The model's logits with the [MASK] logit set to -inf (out of place: the model's tensor is untouched)."""
        logits = float_logits(model, z_t, t)
        if logits.shape[:2] != z_t.shape or logits.shape[-1] <= self.mask_id:
            raise ValueError(f"the model returned logits of shape {tuple(logits.shape)}; expected "
                             f"({z_t.shape[0]}, {z_t.shape[1]}, V) with V > mask_id={self.mask_id}")
        return self.never_mask(logits)

    def never_mask(self, logits: torch.Tensor) -> torch.Tensor:
        """SUBS's first rule: the clean token is never [MASK], so its logit is -inf (out of place)."""
        is_mask = torch.arange(logits.shape[-1], device=logits.device) == self.mask_id
        return logits.masked_fill(is_mask, -math.inf)

    # ------------------------------------------------------------------ the loss
    def loss(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None,
             t: torch.Tensor | None = None, weighting: str = "nelbo") -> torch.Tensor:
        """A one-sample NELBO estimate per sequence, in nats, shape (batch,):

            w(t) sum_{i masked} -log p_theta(x0^i | z_t),   t stratified over the batch.

        ``weighting="token"`` (the shipped models) replaces w(t) by L / k, k the number masked: the same bound
        up to a constant, with a lower variance (report the NELBO with ``nelbo()``). Log-linear, alpha_min = 0:
        k is uniform on {0..L} (``schedules.masked_count_probabilities``) and C(L, k) k c_k = 1, so exactly

            E_t E_{z_t}[ (L / k) sum_{i masked} -log p_theta(x^i | z_t) ] = L / (L + 1) NELBO(x)   (``exact_loss``).
        """
        check_choice("weighting", weighting, ("nelbo", "token"))
        x0 = self.check_x0(x0)
        t = self.sample_t(x0.shape[0], generator) if t is None else self.check_t(t, x0.shape[0])
        t = t.to(x0.device)
        z_t = self.add_noise(x0, t, generator)
        logits = self.subs_logits(model, z_t, t)
        nll = -torch.log_softmax(logits, dim=-1).gather(-1, x0[..., None])[..., 0]    # -log p_theta(x0^i | z_t)
        masked = z_t == self.mask_id
        total = torch.where(masked, nll, torch.zeros_like(nll)).sum(-1)
        if weighting == "token":
            # (L / k) sum_{masked} CE (0 when k = 0): E_t E_{z_t}[this] = L / (L + 1) NELBO (docstring)
            return total * x0.shape[1] / masked.sum(-1).clamp_min(1)
        # w(t) sum_{masked}; with nothing masked the term is 0 (at tiny t, 1 - alpha(t) can round to 0 and w to inf)
        return torch.where(masked.any(-1), self.weight(t) * total, torch.zeros_like(total))

    @torch.no_grad()
    def nelbo(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None, n_samples: int = 64,
              chunk: int = 2048) -> Estimate:
        """Monte-Carlo NELBO per sequence (nats) with its standard error, from ``n_samples`` draws each.

        It estimates the full continuous-time NELBO (alpha_min = 0, where no schedule matters; see
        ``exact_nelbo``), an upper bound on -log p_theta(x). Since the C(L, k) masks of size k weigh
        1/k in all, the NELBO is L E_k E_M[(1/k) sum_{i in M} -log p_theta(x^i | x outside M)] with
        k uniform on 1..L (stratified over the draws) and M a uniform mask of k positions: the same
        expectation as ``loss``, without the 1/t weight that makes single draws heavy-tailed.
        The standard error is computed as if the draws were independent (stratification only lowers it).
        """
        x0 = self.check_x0(x0)
        n = check_int("n_samples", n_samples, low=2)
        rows = max(1, chunk // n)
        L = x0.shape[1]
        means, errs = [], []
        for i in range(0, x0.shape[0], rows):
            x = x0[i:i + rows].repeat_interleave(n, dim=0)
            b = x.shape[0] // n
            u = torch.rand(b, 1, generator=generator, dtype=torch.float64)
            k = 1 + (torch.remainder(u + torch.arange(n, dtype=torch.float64) / n, 1.0) * L).long().reshape(-1)
            order = torch.rand(x.shape, generator=generator).argsort(dim=1).argsort(dim=1)   # a random permutation
            masked = (order < k[:, None]).to(x.device)                                        # k random positions
            z = torch.where(masked, torch.full_like(x, self.mask_id), x)
            t = (k.float() / L).to(x.device)                  # the fraction masked: t with alpha(t) = 1 - t
            nll = -torch.log_softmax(self.subs_logits(model, z, t), -1).gather(-1, x[..., None])[..., 0]
            draws = (L / k.to(x.device)) * torch.where(masked, nll, torch.zeros_like(nll)).sum(-1)
            draws = draws.reshape(b, n).cpu().double()          # float64 on the CPU only
            means.append(draws.mean(1))
            errs.append(draws.std(1) / math.sqrt(n))
        return Estimate(torch.cat(means), torch.cat(errs))

    def reveal_probability(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The chance that a token masked at time t is revealed by time s < t (MDLM's reverse step):

            q(z_s = x | z_t = MASK, x) = (alpha(s) - alpha(t)) / (1 - alpha(t))   (= (t - s) / t, log-linear)."""
        a_t, a_s = self.alpha(t), self.alpha(s)
        return (a_s - a_t) / (1 - a_t)

    def remask_probabilities(self, t: torch.Tensor, s: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """ReMDM's step from t to s < t with the "cap" schedule: (sigma, p_reveal).

            sigma    = min(eta, (1 - alpha_s) / alpha_t)                  a decided token goes back to [MASK]
            p_reveal = (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)    a masked token is revealed

        so that q(z_s clean) = (1 - sigma) alpha_t + p_reveal (1 - alpha_t) = alpha_s: the forward marginals
        are kept for any sigma in [0, (1 - alpha_s) / alpha_t]; sigma = 0 gives MDLM's reveal probability."""
        check_float("eta", eta, 0.0, 1.0)
        check_tensor("t", t, floating=True)
        check_tensor("s", s, floating=True)
        a_t, a_s = self.alpha(t), self.alpha(s)
        sigma = torch.minimum(torch.full_like(a_t, eta), (1 - a_s) / a_t)
        return sigma, (a_s - (1 - sigma) * a_t) / (1 - a_t)

    def reveal_step_probabilities(self, num_steps: int) -> torch.Tensor:
        """q_k: a position revealed at ancestral step k of K (``schedules.reveal_step_probabilities``)."""
        return schedules.reveal_step_probabilities(self.schedule, num_steps, self.alpha_min)

    def same_step_probability(self, num_steps: int, positions: int = 2) -> float:
        """Two of ``positions`` revealed in one step of K (``schedules.same_step_probability``): 1/K for a pair."""
        return schedules.same_step_probability(self.schedule, num_steps, positions, self.alpha_min)


    # ------------------------------------------------------------------ sampling
    sample_options = {
        "strategy": "'ancestral' (MDLM), 'confidence' (LLaDA: keep the most probable draws), 'random' "
                    "(uniformly chosen positions), or adaptive: 'threshold' (Fast-dLLM) or 'entropy' (EB-sampler)",
        "threshold": "strategy 'threshold': decide every position whose top probability is at least this (tau)",
        "entropy_budget": "strategy 'entropy': decide the lowest-entropy positions while their entropies sum to at "
                          "most this (gamma, nats)",
        "block_length": "semi-autoregressive: blocks of this length, left to right, the steps shared equally",
        "fixed": "ids (L,) or (B, L), [MASK] where to generate: tokens given by the user, never changed (infilling)",
        "temperature": "tokens drawn from softmax(log p / temperature); 0 is the argmax",
        "reuse_unchanged": "skip the network when the last step revealed nothing (ancestral, no time conditioning)",
        "remask": "eta of ReMDM's self-correction ('cap' schedule; ancestral only): decided tokens may go back",
    }

    def sample(self, model, num_samples: int, length: int, num_steps: int | None = None, *,
               generator: torch.Generator | None = None, strategy: str = "ancestral", block_length: int | None = None,
               fixed: torch.Tensor | None = None, temperature: float = 1.0, reuse_unchanged: bool = False,
               remask: float = 0.0, threshold: float = 0.9, entropy_budget: float = 1.0) -> Trajectory:
        """Generate ``num_samples`` sequences of ``length`` tokens in ``num_steps`` denoiser steps; return a
        ``Trajectory`` over every state (B, L), starting from all [MASK]. The options (``sample_options``):

        - ``strategy`` "ancestral" (MDLM): go from time t to s < t on the grid 1, 1 - 1/K, ..., 0; every masked
          position is revealed with probability (alpha(s) - alpha(t)) / (1 - alpha(t)), its token drawn
          from p_theta(. | z_t). Several tokens revealed in one step are drawn independently.
          "confidence" (LLaDA's low-confidence remasking): draw a token for every masked position, keep
          the n_k whose drawn token has the highest probability, leave the rest masked;
          "random": the same, keeping n_k positions chosen uniformly at random.
          n_k splits the masked positions evenly over the steps (n masked, K steps: n // K each, the
          remainder going to the first steps).
          Adaptive parallel decoding (``kernels.adaptive_counts``): "threshold" decides every masked position
          whose top probability is at least ``threshold`` (Fast-dLLM), "entropy" the lowest-entropy positions
          while their entropies sum to at most ``entropy_budget`` nats (EB-sampler); always at least one, and
          enough to finish within ``num_steps`` (now a cap: the sampler stops once nothing is masked). Tokens
          are drawn from p_theta; which positions are decided depends on p_theta only, so with independent
          positions and exact conditionals the samples follow the data exactly. The calls each sample
          needed are in the trajectory's ``calls_per_sample``.
        - ``block_length``: semi-autoregressive generation, left to right in blocks of this length, each
          block getting an equal share of the steps (the positions to the right stay masked).
        - ``fixed``: ids (L,) or (B, L) with tokens at fixed positions and [MASK] elsewhere: infilling of a
          prefix, a suffix or a middle; fixed tokens are never changed.
        - ``reuse_unchanged`` (ancestral only, model without time conditioning): when a step revealed nothing,
          the next step reuses the last prediction instead of calling the network; samples are identical.
        - ``remask`` = eta (ancestral only): self-correction by remasking (ReMDM, Wang et al., 2025, "cap"
          schedule). From t to s every decided token (not a ``fixed`` one) goes back to [MASK] with
          probability sigma = min(eta, (1 - alpha_s) / alpha_t), and a masked one is revealed with probability
          (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t); for any such sigma the forward marginals
          q(z_s | x) are kept, so a wrong early token can be revised. eta = 0 is MDLM's step.
        """
        num_samples = check_int("num_samples", num_samples, low=1)
        length = check_int("length", length, low=1)
        num_steps = check_int("num_steps", length if num_steps is None else num_steps, low=1)
        check_choice("strategy", strategy, STRATEGIES)
        temperature = check_float("temperature", temperature, low=0.0, high=1e6)
        max_len = getattr(getattr(model, "config", None), "max_len", length)
        if length > max_len:
            raise ValueError(f"length={length} is longer than the model's max_len={max_len}")
        block_length = check_int("block_length", length if block_length is None else block_length, low=1, high=length)
        if length % block_length:
            raise ValueError(f"block_length={block_length} must divide length={length}")
        n_blocks = length // block_length
        if num_steps < n_blocks:
            raise ValueError(f"num_steps={num_steps} must be at least the number of blocks ({n_blocks})")
        if reuse_unchanged and strategy != "ancestral":
            raise ValueError(f"reuse_unchanged=True applies to strategy='ancestral' only (got {strategy!r}): the "
                             "other strategies reveal tokens at every step, so there is nothing to reuse")
        remask = check_float("remask", remask, 0.0, 1.0)
        if remask > 0 and (strategy != "ancestral" or reuse_unchanged):
            raise ValueError(f"remask={remask} applies to strategy='ancestral' without reuse_unchanged (got "
                             f"strategy={strategy!r}, reuse_unchanged={reuse_unchanged})")
        if strategy == "threshold":
            threshold = check_float("threshold", threshold, 0.0, 1.0)
        if strategy == "entropy":
            entropy_budget = check_float("entropy_budget", entropy_budget, 0.0, 1e6)
        value = threshold if strategy == "threshold" else entropy_budget
        if reuse_unchanged and is_time_conditioned(model):
            raise ValueError("reuse_unchanged=True needs a model without time conditioning: a time-conditioned "
                             "model's prediction changes with t even when z_t does not")
        z = torch.full((num_samples, length), self.mask_id, dtype=torch.long)
        if fixed is not None:
            check_tensor("fixed", fixed, floating=False)
            if fixed.shape not in ((length,), (num_samples, length)):
                raise ValueError(f"fixed must have shape ({length},) or ({num_samples}, {length}), "
                                 f"got {tuple(fixed.shape)}")
            if fixed.numel() and fixed.min() < 0:
                raise ValueError(f"fixed has a negative token id {fixed.min().item()}")
            z = fixed.to(torch.long).cpu().expand(num_samples, length).clone()
        steps = [num_steps // n_blocks + (1 if b < num_steps % n_blocks else 0) for b in range(n_blocks)]
        z = z.to(model_device(model))
        return Trajectory(lambda traj: self._run(traj, model, z, steps, block_length, strategy, temperature,
                                                 generator, reuse_unchanged, remask, value))

    def _run(self, traj: Trajectory, model, z: torch.Tensor, steps: list[int], block_length: int, strategy: str,
             temperature: float, generator, reuse_unchanged: bool, remask: float,
             value: float) -> Iterator[torch.Tensor]:
        B, L = z.shape
        protected = z != self.mask_id                                                   # fixed tokens stay
        yield z.clone()
        logp, changed = None, True
        for b, K in enumerate(steps):
            in_block = torch.zeros(L, dtype=torch.bool, device=z.device)
            in_block[b * block_length:(b + 1) * block_length] = True
            n_masked = ((z == self.mask_id) & in_block).sum(1)                         # per sample
            grid = time_grid(K)
            adaptive = strategy in ADAPTIVE_RULES
            for k in range(K):
                masked = (z == self.mask_id) & in_block
                if adaptive and not masked.any():
                    break                                                   # every sample has decided the block
                t = torch.full((B,), grid[k].item(), dtype=torch.float32)              # from time t ...
                s = torch.full((B,), grid[k + 1].item(), dtype=torch.float64)           # ... to time s < t
                if logp is None or changed or not reuse_unchanged:
                    logp = self.log_probs(model, z, t.to(z.device))
                    traj.count_call(masked.any(1) if adaptive else None)
                else:
                    traj.calls_saved += 1
                x = categorical(logp, generator, temperature)                # a token for every position
                before = z
                if strategy == "ancestral":
                    if remask > 0:
                        sigma, p_reveal = self.remask_probabilities(t.double(), s, remask)
                    else:
                        p_reveal = self.reveal_probability(t.double(), s)       # 1 at the last step (s = 0)
                    u = uniform((B, L), generator, z.device)
                    z = reveal_step(z, torch.where(in_block, x, z), p_reveal, u, self.mask_id)
                    if remask > 0:
                        z = remask_step(z, sigma, u, self.mask_id, (before != self.mask_id) & ~protected & in_block)
                elif adaptive:                                  # as many as the rule allows, enough to finish
                    z = adaptive_step(z, x, logp, masked, strategy, value, steps_left_minimum(masked.sum(1), K - k))
                else:
                    n_k = reveal_counts(n_masked, K, k)                                 # tokens to reveal now
                    if strategy == "confidence":
                        z = confidence_step(z, x, logp, masked, n_k)
                    else:
                        z = random_order_step(z, x, masked, n_k, generator)
                changed = not torch.equal(z, before)
                yield z.clone()
