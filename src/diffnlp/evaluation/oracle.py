"""Exact denoisers: models that know the answer, so samplers can be tested on their own.

For data from a Gaussian mixture x_0 ~ sum_k pi_k N(mu_k, s_k^2 I), every noisy marginal is a
mixture too:

    q(x_t) = sum_k pi_k N(sqrt(abar_t) mu_k, (abar_t s_k^2 + 1 - abar_t) I)

and the optimal denoiser E[x_0 | x_t] is a responsibility-weighted sum of per-component
Gaussian posteriors (Tweedie's formula in closed form). A sampler driven by it must reproduce
the mixture's weights and means.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_tensor
from ..processes.gaussian import GaussianDiffusion
from ..sampling.kernels import top_k_reveal
from ..schedules import time_grid


class GaussianMixtureDenoiser(nn.Module):
    """The exact ``prediction_type`` target for mixture data, as a Gaussian denoiser module.

    ``means`` (K, D), ``stds`` (K,), ``weights`` (K,) summing to 1.
    """

    def __init__(self, diffusion: GaussianDiffusion, means, stds, weights):
        super().__init__()
        means = torch.as_tensor(means, dtype=torch.float64)
        stds = torch.as_tensor(stds, dtype=torch.float64).reshape(-1)
        weights = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}")
        K = means.shape[0]
        if stds.shape[0] == 1:
            stds = stds.expand(K)
        if stds.shape[0] != K or weights.shape[0] != K:
            raise ValueError(f"stds and weights must have {K} entries, got {stds.shape[0]} and {weights.shape[0]}")
        if (weights < 0).any() or abs(float(weights.sum()) - 1) > 1e-6:
            raise ValueError(f"weights must be non-negative and sum to 1, got {weights.tolist()}")
        self.diffusion = diffusion
        self.register_buffer("means", means)
        self.register_buffer("stds", stds)
        self.register_buffer("weights", weights)

    def posterior_mean(self, x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """E[x_0 | x_t] = sum_k r_k(x_t) (mu_k + sqrt(abar) s_k^2 / var_k (x_t - sqrt(abar) mu_k)),
        var_k = abar s_k^2 + 1 - abar,  r_k proportional to pi_k N(x_t; sqrt(abar) mu_k, var_k I)."""
        check_tensor("x_t", x_t, floating=True, ndim_min=2)
        x = x_t.double()
        D = x.shape[1]
        abar = self.diffusion.alphas_cumprod.double().to(x.device)[timesteps.to(x.device)][:, None]  # (B, 1)
        var = abar * self.stds[None] ** 2 + (1 - abar)  # (B, K)
        centre = abar.sqrt()[..., None] * self.means[None]  # (B, K, D)
        sq = ((x[:, None, :] - centre) ** 2).sum(-1)  # (B, K)
        log_r = self.weights.log()[None] - 0.5 * sq / var - 0.5 * D * torch.log(2 * math.pi * var)
        r = torch.softmax(log_r, dim=1)
        gain = (abar.sqrt() * self.stds[None] ** 2 / var)[..., None]  # (B, K, 1)
        x0_k = self.means[None] + gain * (x[:, None, :] - centre)
        return (r[..., None] * x0_k).sum(1)

    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        # E[x0 | x_t] in float64, then the process's own conversion to its prediction_type target
        x0 = self.posterior_mean(x_t, timesteps)
        eps = self.diffusion.predict_epsilon(x_t.double(), x0, timesteps)
        return self.diffusion.target(x0, eps, timesteps).to(x_t.dtype)


def bayes_posterior_1d(diffusion: GaussianDiffusion, x_t: float, x0: float, timestep: int,
                       grid: torch.Tensor | None = None) -> tuple[float, float]:
    """Mean and variance of q(x_{t-1} | x_t, x_0) in 1-D by brute force: Bayes' rule on a grid,

        q(x_{t-1} | x_t, x_0) proportional to q(x_t | x_{t-1}) q(x_{t-1} | x_0),

    normalised numerically. An independent check of ``GaussianDiffusion.posterior``'s closed form.
    """
    t = int(timestep)
    if not 1 <= t <= diffusion.num_train_timesteps - 1:
        raise ValueError(f"timestep={t} must lie in [1, {diffusion.num_train_timesteps - 1}] (x_{{t-1}} must exist)")
    abar_prev = float(diffusion.alphas_cumprod[t - 1])
    beta = float(diffusion.betas[t])
    if grid is None:
        grid = torch.linspace(-8, 8, 200001, dtype=torch.float64)
    log_prior = -0.5 * (grid - abar_prev ** 0.5 * x0) ** 2 / (1 - abar_prev)  # q(x_{t-1} | x_0)
    log_lik = -0.5 * (x_t - (1 - beta) ** 0.5 * grid) ** 2 / beta  # q(x_t | x_{t-1})
    w = torch.softmax(log_prior + log_lik, dim=0)
    mean = float((w * grid).sum())
    return mean, float((w * (grid - mean) ** 2).sum())


class TokenPosteriorDenoiser(nn.Module):
    """The exact token denoiser for a small joint distribution p over sequences: for each masked
    position it returns the true posterior of the clean token given the visible ones,

        p(x^i = v | z) = sum_{x consistent with z, x^i = v} p(x) / sum_{x consistent with z} p(x),

    as logits (log-probabilities; -inf where impossible) of shape (B, L, V). ``sequences`` (N, L) are the
    support, ``probs`` (N,) their probabilities, ``vocab_size`` V includes the mask id. Not
    time-conditioned: masked diffusion's optimal denoiser does not depend on t.
    """

    config = type("Config", (), {"time_conditioning": False})()

    def __init__(self, sequences, probs, vocab_size: int, mask_id: int):
        super().__init__()
        seqs = torch.as_tensor(sequences, dtype=torch.long)
        p = torch.as_tensor(probs, dtype=torch.float64)
        if seqs.ndim != 2 or p.shape != (seqs.shape[0],):
            raise ValueError(f"sequences must be (N, L) and probs (N,); got {tuple(seqs.shape)} and {tuple(p.shape)}")
        if abs(float(p.sum()) - 1) > 1e-9 or (p < 0).any():
            raise ValueError(f"probs must be non-negative and sum to 1 (sum = {float(p.sum())})")
        if (seqs == mask_id).any() or seqs.max() >= vocab_size:
            raise ValueError(f"sequences must use ids below vocab_size={vocab_size} other than mask_id={mask_id}")
        self.sequences, self.probs, self.vocab_size, self.mask_id = seqs, p, vocab_size, mask_id

    def posterior(self, z: torch.Tensor) -> torch.Tensor:
        """p(x^i = v | z) for every position, float64 (B, L, V)."""
        z = z.cpu()
        visible = z != self.mask_id                                                  # (B, L)
        agree = (self.sequences[None] == z[:, None]) | ~visible[:, None]             # (B, N, L)
        w = self.probs[None] * agree.all(-1)                                         # p(x) [x consistent with z]
        w = w / w.sum(-1, keepdim=True)
        onehot = nn.functional.one_hot(self.sequences, self.vocab_size).double()    # (N, L, V)
        return torch.einsum("bn,nlv->blv", w, onehot)

    def forward(self, z: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        return torch.log(self.posterior(z)).to(z.device)


def sampler_distribution(oracle: TokenPosteriorDenoiser, process, strategy: str, num_steps: int,
                         remask: float = 0.0, value: float | None = None) -> torch.Tensor:
    """The exact output distribution of a masked-diffusion sampler driven by ``oracle``, over
    ``oracle.sequences`` (float64, (N,)), by propagating probabilities through its Markov chain over
    partially masked states (no sampling). Small problems only: V^L states.

    - "ancestral": from t = 1 - k/K to s = 1 - (k+1)/K each masked position is revealed with
      probability r = process.reveal_probability(t, s), independently, from its own posterior; with
      ``remask`` = eta > 0 (ReMDM), r and sigma come from process.remask_probabilities(t, s, eta), and each
      position decided before the step goes back to [MASK] with probability sigma, independently;
    - "random" / "confidence" (num_steps = L, one token per step): reveal one masked position, chosen
      uniformly, or the one whose drawn token is the most probable (all drawn independently);
    - "threshold" / "entropy" (adaptive, ``value`` = tau or gamma, at most ``num_steps`` steps): the positions
      ``kernels.adaptive_counts`` chooses from the posteriors (a deterministic choice), each drawn from its own.
    """
    import itertools

    from .._checks import check_choice, check_float, check_int
    from ..sampling.kernels import ADAPTIVE_RULES, adaptive_counts, steps_left_minimum

    check_choice("strategy", strategy, ("ancestral", "random", "confidence", *ADAPTIVE_RULES))
    if strategy in ADAPTIVE_RULES and value is None:
        raise ValueError(f"strategy={strategy!r} needs value= (the threshold tau or the entropy budget gamma)")
    num_steps = check_int("num_steps", num_steps, low=1)
    remask = check_float("remask", remask, 0.0, 1.0)
    if remask > 0 and strategy != "ancestral":
        raise ValueError(f"remask={remask} applies to strategy='ancestral' only, got strategy={strategy!r}")
    seqs = [tuple(s) for s in oracle.sequences.tolist()]
    L = len(seqs[0])
    M = oracle.mask_id
    if strategy in ("random", "confidence") and num_steps != L:
        raise ValueError(f"strategy={strategy!r} is computed for one token per step: num_steps must be L={L}")
    states = {(M,) * L: 1.0}
    grid = time_grid(num_steps)                                  # the samplers' time grid, t_k = 1 - k / K
    for k in range(num_steps):
        post = oracle.posterior(torch.tensor(list(states), dtype=torch.long))        # (S, L, V)
        nxt: dict = {}
        for (state, ps), c in zip(states.items(), post.tolist()):
            masked = [i for i in range(L) if state[i] == M]
            if strategy == "ancestral":
                if remask > 0:
                    sigma, r = (float(v) for v in process.remask_probabilities(grid[k:k + 1], grid[k + 1:k + 2],
                                                                              remask))
                else:
                    sigma, r = 0.0, float(process.reveal_probability(grid[k], grid[k + 1]))
                decided = [i for i in range(L) if state[i] != M]
                moves = []
                for back in itertools.product((False, True), repeat=len(decided) if sigma > 0 else 0):
                    to_mask = {i: M for i, b in zip(decided, back) if b}
                    pb = math.prod(sigma if b else 1 - sigma for b in back)
                    for reveal in itertools.product((False, True), repeat=len(masked)):
                        chosen = [i for i, b in zip(masked, reveal) if b]
                        pr = pb * math.prod(r if b else 1 - r for b in reveal)
                        for vals in itertools.product(range(oracle.vocab_size), repeat=len(chosen)):
                            moves.append(({**to_mask, **dict(zip(chosen, vals))},
                                          pr * math.prod(c[i][v] for i, v in zip(chosen, vals))))
            elif strategy in ADAPTIVE_RULES:
                if not masked:
                    moves = [({}, 1.0)]
                else:
                    lp = torch.tensor(c, dtype=torch.float64).log()[None]
                    is_m = torch.tensor([[x == M for x in state]])
                    score, n_k = adaptive_counts(lp, is_m, strategy, value,
                                                 steps_left_minimum(is_m.sum(1), num_steps - k))
                    chosen = [int(i) for i in top_k_reveal(score, is_m, n_k)[0].nonzero()[:, 0]]
                    moves = [(dict(zip(chosen, vals)), math.prod(c[i][v] for i, v in zip(chosen, vals)))
                             for vals in itertools.product(range(oracle.vocab_size), repeat=len(chosen))]
            else:
                moves = []
                for vals in itertools.product(range(oracle.vocab_size), repeat=len(masked)):
                    q = math.prod(c[i][v] for i, v in zip(masked, vals))
                    if q == 0:
                        continue
                    if strategy == "random":
                        moves += [({i: v}, q / len(masked)) for i, v in zip(masked, vals)]
                    else:
                        # the most probable drawn token, chosen by the sampler's own kernel (ties: leftmost)
                        score = torch.tensor([[c[i][v] for i, v in zip(masked, vals)]], dtype=torch.float64)
                        every = torch.ones_like(score, dtype=torch.bool)
                        pick = top_k_reveal(score, every, torch.ones(1, dtype=torch.long))
                        j = int(pick[0].nonzero()[0])
                        moves.append(({masked[j]: vals[j]}, q))
            for change, q in moves:
                if q == 0:
                    continue
                ns = tuple(change.get(i, x) for i, x in enumerate(state))
                nxt[ns] = nxt.get(ns, 0.0) + ps * q
        states = nxt
    return torch.tensor([states.get(s, 0.0) for s in seqs], dtype=torch.float64)


class EmbeddingPosteriorDenoiser(nn.Module):
    """The exact x_0-predictor of Diffusion-LM with frozen word vectors and a small distribution p(w)
    over whole sequences.

    The data are x_0 = EMB(w) + sigma_0 eps_0 with w ~ p: a Gaussian mixture with one component per
    sequence, so E[x_0 | x_t] is the posterior-weighted mean over the candidate sequences,

        E[x_0 | x_t] = sum_w p(w | x_t) E[x_0 | x_t, w],   p(w | x_t) proportional to p(w) q(x_t | w),

    computed by ``GaussianMixtureDenoiser`` on the flattened (L d)-vectors. It has an ``embedding`` (the
    word vectors), so rounding and clamping work on it as on a trained model. ``diffusion`` must predict
    "sample" (``EmbeddingDiffusion.gaussian``); ``sigma_0`` is the embedding step's noise (0: point masses).
    """

    def __init__(self, diffusion: GaussianDiffusion, embeddings, sequences, probs, sigma_0: float = 0.0):
        super().__init__()
        emb = torch.as_tensor(embeddings, dtype=torch.float32)
        seqs = torch.as_tensor(sequences, dtype=torch.long)
        if emb.ndim != 2 or seqs.ndim != 2:
            raise ValueError(f"embeddings must be (V, d) and sequences (N, L); got {tuple(emb.shape)}, "
                             f"{tuple(seqs.shape)}")
        if diffusion.prediction_type != "sample":
            raise ValueError("diffusion must have prediction_type='sample' (an x_0-predictor)")
        if seqs.numel() and (seqs.min() < 0 or seqs.max() >= emb.shape[0]):
            raise ValueError(f"sequences must use word ids 0 <= id < {emb.shape[0]} (the rows of embeddings)")
        self.embedding = nn.Embedding.from_pretrained(emb, freeze=True)
        self.sequences = seqs
        self.shape = (seqs.shape[1], emb.shape[1])
        means = emb.double()[seqs].reshape(seqs.shape[0], -1)
        self.mixture = GaussianMixtureDenoiser(diffusion, means, [float(sigma_0)], probs)

    def log_posterior(self, x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """log p(w | x_t) over ``sequences``, float64 (B, N), differentiable in x_t:
        p(w | x_t) proportional to p(w) N(x_t; sqrt(abar_t) EMB(w), (abar_t sigma_0^2 + 1 - abar_t) I)."""
        m = self.mixture
        x = x_t.reshape(x_t.shape[0], -1).double()
        abar = m.diffusion.alphas_cumprod.double()[timesteps.cpu()][:, None].to(x.device)
        var = abar * m.stds[None] ** 2 + (1 - abar)
        sq = ((x[:, None, :] - abar.sqrt()[..., None] * m.means[None]) ** 2).sum(-1)
        return torch.log_softmax(m.weights.log()[None] - 0.5 * sq / var, dim=1)

    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        if tuple(x_t.shape[1:]) != self.shape:
            raise ValueError(f"x_t must have shape (batch, {self.shape[0]}, {self.shape[1]}), got {tuple(x_t.shape)}")
        return self.mixture(x_t.reshape(x_t.shape[0], -1), timesteps).reshape(x_t.shape)


class PositionClassifier(nn.Module):
    """The exact noisy classifier of the word at one position: p(w^i = c | x_t) from an
    ``EmbeddingPosteriorDenoiser``'s sequence posterior, as logits (B, V)."""

    def __init__(self, oracle: EmbeddingPosteriorDenoiser, position: int):
        super().__init__()
        from .._checks import check_int

        self.oracle = oracle
        self.position = check_int("position", position, 0, oracle.sequences.shape[1] - 1)
        V = oracle.embedding.weight.shape[0]
        self.config = type("Config", (), {"num_classes": V})()
        self.register_buffer("onehot", nn.functional.one_hot(oracle.sequences[:, position], V).double())

    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        # p(w^i = c | x_t) = sum_w p(w | x_t) [w^i = c], in log space and differentiable for guidance
        logw = self.oracle.log_posterior(x_t, timesteps)
        return torch.logsumexp(logw[..., None] + self.onehot.log()[None], dim=1).to(x_t.dtype)


