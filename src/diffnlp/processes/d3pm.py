"""D3PM: diffusion over tokens with transition matrices (Austin et al. 2021, "Structured Denoising
Diffusion Models in Discrete State-Spaces"), written for a small vocabulary of K states.

A token is one of K states (ids 0..K-1). One forward step is a K x K matrix, row = from-state:

    q(x_t | x_{t-1}) = Cat(x_t; row x_{t-1} of Q_t),               t = 1..T (integer steps)
    q(x_t | x_0)     = Cat(x_t; row x_0 of Qbar_t),     Qbar_t = Q_1 Q_2 ... Q_t,   Qbar_0 = I

beta_t is the probability that step t corrupts a token, abar_t = prod_{s<=t} (1 - beta_s) the
probability that it has not been touched after t steps. Two kinds of Q_t:

- "absorbing":  Q_t = (1 - beta_t) I + beta_t 1 e_m^T   (jump to the mask m; m stays m),
  beta_t = 1 / (T - t + 1) (D3PM's "jsd" schedule), so abar_t = (T - t) / T falls linearly and
  Qbar_T sends every token to the mask: the prior p(x_T) is "all mask";
- "uniform":    Q_t = (1 - beta_t) I + beta_t / K 11^T  (redraw the token uniformly),
  with D3PM's cosine schedule f(t) = cos((t/T + s) / (1 + s) pi/2), s = 0.008,
  beta_t = 1 - f(t) / f(t-1), so abar_t = f(t) / f(0) and Qbar_t = abar_t I + (1 - abar_t) / K 11^T.
  (D3PM's code also caps beta_t at 0.999. We do not, so Qbar_T is uniform up to
  f(T) = cos(pi/2) ~ 6e-17 and the prior p(x_T) = uniform is exact.)

The reverse process is x0-parameterised: a denoiser ``model(x_t, t / T)`` returns logits of
p~(x_0 | x_t) for every position, (B, L, K), and one reverse step mixes the exact posteriors,

    p(x_{t-1} | x_t) = sum_{x0} q(x_{t-1} | x_t, x0) p~(x0 | x_t).

With p~ the true p(x0 | x_t) this is the true q(x_{t-1} | x_t), so the chain reproduces the data
(the tests check it with an oracle). D3PM's eq. (4) also weighs each x0 by q(x_t | x0); for
"absorbing" (with p~(mask) = 0) the two agree. For "absorbing" the mask logit is set to -inf:
the data never contain the mask.

Matrices are precomputed in float64. Results computed from token ids alone are float64 (float32
on any other device than the CPU: ``runtime.accum_dtype``); results computed from probabilities or logits keep their
dtype. Sampling draws its uniforms on the CPU with ``generator``, so a seed gives the same draw
on every device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from numbers import Integral

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_float, check_int, check_tensor
from ..base import Estimate, Trajectory, model_device
from ..runtime import accum_dtype
from ..sampling.kernels import categorical_from_probs

KINDS = ("uniform", "absorbing")
COSINE_S = 0.008  # the offset s of the cosine schedule (Nichol & Dhariwal 2021; D3PM)


def categorical_kl(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """KL(q || p) = sum_j q_j (log q_j - log p_j) over the last axis; terms with q_j = 0 are 0."""
    tiny = torch.finfo(q.dtype).tiny  # clamping keeps 0 log 0 = 0 and the gradients finite
    return (q * (q.clamp_min(tiny).log() - p.clamp_min(tiny).log())).sum(-1)


def _rows(M: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """M[b, x[b, ...], :] for a batch of matrices M (B, K, K) and ids x (B, ...): shape (B, ..., K)."""
    B, K = M.shape[0], M.shape[-1]
    idx = x.reshape(B, -1, 1).expand(-1, -1, K)
    return M.gather(1, idx).reshape(*x.shape, K)


def _cols(M: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """M[b, :, x[b, ...]]: column x of each matrix, as a vector over the from-states (B, ..., K)."""
    return _rows(M.transpose(1, 2), x)


class D3PM:
    """A D3PM process over ``vocab_size`` = K token states and ``num_timesteps`` = T integer steps.

    Attributes (float64, CPU, index t holds step t; index 0 is "no noise yet"):
    ``betas`` (T + 1,) with beta_0 = 0, ``alphas_cumprod`` (T + 1,) abar_t with abar_0 = 1,
    ``Q_stack`` (T + 1, K, K) the one-step matrices Q_t with Q_0 = I, and ``Q_bar_stack``
    (T + 1, K, K) the products Qbar_t. ``mask_id`` is the mask state m ("absorbing"; default
    K - 1) or None ("uniform"). ``hybrid_lambda`` is the weight of the cross-entropy in ``loss``.
    """

    def __init__(self, vocab_size: int, num_timesteps: int = 10, kind: str = "absorbing",
                 mask_id: int | None = None, hybrid_lambda: float = 0.01):
        K = self.vocab_size = check_int("vocab_size", vocab_size, low=2)
        T = self.num_timesteps = check_int("num_timesteps", num_timesteps, low=1)
        self.kind = check_choice("kind", kind, KINDS)
        if kind == "absorbing":
            self.mask_id = K - 1 if mask_id is None else check_int("mask_id", mask_id, low=0, high=K - 1)
        elif mask_id is not None:
            raise ValueError(f"mask_id={mask_id!r} is only used by kind='absorbing'; leave it None for kind='uniform'")
        else:
            self.mask_id = None
        self.hybrid_lambda = check_float("hybrid_lambda", hybrid_lambda, low=0.0)

        f64 = torch.float64
        t = torch.arange(1, T + 1, dtype=f64)
        if kind == "absorbing":
            beta = 1 / (T - t + 1)                                     # beta_t = 1 / (T - t + 1)
            B = torch.zeros(K, K, dtype=f64)
            B[:, self.mask_id] = 1                                     # 1 e_m^T: every row goes to m
        else:
            f = torch.cos((torch.arange(T + 1, dtype=f64) / T + COSINE_S) / (1 + COSINE_S) * math.pi / 2)
            beta = 1 - f[1:] / f[:-1]                                  # beta_t = 1 - f(t) / f(t-1)
            B = torch.full((K, K), 1 / K, dtype=f64)                   # 11^T / K: every row uniform
        self.betas = torch.cat([torch.zeros(1, dtype=f64), beta])
        self.alphas_cumprod = torch.cumprod(1 - self.betas, 0)         # abar_t = prod_{s<=t} (1 - beta_s)
        I = torch.eye(K, dtype=f64)
        b = self.betas.view(-1, 1, 1)
        self.Q_stack = (1 - b) * I + b * B                             # Q_t = (1 - beta_t) I + beta_t B
        Q_bars = [I]
        for s in range(1, T + 1):
            Q_bars.append(Q_bars[-1] @ self.Q_stack[s])                # Qbar_t = Qbar_{t-1} Q_t
        self.Q_bar_stack = torch.stack(Q_bars)

    def __repr__(self) -> str:
        mask = f", mask_id={self.mask_id}" if self.mask_id is not None else ""
        return (f"D3PM(vocab_size={self.vocab_size}, num_timesteps={self.num_timesteps}, kind={self.kind!r}"
                f"{mask}, hybrid_lambda={self.hybrid_lambda})")

    # ----------------------------------------------------------------- checks
    def _ids(self, name: str, x, ndim: int | None = None) -> torch.Tensor:
        """Check a tensor of token ids in 0..K-1 (at least 1-D, or exactly ``ndim``-D)."""
        check_tensor(name, x, floating=False, ndim_min=1)
        if x.dtype == torch.bool or x.is_complex():
            raise TypeError(f"{name} must be an integer tensor of token ids, got dtype {x.dtype}")
        if ndim is not None and x.ndim != ndim:
            raise ValueError(f"{name} must be a (batch, length) tensor of token ids, got shape {tuple(x.shape)}")
        if x.numel() == 0:
            raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > self.vocab_size - 1:
            raise ValueError(f"{name} holds token ids in [{lo}, {hi}]; allowed: 0 <= id <= {self.vocab_size - 1}")
        return x.long()

    def _data(self, x0) -> torch.Tensor:
        """Clean sequences (B, L): ids in 0..K-1 and, for "absorbing", never the mask."""
        x0 = self._ids("x0", x0, ndim=2)
        if self.mask_id is not None and bool((x0 == self.mask_id).any()):
            raise ValueError(f"x0 contains the mask id {self.mask_id} at {int((x0 == self.mask_id).sum())} "
                             "position(s); clean data must not contain the mask (kind='absorbing')")
        return x0

    def _steps(self, t, batch: int, low: int = 1, name: str = "t") -> torch.Tensor:
        """An int or an integer tensor (batch,) of steps in [low, T], as a CPU LongTensor (batch,)."""
        T = self.num_timesteps
        if isinstance(t, torch.Tensor) and not t.is_floating_point() and t.dtype != torch.bool:
            if t.ndim != 1 or t.shape[0] != batch:
                raise ValueError(f"{name} must be an int or have shape ({batch},) to match the batch, "
                                 f"got shape {tuple(t.shape)}")
            lo, hi = int(t.min()), int(t.max())
            if lo < low or hi > T:
                raise ValueError(f"{name} must lie in [{low}, {T}], got values in [{lo}, {hi}]")
            return t.long().cpu()
        if isinstance(t, torch.Tensor) or isinstance(t, bool) or not isinstance(t, Integral):
            what = f"a tensor of dtype {t.dtype}" if isinstance(t, torch.Tensor) else f"{type(t).__name__} {t!r}"
            raise TypeError(f"{name} must be an int or an integer tensor of shape ({batch},), got {what}")
        return torch.full((batch,), check_int(name, t, low=low, high=T), dtype=torch.long)

    def _check_logits(self, name: str, logits, x_t: torch.Tensor) -> torch.Tensor:
        shape = (*x_t.shape, self.vocab_size)
        if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
            got = f"dtype {logits.dtype}" if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise TypeError(f"{name} must be a floating-point tensor of logits, got {got}")
        if tuple(logits.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} (x_t's shape + vocab_size), got {tuple(logits.shape)}")
        return logits

    # ----------------------------------------------------------------- transition matrices
    def Q(self, t: int) -> torch.Tensor:
        """Q_t (K x K, float64), row = from-state: Q_t[i, j] = q(x_t = j | x_{t-1} = i), t = 1..T."""
        return self.Q_stack[check_int("t", t, low=1, high=self.num_timesteps)].clone()

    def Q_bar(self, t: int) -> torch.Tensor:
        """Qbar_t = Q_1 Q_2 ... Q_t (K x K, float64): Qbar_t[i, j] = q(x_t = j | x_0 = i); Qbar_0 = I."""
        return self.Q_bar_stack[check_int("t", t, low=0, high=self.num_timesteps)].clone()

    def prior(self) -> torch.Tensor:
        """p(x_T) (K,): the mask for certain ("absorbing"), or uniform 1/K ("uniform")."""
        if self.mask_id is not None:
            return F.one_hot(torch.tensor(self.mask_id), self.vocab_size).double()
        return torch.full((self.vocab_size,), 1 / self.vocab_size, dtype=torch.float64)

    # ----------------------------------------------------------------- forward process
    def q_xt_given_x0(self, x0: torch.Tensor, t) -> torch.Tensor:
        """q(x_t | x_0) = row x_0 of Qbar_t, as probabilities (..., K); x0 ids (B, ...), t in 0..T."""
        x0 = self._ids("x0", x0)
        t = self._steps(t, x0.shape[0], low=0)
        Q_bar_t = self.Q_bar_stack[t].to(x0.device, accum_dtype(x0.device))
        return _rows(Q_bar_t, x0)

    def add_noise(self, x0: torch.Tensor, t, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw x_t ~ q(x_t | x_0) = Cat(row x_0 of Qbar_t), LongTensor shaped like x0."""
        return categorical_from_probs(self.q_xt_given_x0(x0, t), generator)

    # ----------------------------------------------------------------- posterior and reverse step
    def _mix(self, x_t: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """sum_{x0} w(x0) q(x_{t-1} | x_t, x0), with w over x0 (..., K) and

            q(x_{t-1} = j | x_t, x0) = Q_t[j, x_t] Qbar_{t-1}[x0, j] / Qbar_t[x0, x_t]      (Bayes)

        x0 that cannot have produced x_t (Qbar_t[x0, x_t] = 0) get weight 0 and w is renormalised
        over the rest; if x_t cannot occur at step t at all, the result is all zeros.
        """
        dev, dtype = x_t.device, w.dtype
        Q_t = self.Q_stack[t].to(dev, dtype)
        Q_bar_t = self.Q_bar_stack[t].to(dev, dtype)
        Q_bar_prev = self.Q_bar_stack[t - 1].to(dev, dtype)
        q_xt = _cols(Q_bar_t, x_t)                                   # q(x_t | x0) for every x0
        possible = q_xt > 0
        w = torch.where(possible, w, 0.0)
        w = w / w.sum(-1, keepdim=True).clamp_min(torch.finfo(dtype).tiny)
        ratio = w / torch.where(possible, q_xt, 1.0)                 # w(x0) / q(x_t | x0)
        B, K = x_t.shape[0], self.vocab_size
        v = (ratio.reshape(B, -1, K) @ Q_bar_prev).reshape(ratio.shape)  # sum_x0 ratio(x0) Qbar_{t-1}[x0, j]
        return _cols(Q_t, x_t) * v                                   # times q(x_t | x_{t-1} = j) = Q_t[j, x_t]

    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, t) -> torch.Tensor:
        """q(x_{t-1} | x_t, x_0) ∝ Q_t[:, x_t] ⊙ Qbar_{t-1}[x_0, :], probabilities over K (..., K).

        x_t ids (B, ...); x0 either ids shaped like x_t, or probabilities p~(x0 | x_t) (..., K), and
        then the result is the mixture ``reverse_probs``. t in 1..T (an int or (B,)); at t = 1 the
        posterior is the one-hot of x0. Where q(x_t | x0) = 0 the pair cannot occur and the result
        is all zeros.
        """
        x_t = self._ids("x_t", x_t)
        if isinstance(x0, torch.Tensor) and x0.is_floating_point():
            return self.reverse_probs(x_t, x0, t, name="x0")
        x0 = self._ids("x0", x0)
        if x0.shape != x_t.shape:
            raise ValueError(f"x0 must be ids shaped like x_t {tuple(x_t.shape)} or probabilities "
                             f"{(*x_t.shape, self.vocab_size)}, got {tuple(x0.shape)}")
        t = self._steps(t, x_t.shape[0])
        return self._mix(x_t, F.one_hot(x0, self.vocab_size).to(accum_dtype(x_t.device)), t)

    def reverse_probs(self, x_t: torch.Tensor, x0_probs: torch.Tensor, t, name: str = "x0_probs") -> torch.Tensor:
        """The x0-parameterised reverse step p(x_{t-1} | x_t) = sum_{x0} q(x_{t-1} | x_t, x0) p~(x0 | x_t).

        x0_probs: p~(x0 | x_t), a float tensor (..., K) (x_t's shape + K), in its own dtype.
        """
        x_t = self._ids("x_t", x_t)
        check_tensor(name, x0_probs, floating=True)
        if tuple(x0_probs.shape) != (*x_t.shape, self.vocab_size):
            raise ValueError(f"{name} must have shape {(*x_t.shape, self.vocab_size)} (x_t's shape + vocab_size), "
                             f"got {tuple(x0_probs.shape)}")
        t = self._steps(t, x_t.shape[0])
        return self._mix(x_t, x0_probs, t)

    def x0_log_probs(self, x0_logits: torch.Tensor) -> torch.Tensor:
        """log p~(x0 | x_t) = log_softmax(logits); for "absorbing" the mask logit is -inf first."""
        if self.mask_id is not None:
            idx = torch.tensor([self.mask_id], device=x0_logits.device)
            x0_logits = x0_logits.index_fill(-1, idx, float("-inf"))
        return x0_logits.log_softmax(-1)

    def step(self, x0_logits: torch.Tensor, x_t: torch.Tensor, t,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw x_{t-1} ~ p(x_{t-1} | x_t) = sum_{x0} q(x_{t-1} | x_t, x0) softmax(x0_logits)[x0].

        x0_logits (..., K) for x_t (...), t in 1..T; at t = 1 this draws x_0 itself.
        """
        x_t = self._ids("x_t", x_t)
        self._check_logits("x0_logits", x0_logits, x_t)
        t = self._steps(t, x_t.shape[0])
        return categorical_from_probs(self._mix(x_t, self.x0_log_probs(x0_logits).exp(), t), generator)

    def _denoise(self, model, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """model(x_t, t / T): t as a float32 tensor (B,) in [0, 1]; returns checked logits (B, L, K)."""
        t_float = t.to(device=x_t.device, dtype=torch.float32) / self.num_timesteps
        return self._check_logits("model output", model(x_t, t_float), x_t)

    # ----------------------------------------------------------------- sampling
    sample_options = {"device": "where to sample (default: the model's device)"}

    def sample(self, model, num_samples: int, length: int, num_steps: int | None = None, *,
               generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Trajectory:
        """A ``Trajectory`` of (num_samples, length) LongTensors: x_T from the prior (all mask for
        "absorbing", uniform ids for "uniform"), then every x_{t-1} down to x_0 (the last state):
        T + 1 states. ``num_steps`` must be None or T: D3PM's reverse chain has its T integer steps.
        The arguments are checked here, at the call."""
        n = check_int("num_samples", num_samples, low=1)
        L = check_int("length", length, low=1)
        if num_steps is not None and check_int("num_steps", num_steps, low=1) != self.num_timesteps:
            raise ValueError(f"num_steps={num_steps}: D3PM samples with its T={self.num_timesteps} steps "
                             "(give None or T)")
        device = model_device(model) if device is None else torch.device(device)
        return Trajectory(lambda traj: self._reverse(traj, model, n, L, generator, device))

    def _reverse(self, traj, model, n: int, L: int, generator, device) -> Iterator[torch.Tensor]:
        if self.mask_id is not None:
            x = torch.full((n, L), self.mask_id, dtype=torch.long)
        else:
            x = torch.randint(0, self.vocab_size, (n, L), generator=generator)
        x = x.to(device)
        yield x
        for t in range(self.num_timesteps, 0, -1):
            t_batch = torch.full((n,), t, dtype=torch.long)
            x = self.step(self._denoise(model, x, t_batch), x, t_batch, generator)
            traj.network_calls += 1
            yield x

    # ----------------------------------------------------------------- losses
    def loss_terms(self, model, x0: torch.Tensor, t=None,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The two terms of the hybrid loss per sequence, at t ~ U{1..T} (or the given t):

            vb = sum_i KL(q(x_{t-1}^i | x_t, x_0) || p_theta(x_{t-1}^i | x_t))     (L_{t-1})
            ce = sum_i -log p~_theta(x_0^i | x_t)

        At t = 1 the posterior is the one-hot of x_0, so vb = -log p_theta(x_0 | x_1) (L_0).
        x0: clean ids (B, L); x_t ~ q(x_t | x_0) is drawn with ``generator``. Returns a dict with
        "vb", "ce" (B,), and the "t" (B,) and "x_t" (B, L) that were used.
        """
        x0 = self._data(x0)
        B = x0.shape[0]
        if t is None:
            t = torch.randint(1, self.num_timesteps + 1, (B,), generator=generator)
        t = self._steps(t, B)
        x_t = self.add_noise(x0, t, generator)
        log_p0 = self.x0_log_probs(self._denoise(model, x_t, t))
        p_prev = self._mix(x_t, log_p0.exp(), t)                          # p_theta(x_{t-1} | x_t)
        q_prev = self._mix(x_t, F.one_hot(x0, self.vocab_size).to(p_prev.dtype), t)  # q(x_{t-1} | x_t, x_0)
        vb = categorical_kl(q_prev, p_prev).sum(-1)
        ce = -log_p0.gather(-1, x0.unsqueeze(-1)).squeeze(-1).sum(-1)
        return {"vb": vb, "ce": ce, "t": t, "x_t": x_t}

    def loss(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """D3PM's hybrid loss per sequence (B,): L = vb + hybrid_lambda * ce at one t ~ U{1..T}.

        T * E_t[vb] + prior_kl(x0) is the NELBO, so the vb part is an unbiased estimate of
        (NELBO - L_T) / T; ``nelbo`` sums all T terms.
        """
        terms = self.loss_terms(model, x0, generator=generator)
        return terms["vb"] + self.hybrid_lambda * terms["ce"]

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """L_T = sum_i KL(q(x_T^i | x_0^i) || p(x_T)) per sequence (B,): exact, ~0 for both kinds."""
        x0 = self._data(x0)
        q_T = self.q_xt_given_x0(x0, self.num_timesteps)
        return categorical_kl(q_T, self.prior().to(q_T.device, q_T.dtype)).sum(-1)

    @torch.no_grad()
    def nelbo(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None,
              n_samples: int | None = None) -> Estimate:
        """The negative ELBO in nats per sequence, with every one of the T steps and x_t drawn at random:

            NELBO(x_0) = L_T + sum_{t=1}^{T} E_{x_t ~ q(x_t | x_0)} L_{t-1}(x_t) >= -log p_theta(x_0).

        Each step gets ceil(n_samples / T) draws of x_t (one when ``n_samples`` is None or at most T), so the
        sum over t is exact and only x_t is Monte Carlo. The standard error treats the draws of T L_{t-1} as
        independent draws of a random step, which overstates it (every step is visited). ``nelbo_exact``
        computes the expectation exactly for a per-position model."""
        x0 = self._data(x0)
        T, B = self.num_timesteps, x0.shape[0]
        per_step = 1 if n_samples is None else -(-check_int("n_samples", n_samples, low=1) // T)
        draws = torch.zeros(B, T * per_step, dtype=torch.float64)
        for t in range(1, T + 1):
            for r in range(per_step):
                vb = self.loss_terms(model, x0, t=t, generator=generator)["vb"]
                draws[:, (t - 1) * per_step + r] = T * vb.cpu().double()
        prior = self.prior_kl(x0).cpu().double()
        return Estimate(prior + draws.mean(1), draws.std(1) / draws.shape[1] ** 0.5)

    @torch.no_grad()
    def nelbo_exact(self, model, x0: torch.Tensor) -> torch.Tensor:
        """The NELBO per sequence (B,) with every expectation over x_t computed exactly.

        Exact only for a *per-position* model: its prediction at position i depends on x_t^i and t
        alone (a unigram model, or the oracles of the tests). Then the expectation splits over
        positions and each one enumerates the K states k of x_t^i:

            NELBO = L_T + sum_t sum_i sum_k q(x_t^i = k | x_0^i) KL(q(x_{t-1}^i | k, x_0^i) || p_theta(x_{t-1}^i | k))

        (T * K model calls, each on x_t = all k). For a model that looks at the other positions
        (a Transformer) use ``nelbo``.
        """
        x0 = self._data(x0)
        B, K = x0.shape[0], self.vocab_size
        total = self.prior_kl(x0)
        one_hot = F.one_hot(x0, K)
        for t in range(1, self.num_timesteps + 1):
            t_batch = torch.full((B,), t, dtype=torch.long)
            q_xt = self.q_xt_given_x0(x0, t_batch)                          # (B, L, K) over the states k
            for k in range(K):
                weight = q_xt[..., k]
                if not bool((weight > 0).any()):
                    continue
                x_t = torch.full_like(x0, k)
                p_prev = self._mix(x_t, self.x0_log_probs(self._denoise(model, x_t, t_batch)).exp(), t_batch)
                kl = categorical_kl(self._mix(x_t, one_hot.to(p_prev.dtype), t_batch), p_prev)
                total = total + torch.where(weight > 0, weight * kl.to(weight.dtype), 0.0).sum(-1)
        return total


def transition_matrices(kind: str, vocab_size: int, num_timesteps: int, mask_id: int | None = None) -> torch.Tensor:
    """The stacked Qbar_t, t = 0..T, of a D3PM (T + 1, K, K) float64, for plotting."""
    return D3PM(vocab_size, num_timesteps, kind=kind, mask_id=mask_id).Q_bar_stack.clone()
