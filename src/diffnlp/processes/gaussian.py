"""Gaussian diffusion (DDPM, Ho et al. 2020; DDIM, Song et al. 2021) with diffusers' names.

Forward process, in closed form (the symbols of lesson 02):

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,          eps ~ N(0, I)

A denoiser is any module called as ``model(x_t, timesteps)`` (``timesteps`` a LongTensor of
shape (batch,)) that returns the ``prediction_type`` target shaped like x_t: the noise eps
("epsilon"), the clean sample x_0 ("sample") or the velocity
v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 ("v_prediction").

Sampling walks integer timesteps in descending order. With ``num_inference_steps`` = n the
timesteps are diffusers' "leading" spacing t_i = i * (T // n), and each step goes from t to
s = t - T // n (abar_s = 1 below zero). Both samplers are generators of every x_t.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from .._checks import check_choice, check_float, check_int, check_tensor
from ..base import Estimate, Trajectory, model_device
from ..schedules import BETA_SCHEDULES, alphas_cumprod, make_betas, snr

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
METHODS = ("ddpm", "ddim")
SPACINGS = ("leading", "trailing", "quadratic")


class GaussianDiffusion:
    """A Gaussian diffusion process over T integer timesteps 0..T-1.

    Attributes: ``betas``, ``alphas`` (1 - beta), ``alphas_cumprod`` (abar), float32 tensors of
    length T, on the CPU; they are moved to the data's device when used.
    """

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "linear",
                 prediction_type: str = "epsilon"):
        self.num_train_timesteps = check_int("num_train_timesteps", num_train_timesteps, low=2)
        self.beta_schedule = check_choice("beta_schedule", beta_schedule, BETA_SCHEDULES)
        self.prediction_type = check_choice("prediction_type", prediction_type, PREDICTION_TYPES)
        self.betas = make_betas(beta_schedule, num_train_timesteps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = alphas_cumprod(self.betas)

    def __repr__(self) -> str:
        return (f"GaussianDiffusion(num_train_timesteps={self.num_train_timesteps}, "
                f"beta_schedule={self.beta_schedule!r}, prediction_type={self.prediction_type!r})")

    @property
    def snr(self) -> torch.Tensor:
        """SNR(t) = abar_t / (1 - abar_t)."""
        return snr(self.alphas_cumprod)

    # ----------------------------------------------------------------- helpers
    def _timesteps(self, timesteps, x: torch.Tensor, name: str = "timesteps") -> torch.Tensor:
        """Check integer timesteps in [0, T-1] and return them as a LongTensor (batch,)."""
        T = self.num_train_timesteps
        if isinstance(timesteps, int) and not isinstance(timesteps, bool):
            timesteps = torch.full((x.shape[0],), timesteps, dtype=torch.long)
        check_tensor(name, timesteps, floating=False)
        if timesteps.ndim != 1 or timesteps.shape[0] != x.shape[0]:
            raise ValueError(f"{name} must have shape ({x.shape[0]},) to match the batch, "
                             f"got {tuple(timesteps.shape)}")
        lo, hi = int(timesteps.min()), int(timesteps.max())
        if lo < 0 or hi > T - 1:
            raise ValueError(f"{name} must lie in [0, {T - 1}], got values in [{lo}, {hi}]")
        return timesteps.to(device=x.device, dtype=torch.long)

    def _abar(self, timesteps: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """abar_t for each row, shaped (batch, 1, ..., 1) to broadcast against x; abar = 1 for t < 0."""
        table = torch.cat([torch.ones(1), self.alphas_cumprod]).to(device=x.device, dtype=x.dtype)
        a = table[timesteps.to(x.device) + 1]  # index 0 holds abar_{-1} = 1
        return a.view(-1, *([1] * (x.ndim - 1)))

    # ----------------------------------------------------------------- forward process
    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, timesteps) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps   (a draw from q(x_t | x_0))."""
        check_tensor("x0", x0, floating=True, ndim_min=1)
        check_tensor("noise", noise, floating=True)
        if noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
        t = self._timesteps(timesteps, x0)
        abar = self._abar(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def q_sample_chain(self, x0: torch.Tensor, timestep: int, generator=None) -> torch.Tensor:
        """Iterate the one-step chain x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) eps_s for
        s = 0..t: the definition that ``add_noise``'s closed form summarises."""
        check_tensor("x0", x0, floating=True, ndim_min=1)
        t = check_int("timestep", timestep, low=0, high=self.num_train_timesteps - 1)
        x = x0
        for s in range(t + 1):
            eps = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            beta = float(self.betas[s])
            x = (1 - beta) ** 0.5 * x + beta ** 0.5 * eps
        return x

    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, timesteps,
                  prev_timesteps=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_s | x_t, x_0), s = prev_timesteps (default t - 1; s < 0 means abar_s = 1).

        With alpha_{t|s} = abar_t / abar_s and beta_{t|s} = 1 - alpha_{t|s}:

            mean = sqrt(abar_s) beta_{t|s} / (1 - abar_t) x_0 + sqrt(alpha_{t|s}) (1 - abar_s) / (1 - abar_t) x_t
            var  = (1 - abar_s) / (1 - abar_t) beta_{t|s}
        """
        check_tensor("x_t", x_t, floating=True, ndim_min=1)
        check_tensor("x0", x0, floating=True)
        if x0.shape != x_t.shape:
            raise ValueError(f"x0 must have the shape of x_t {tuple(x_t.shape)}, got {tuple(x0.shape)}")
        t = self._timesteps(timesteps, x_t)
        s = t - 1 if prev_timesteps is None else self._prev(prev_timesteps, t, x_t)
        abar_t, abar_s = self._abar(t, x_t), self._abar(s, x_t)
        alpha_ts = abar_t / abar_s
        beta_ts = 1 - alpha_ts
        mean = abar_s.sqrt() * beta_ts / (1 - abar_t) * x0 + alpha_ts.sqrt() * (1 - abar_s) / (1 - abar_t) * x_t
        var = (1 - abar_s) / (1 - abar_t) * beta_ts
        return mean, var.expand_as(x_t)

    def _prev(self, prev_timesteps, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if isinstance(prev_timesteps, int) and not isinstance(prev_timesteps, bool):
            prev_timesteps = torch.full_like(t, prev_timesteps)
        check_tensor("prev_timesteps", prev_timesteps, floating=False)
        s = prev_timesteps.to(t.device)
        if s.shape != t.shape or bool((s >= t).any()):
            raise ValueError("prev_timesteps must have the shape of timesteps and be smaller than them")
        return s.clamp(min=-1)

    # ----------------------------------------------------------------- parameterisations
    def predict_x0(self, x_t: torch.Tensor, eps: torch.Tensor, timesteps) -> torch.Tensor:
        """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        abar = self._abar(self._timesteps(timesteps, x_t), x_t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def predict_epsilon(self, x_t: torch.Tensor, x0: torch.Tensor, timesteps) -> torch.Tensor:
        """eps = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t)."""
        abar = self._abar(self._timesteps(timesteps, x_t), x_t)
        return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()

    def velocity(self, x0: torch.Tensor, eps: torch.Tensor, timesteps) -> torch.Tensor:
        """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0."""
        abar = self._abar(self._timesteps(timesteps, x0), x0)
        return abar.sqrt() * eps - (1 - abar).sqrt() * x0

    def split_prediction(self, model_output: torch.Tensor, x_t: torch.Tensor,
                         timesteps) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_0, eps) implied by a model output of this process's ``prediction_type``.

        From v:  x_0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v,   eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v.
        """
        if self.prediction_type == "epsilon":
            return self.predict_x0(x_t, model_output, timesteps), model_output
        if self.prediction_type == "sample":
            return model_output, self.predict_epsilon(x_t, model_output, timesteps)
        abar = self._abar(self._timesteps(timesteps, x_t), x_t)
        x0 = abar.sqrt() * x_t - (1 - abar).sqrt() * model_output
        eps = (1 - abar).sqrt() * x_t + abar.sqrt() * model_output
        return x0, eps

    def score(self, model_output: torch.Tensor, x_t: torch.Tensor, timesteps) -> torch.Tensor:
        """The score grad_x log q_t(x_t) = -eps / sqrt(1 - abar_t) (Tweedie's formula read backwards)."""
        _, eps = self.split_prediction(model_output, x_t, timesteps)
        abar = self._abar(self._timesteps(timesteps, x_t), x_t)
        return -eps / (1 - abar).sqrt()

    def target(self, x0: torch.Tensor, noise: torch.Tensor, timesteps) -> torch.Tensor:
        """What the model is trained to output: eps, x_0 or v."""
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "sample":
            return x0
        return self.velocity(x0, noise, timesteps)

    def elbo_weights(self) -> torch.Tensor:
        """lambda_t such that the ELBO term L_{t-1} = lambda_t E||eps - eps_hat||^2 (t >= 1).

        With p_theta(x_{t-1} | x_t) = N(mu_theta, sigma_t^2 I), sigma_t^2 the posterior variance,
        KL(q || p) = ||mu_q - mu_theta||^2 / (2 sigma_t^2), and mu_q - mu_theta =
        beta_t / (sqrt(alpha_t) sqrt(1 - abar_t)) (eps_hat - eps), so

            lambda_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)).

        Entry 0 (the decoder term, not a KL of this form) is set to NaN. L_simple sets all to 1.
        """
        abar = self.alphas_cumprod.double()
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        beta = 1 - abar / abar_prev
        sigma2 = (1 - abar_prev) / (1 - abar) * beta
        lam = beta ** 2 / (2 * sigma2 * (1 - beta) * (1 - abar))
        lam[0] = float("nan")
        return lam

    # ----------------------------------------------------------------- training
    def loss(self, model: nn.Module, x0: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The simple loss per example (B,): || model(x_t, t) - target ||^2, averaged over the elements of x_0.

        With prediction_type="epsilon" this is Ho et al.'s L_simple: the ELBO with its
        per-step weights dropped. t ~ U{0..T-1}, eps ~ N(0, I), drawn with ``generator``; training
        minimises its mean over the batch, E_{t, eps}.
        """
        check_tensor("x0", x0, floating=True, ndim_min=2)
        B = x0.shape[0]
        t = torch.randint(0, self.num_train_timesteps, (B,), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        x_t = self.add_noise(x0, noise, t)
        return ((model(x_t, t) - self.target(x0, noise, t)) ** 2).flatten(1).mean(1)

    @torch.no_grad()
    def nelbo(self, model: nn.Module, x0: torch.Tensor, *, generator: torch.Generator | None = None,
              n_samples: int = 16) -> Estimate:
        """The negative ELBO per example, in nats, a bound on -log p_theta(x_0) (a density: it can be negative),
        with ``n_samples`` Monte-Carlo draws per example and their standard error:

            NELBO = L_T + sum_{t=1}^{T-1} L_{t-1} + L_0
            L_T     = KL(q(x_{T-1} | x_0) || N(0, I))                                  (exact)
            L_{t-1} = lambda_t || eps - eps_hat(x_t, t) ||^2,   t >= 1                (``elbo_weights``)
            L_0     = -log N(x_0; x0_hat(x_{t=0}, 0), beta_0 I)                        (the decoder)

        The reverse steps have the posterior variance (DDPM's "fixed small", as ``step`` samples), and the
        last one a Gaussian decoder of variance beta_0. The sum over the T timesteps is T E_t[...], t
        stratified over 0..T-1."""
        check_tensor("x0", x0, floating=True, ndim_min=2)
        n = check_int("n_samples", n_samples, low=2)
        B, T, d = x0.shape[0], self.num_train_timesteps, x0[0].numel()
        lam = self.elbo_weights()                                                  # float64, on the CPU
        beta0, abar_T = float(1 - self.alphas_cumprod[0]), float(self.alphas_cumprod[-1])
        sq = x0.flatten(1).pow(2).sum(1).cpu().double()
        prior = 0.5 * (abar_T * sq + d * ((1 - abar_T) - 1 - math.log(1 - abar_T)))    # KL(q(x_{T-1}|x_0) || N(0,I))
        def draw(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """||eps - eps_hat||^2 and ||x_0 - x0_hat||^2 at timesteps t (B,), float64 on the CPU."""
            noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
            t_dev = t.to(x0.device)
            x_t = self.add_noise(x0, noise, t_dev)
            x0_hat, eps_hat = self.split_prediction(model(x_t, t_dev), x_t, t_dev)
            return tuple((a - b).flatten(1).pow(2).sum(1).cpu().double() for a, b in ((noise, eps_hat), (x0, x0_hat)))

        # L_0, the decoder: one draw of x at timestep 0 (its own term: it is not a KL of the others' scale)
        decoder = draw(torch.zeros(B, dtype=torch.long))[1] / (2 * beta0) + 0.5 * d * math.log(2 * math.pi * beta0)
        offset = torch.rand(B, generator=generator, dtype=torch.float64)
        draws = torch.zeros(B, n, dtype=torch.float64)
        for j in range(n):                                   # sum_{t=1}^{T-1} L_{t-1} = (T - 1) E_t[lambda_t ||.||^2]
            t = 1 + ((offset + j) / n * (T - 1)).long().clamp(max=T - 2)              # stratum j of 1..T-1
            draws[:, j] = (T - 1) * lam[t] * draw(t)[0]
        prior = prior + decoder
        return Estimate(prior + draws.mean(1), draws.std(1) / math.sqrt(n))

    # ----------------------------------------------------------------- sampling
    def inference_timesteps(self, num_inference_steps: int | None = None,
                            timestep_spacing: str = "leading") -> torch.Tensor:
        """Descending integer timesteps for sampling with n steps.

        - "leading" (diffusers' default): t_i = i * (T // n), i = n-1..0;
        - "trailing" (diffusers): t_i = round(T - i T / n) - 1, starting at T - 1;
        - "quadratic" (DDIM paper, Song et al. 2021, App. D.2): t_i = (T - 1) (i / (n-1))^2,
          made strictly increasing, so the last steps near the data are the finest.
        """
        T = self.num_train_timesteps
        n = T if num_inference_steps is None else check_int("num_inference_steps", num_inference_steps, 1, T)
        check_choice("timestep_spacing", timestep_spacing, SPACINGS)
        if timestep_spacing == "leading":
            return (torch.arange(n) * (T // n)).flip(0).long()
        if timestep_spacing == "trailing":
            return (torch.round(torch.arange(T, 0, -T / n, dtype=torch.float64)) - 1).long()[:n]
        if n == 1:
            return torch.tensor([T - 1])
        ts = ((T - 1) * (torch.arange(n, dtype=torch.float64) / (n - 1)) ** 2).floor().long()
        for i in range(1, n):  # strictly increasing; the top stays at T - 1 since n <= T
            ts[i] = max(int(ts[i]), int(ts[i - 1]) + 1)
        return ts.clamp(max=T - 1).flip(0)

    def step(self, model_output: torch.Tensor, timestep: int, x_t: torch.Tensor, prev_timestep: int,
             method: str = "ddpm", eta: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One reverse step x_t -> x_s (s = prev_timestep < t).

        DDPM draws from the posterior with x_0 predicted:  x_s = mean(x_t, x0_hat) + sqrt(var) z
        (no noise at the last step). DDIM (eta = 0 deterministic, eta = 1 like DDPM):

            sigma = eta sqrt((1 - abar_s) / (1 - abar_t) (1 - abar_t / abar_s))
            x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z
        """
        check_choice("method", method, METHODS)
        eta = check_float("eta", eta, 0.0, 1.0)
        check_tensor("x_t", x_t, floating=True, ndim_min=1)
        T = self.num_train_timesteps
        if not 0 <= int(timestep) <= T - 1:
            raise ValueError(f"timestep={int(timestep)} must lie in [0, {T - 1}]")
        if int(prev_timestep) >= int(timestep):
            raise ValueError(f"prev_timestep={int(prev_timestep)} must be smaller than timestep={int(timestep)}")
        if noise is not None and noise.shape != x_t.shape:
            raise ValueError(f"noise must have the shape of x_t {tuple(x_t.shape)}, got {tuple(noise.shape)}")
        B = x_t.shape[0]
        t = torch.full((B,), int(timestep), dtype=torch.long, device=x_t.device)
        s = torch.full((B,), int(prev_timestep), dtype=torch.long, device=x_t.device).clamp(min=-1)
        x0, eps = self.split_prediction(model_output, x_t, t)
        if method == "ddpm":
            mean, var = self.posterior(x_t, x0, t, s)
            if timestep > 0:
                if noise is None:
                    raise ValueError("noise is required for a DDPM step with timestep > 0")
                return mean + var.clamp(min=1e-20).sqrt() * noise
            return mean
        abar_t, abar_s = self._abar(t, x_t), self._abar(s, x_t)
        sigma = eta * ((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s)).sqrt()
        x_s = abar_s.sqrt() * x0 + (1 - abar_s - sigma ** 2).sqrt() * eps
        if eta > 0:
            if noise is None:
                raise ValueError("noise is required for a DDIM step with eta > 0")
            x_s = x_s + sigma * noise
        return x_s

    sample_options = {
        "method": "'ddpm' (ancestral, Ho et al.) or 'ddim' (Song et al.; eta = 0 is deterministic)",
        "eta": "DDIM's noise scale: 0 deterministic, 1 as much noise as DDPM",
        "timestep_spacing": "how the inference timesteps are chosen: 'leading', 'trailing' or 'quadratic'",
        "device": "where to sample (default: the model's device)",
    }

    def sample(self, model: nn.Module, shape, num_inference_steps: int | None = None, *,
               generator: torch.Generator | None = None, method: str = "ddpm", eta: float = 0.0,
               device: torch.device | str | None = None, timestep_spacing: str = "leading") -> Trajectory:
        """A ``Trajectory`` of x_T, then every x_t down to the sample x_0 (the last state, ``.run()``).

        Each step goes from one timestep of ``inference_timesteps(num_inference_steps,
        timestep_spacing)`` to the next (the last to -1, where abar = 1).

        ``generator`` is a CPU torch.Generator (noise is drawn on the CPU and moved, so the same
        seed gives the same sample on any device). ``device`` defaults to the model's device.
        The arguments are checked here, at the call, before the first step is taken.
        """
        check_choice("method", method, METHODS)
        eta = check_float("eta", eta, 0.0, 1.0)
        if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) < 2 or \
                not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ValueError(f"shape must be a tuple of positive ints (batch, ...), got {shape!r}")
        timesteps = self.inference_timesteps(num_inference_steps, timestep_spacing).tolist()
        device = model_device(model) if device is None else torch.device(device)
        return Trajectory(lambda traj: self._reverse(traj, model, tuple(shape), timesteps, method, eta, generator,
                                                     device))

    def _reverse(self, traj, model, shape, timesteps, method, eta, generator, device) -> Iterator[torch.Tensor]:
        x = torch.randn(shape, generator=generator).to(device)
        yield x
        for t, s in zip(timesteps, timesteps[1:] + [-1]):
            t_batch = torch.full((shape[0],), t, dtype=torch.long, device=device)
            out = model(x, t_batch)
            traj.network_calls += 1
            noise = torch.randn(shape, generator=generator).to(device)
            x = self.step(out, t, x, s, method=method, eta=eta, noise=noise)
            yield x


def gaussian_kl(mean1: torch.Tensor, var1: torch.Tensor, mean2: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    """KL(N(m1, v1) || N(m2, v2)) per element = 0.5 (log(v2/v1) + (v1 + (m1 - m2)^2) / v2 - 1)."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


# ------------------------------------------------ lesson 01: Gaussian noise on one-hot words

def argmax_flip_rates(diffusion: GaussianDiffusion, ids: torch.Tensor, vocab_size: int, generator=None) -> torch.Tensor:
    """Gaussian noise on one-hot words: the share of words read back wrong at every timestep, (T,) float64.

    Each word id w becomes the vector x_0 = 2 onehot(w) - 1 (+1 on its axis, -1 elsewhere), gets one fixed
    noise vector eps, and x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps; it is read back as argmax x_t.
    rate_t = mean_i [argmax x_t^i != w^i]. Pure noise reads back a uniformly random word: rate -> 1 - 1/V.
    """
    check_tensor("ids", ids, ndim_min=1)
    V = check_int("vocab_size", vocab_size, low=2)
    ids = ids.reshape(-1).long().cpu()
    x0 = torch.nn.functional.one_hot(ids, V).double() * 2 - 1
    eps = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    abar = diffusion.alphas_cumprod.double()
    rates = torch.empty(len(abar), dtype=torch.float64)
    for start in range(0, len(abar), 100):                                  # 100 timesteps at a time
        a = abar[start:start + 100, None, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps                          # (chunk, N, V)
        rates[start:start + 100] = (x_t.argmax(-1) != ids).double().mean(1)
    return rates


def flip_band(rates: torch.Tensor, vocab_size: int, low: float = 0.1, high: float = 0.9) -> tuple[int, int]:
    """The band of timesteps in which words flip: the first t where ``rates`` (from ``argmax_flip_rates``)
    reaches ``low`` of its pure-noise level 1 - 1/V, and the first t where it reaches ``high`` of it."""
    level = 1 - 1 / check_int("vocab_size", vocab_size, low=2)
    r = torch.as_tensor(rates, dtype=torch.float64)
    if not 0 < low < high < 1:
        raise ValueError(f"need 0 < low < high < 1, got low={low}, high={high}")
    above_low, above_high = (r >= low * level).nonzero(), (r >= high * level).nonzero()
    if not len(above_high):
        raise ValueError(f"rates never reach {high:.0%} of the pure-noise level {level:.3f}")
    return int(above_low[0]), int(above_high[0])
