"""Score entropy discrete diffusion (SEDD; Lou, Meng and Ermon, 2024) on the absorbing graph.

SEDD learns the *concrete score* instead of p(x_0 | x_t): for a position i and a token y, the ratio

    s(x_t)_{i,y} = p_t(x_t with x^i = y) / p_t(x_t).

The forward process is lesson 04's masking, written with a total noise sigma_bar(t): a token is still
clean with probability alpha(t) = exp(-sigma_bar(t)), and it jumps to [MASK] at rate
sigma(t) = sigma_bar'(t) = -alpha'(t) / alpha(t). Only a masked position can move back, and there

    s(x_t)_{i,y} = r(t) p(x_0^i = y | x_t),      r(t) = alpha / (1 - alpha) = 1 / (exp(sigma_bar) - 1).

The denoising score entropy (the loss) sums, over the masked positions i and tokens y != [MASK],

    sigma(t) [ s_{i,y} - r [y = x_0^i] log s_{i,y} + K(r [y = x_0^i]) ],     K(a) = a (log a - 1),

over t uniform in (0, 1]. With the true scores it becomes w(t) sum_i -log p(x_0^i | x_t) with
w(t) = sigma r = -alpha' / (1 - alpha): MDLM's NELBO. The network's output o is read as
log s = log r(t) + o (SEDD's scaling for the absorbing graph), with no normalisation.

Sampling, from t to s < t, with the "Tweedie" tau-leaping step: a masked position becomes y with
probability (alpha_s / alpha_t - 1) s_y, and stays masked otherwise (exact for exact scores: it is
MDLM's ancestral step); "euler" uses (t - s) sigma(t) s_y instead. For the log-linear schedule the two
coincide: alpha is linear in t, so (t - s) sigma(t) = (alpha_s - alpha_t) / alpha_t exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .._checks import check_choice, check_int, check_tensor
from ..base import Estimate, Trajectory, float_logits, model_device
from ..runtime import accum_dtype
from ..sampling.kernels import ancestral_step
from ..schedules import time_grid
from .masked import MaskedDiffusion

METHODS = ("tweedie", "euler")


class ScoreEntropy:
    """SEDD on the absorbing graph, sharing ``MaskedDiffusion``'s forward process (``schedule``, ``alpha_min``)."""

    def __init__(self, schedule: str = "loglinear", mask_id: int = 1, alpha_min: float = 1e-3):
        self.masking = MaskedDiffusion(schedule, mask_id, alpha_min)
        self.mask_id = self.masking.mask_id

    def __repr__(self) -> str:
        m = self.masking
        return f"ScoreEntropy(schedule={m.schedule!r}, mask_id={m.mask_id}, alpha_min={m.alpha_min})"

    def ratio(self, t: torch.Tensor) -> torch.Tensor:
        """r(t) = alpha / (1 - alpha): the score of the clean token when the denoiser is certain."""
        a = self.masking.alpha(t)
        return a / (1 - a)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """sigma(t) = -alpha'(t) / alpha(t): the rate at which a clean token is masked."""
        a = self.masking.alpha(t)
        return self.masking.weight(t) * (1 - a) / a

    def true_log_scores(self, x0_log_probs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The log of the true concrete score at a masked position, from a denoiser's log p(x_0^i = y | z_t):

            s_{i,y} = p_t(z_t with z^i = y) / p_t(z_t) = r(t) p(x_0^i = y | z_t),      r(t) = alpha / (1 - alpha),

        because z^i = y needs x_0^i = y kept (probability alpha) where z^i = [MASK] needed it masked
        (probability 1 - alpha). ``x0_log_probs`` (B, L, V), ``t`` (B,); the [MASK] column stays -inf."""
        check_tensor("x0_log_probs", x0_log_probs, floating=True)
        log_r = torch.log(self.ratio(t.to(x0_log_probs.dtype)))[:, None, None].to(x0_log_probs.device)
        return log_r + x0_log_probs                                         # log r(t) + log p(x_0^i = y | z_t)

    def log_scores(self, model, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log s(z_t) = log r(t) + model output, (B, L, V); the [MASK] column is -inf."""
        out = float_logits(model, z_t, t)
        if out.shape[:2] != z_t.shape or out.shape[-1] <= self.mask_id:
            raise ValueError(f"the model returned shape {tuple(out.shape)}; expected ({z_t.shape[0]}, "
                             f"{z_t.shape[1]}, V) with V > mask_id={self.mask_id}")
        log_r = torch.log(self.ratio(t.to(out.dtype)))[:, None, None].to(out.device)
        is_mask = torch.arange(out.shape[-1], device=out.device) == self.mask_id
        return (log_r + out).masked_fill(is_mask, -math.inf)

    def score_entropy(self, log_scores: torch.Tensor, z_t: torch.Tensor, x0: torch.Tensor,
                      t: torch.Tensor) -> torch.Tensor:
        """The integrand of the denoising score entropy at time t, per sequence (B,):

            sum_{i masked} sigma(t) [ sum_{y != M} s_{i,y} - r log s_{i,x0^i} + K(r) ],

        the constant K(r) counted once per masked position: it belongs to the single term y = x0^i."""
        check_tensor("log_scores", log_scores, floating=True)
        t = t.to(log_scores.device, log_scores.dtype)
        r = self.ratio(t)[:, None]
        s_sum = torch.exp(log_scores).sum(-1)                                           # sum_y s_y (MASK is 0)
        log_s_true = log_scores.gather(-1, x0[..., None])[..., 0]
        k = r * (torch.log(r) - 1)                                                      # K(r)
        term = s_sum - r * log_s_true + k
        masked = z_t == self.mask_id
        return self.sigma(t) * torch.where(masked, term, torch.zeros_like(term)).sum(-1)

    def loss(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None,
             t: torch.Tensor | None = None) -> torch.Tensor:
        """A one-sample estimate of the score-entropy loss per sequence (nats, an upper bound on -log p):
        t stratified over the batch, z_t from the masking process."""
        x0 = self.masking.check_x0(x0)
        t = self.masking.sample_t(x0.shape[0], generator) if t is None else self.masking.check_t(t, x0.shape[0])
        t = t.to(x0.device)
        z_t = self.masking.add_noise(x0, t, generator)
        return self.score_entropy(self.log_scores(model, z_t, t), z_t, x0, t)

    @torch.no_grad()
    def nelbo(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None, n_samples: int = 32,
              chunk: int = 2048) -> Estimate:
        """The score-entropy bound per sequence (nats) with its standard error: ``loss`` averaged over
        ``n_samples`` times t_j = 1 - ((u + j / n) mod 1), stratified over (0, 1]. It bounds -log p of the
        reverse process the scores define (SEDD's reported likelihood), as MDLM's ``nelbo`` does for MDLM.
        With ``alpha_min`` > 0 the process stops at alpha(1) = alpha_min instead of all-mask, so the bound leaves
        out the prior term of the alpha_min tokens that survive (about alpha_min x the nats per story: 0.02 for
        the stories)."""
        x0 = self.masking.check_x0(x0)
        n = check_int("n_samples", n_samples, low=2)
        rows = max(1, chunk // n)
        means, errs = [], []
        for i in range(0, x0.shape[0], rows):
            x = x0[i:i + rows].repeat_interleave(n, dim=0)
            b = x.shape[0] // n
            u = torch.rand(b, 1, generator=generator, dtype=torch.float64)
            t = (1 - torch.remainder(u + torch.arange(n, dtype=torch.float64) / n, 1.0)).reshape(-1)
            draws = self.loss(model, x, generator=generator, t=t.float().clamp_min(1e-6)).reshape(b, n).cpu().double()
            means.append(draws.mean(1))
            errs.append(draws.std(1) / math.sqrt(n))
        return Estimate(torch.cat(means), torch.cat(errs))

    sample_options = {"method": "'tweedie' (exact for exact scores: MDLM's ancestral step) or 'euler' (first order)"}

    def sample(self, model, num_samples: int, length: int, num_steps: int | None = None, *,
               generator: torch.Generator | None = None, method: str = "tweedie") -> Trajectory:
        """A ``Trajectory`` of every state (B, L), all [MASK] first, over ``num_steps`` steps from t = 1 to 0;
        the last step reveals every remaining mask from the normalised scores."""
        num_samples = check_int("num_samples", num_samples, low=1)
        length = check_int("length", length, low=1)
        num_steps = check_int("num_steps", length if num_steps is None else num_steps, low=1)
        check_choice("method", method, METHODS)
        return Trajectory(lambda traj: self._run(traj, model, num_samples, length, num_steps, method, generator))

    def step_probabilities(self, log_s: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                           method: str = "tweedie") -> tuple[torch.Tensor, torch.Tensor]:
        """One step from t to s < t, from the log-scores (B, L, V) of a masked position: (log p(y | leave), p(leave)),

            tweedie:  P(MASK -> y) = (alpha_s / alpha_t - 1) s_y          euler:  P(MASK -> y) = (t - s) sigma(t) s_y

        so that the step is ``ancestral_step`` with p_reveal = sum_y P(MASK -> y) and tokens drawn in proportion."""
        if method == "tweedie":
            scale = self.masking.alpha(s) / self.masking.alpha(t) - 1                   # alpha_s / alpha_t - 1
        else:
            scale = (t - s) * self.sigma(t)                                              # dt sigma(t)
        move = torch.exp(log_s) * scale[:, None, None].to(log_s.device, log_s.dtype)    # P(M -> y) for each y
        p_move = move.sum(-1).clamp(max=1.0)                                             # P(leave the mask)
        tiny = torch.finfo(move.dtype).tiny
        logp = torch.log(move.clamp_min(tiny)) - torch.log(move.sum(-1, keepdim=True).clamp_min(tiny))
        return logp, p_move

    def _run(self, traj, model, B, L, K, method, generator) -> Iterator[torch.Tensor]:
        dev = model_device(model)
        z = torch.full((B, L), self.mask_id, dtype=torch.long, device=dev)
        grid = time_grid(K)
        yield z.clone()
        for k in range(K):
            t = torch.full((B,), grid[k].item(), dtype=torch.float64)
            s = torch.full((B,), grid[k + 1].item(), dtype=torch.float64)
            log_s = self.log_scores(model, z, t.to(dev, torch.float32))
            traj.network_calls += 1
            log_s = log_s.to(accum_dtype(dev))                  # float64 on the CPU only (exact small ratios)
            if k == K - 1:                                      # the last step: every mask goes
                logp, p_move = torch.log_softmax(log_s, -1), torch.ones(B, dtype=torch.float64)
            else:
                logp, p_move = self.step_probabilities(log_s, t.to(log_s.dtype), s.to(log_s.dtype), method)
            z = ancestral_step(z, logp, p_move, self.mask_id, generator)
            yield z.clone()