def tiny_embedding_problem(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lesson 03's exact test bed: 3 words with fixed 2-D vectors 1.5 (cos a, sin a) at a = 0, 2pi/3, 4pi/3,
    all 9 sequences of 2 words, and a random correlated distribution p over them (p_k proportional to
    u_k^2 + 0.02, u_k uniform, from ``seed``). Returns (word vectors (3, 2), sequences (9, 2), p (9,))."""
    angles = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3])
    emb = 1.5 * torch.stack([angles.cos(), angles.sin()], 1)
    seqs = torch.tensor([[a, b] for a in range(3) for b in range(3)])
    p = torch.rand(9, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) ** 2 + 0.02
    return emb, seqs, p / p.sum()


# ------------------------------------------------------------- lesson 02: samplers against the known answer
def mixture_fit(x: torch.Tensor, means, std: float) -> tuple[torch.Tensor, float]:
    """How well points ``x`` (n, D) match a mixture of well-separated Gaussians N(mu_k, s^2 I), s = ``std``.

    Each point goes to its nearest centre mu_k (``means``, (K, D)). Returns ``(mass, spread)``:

        mass_k = (number of points assigned to k) / n                 (the truth: the weight pi_k)
        spread = sqrt( mean_i ||x_i - mu_k(i)||^2 / (D s^2) )        (the truth: 1)

    Both are exact yardsticks when the components are far apart compared with s (the course's "mixture":
    centres 1.15 apart, s = 0.1): a spread above 1 means blurred clusters, below 1 clusters that are too
    tight, and mass compares with the weights through ``total_variation``.
    """
    check_tensor("x", x, floating=True)
    mu = torch.as_tensor(means, dtype=torch.float64)
    if x.ndim != 2 or mu.ndim != 2 or x.shape[1] != mu.shape[1]:
        raise ValueError(f"x must be (n, D) and means (K, D) with the same D; "
                         f"got {tuple(x.shape)} and {tuple(mu.shape)}")
    xd = x.detach().cpu().double()
    k = torch.cdist(xd, mu).argmin(1)                                       # nearest centre of each point
    mass = torch.bincount(k, minlength=mu.shape[0]).double() / len(xd)
    spread = float(((xd - mu[k]) ** 2).sum(1).mean().div(xd.shape[1] * std ** 2).sqrt())
    return mass, spread


def swd_stderr(x: torch.Tensor, y: torch.Tensor, draws: int = 5, num_projections: int = 512) -> tuple[float, float]:
    """SWD with an error bar over independent draws: split ``x`` and ``y`` (n, d) into ``draws`` equal chunks,
    take ``sliced_wasserstein(x_j, y_j, seed=j)`` for each pair, and return (mean, standard error) over the
    chunks. Each chunk is a sample of n / draws points, so compare it only with a floor at the same size."""
    from .._checks import check_int
    from .metrics import mean_stderr, sliced_wasserstein

    draws = check_int("draws", draws, low=2)
    if x.shape != y.shape or x.ndim != 2 or len(x) % draws:
        raise ValueError(f"x and y must both be (n, d) with n divisible by draws={draws}; "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}")
    m = len(x) // draws
    return mean_stderr([sliced_wasserstein(x[j * m:(j + 1) * m], y[j * m:(j + 1) * m], num_projections, seed=j)
                        for j in range(draws)])


def sign_beyond_noise(a: tuple[float, float], b: tuple[float, float], z: float = 3.0) -> int:
    """Compare two measurements given as (mean, standard error): +1 if a is larger than b by more than
    z sqrt(se_a^2 + se_b^2), -1 if smaller by more than that, 0 if they are within noise of each other."""
    (ma, sa), (mb, sb) = a, b
    if min(sa, sb) < 0 or z <= 0:
        raise ValueError(f"standard errors must be >= 0 and z > 0, got {sa}, {sb} and z={z}")
    margin = z * (sa ** 2 + sb ** 2) ** 0.5
    return 1 if ma - mb > margin else -1 if mb - ma > margin else 0
