"""Text diffusion in embedding space: Diffusion-LM (Li et al., 2022).

Words become vectors, the vectors are diffused like any continuous data, and the sample is turned
back into words at the end. With EMB the learned word vectors (V x d) and w a sequence of words:

    x_0 = EMB(w) + sigma_0 eps_0,        sigma_0^2 = 1 - abar_0       (the embedding step q(x_0 | w))
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps                     (``GaussianDiffusion.add_noise``)

The denoiser f(x_t, t) predicts x_0 (prediction_type "sample"), and the three terms of the loss are

    mse      = || f(x_t, t) - x_0 ||^2                   (mean over positions and dimensions)
    prior    = || sqrt(abar_T) EMB(w) ||^2               (the squared mean of q(x_T | x_0), same mean)
    rounding = -log p(w | x_0)                           (mean over positions)

The rounding distribution is a softmax over the vocabulary whose readout is *tied* to EMB:

    logit_v(x) = -|| x - EMB(v) ||^2 = 2 x . EMB(v) - ||EMB(v)||^2 - ||x||^2,

a linear layer with weight 2 EMB and bias -||EMB(v)||^2 (the last term is the same for every v).
Its most likely word is the nearest word vector, so rounding a sample by nearest neighbour is the
same as taking the readout's argmax.

Sampling runs the DDPM/DDIM steps of ``gaussian.py``. The *clamping trick* replaces the predicted
x_0 by the nearest word vectors at every step. Guidance (``ClassifierGuidance``) takes gradient
steps on each x_{t-1} toward an attribute that a classifier of noisy vectors recognises; infilling
keeps known positions at their noised word vectors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_choice, check_float, check_int, check_tensor
from ..base import Estimate, Trajectory, model_device
from ..sampling.guidance import ClassifierGuidance
from .gaussian import METHODS, GaussianDiffusion, gaussian_kl


@dataclass
class LossTerms:
    """Diffusion-LM's three loss terms, each per sequence (batch,)."""

    mse: torch.Tensor
    prior: torch.Tensor
    rounding: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.mse + self.prior + self.rounding


def word_vectors(model) -> torch.Tensor:
    """EMB, the (V, d) word vectors of a model that has an ``embedding`` (an ``nn.Embedding``)."""
    emb = getattr(model, "embedding", None)
    if not isinstance(emb, nn.Embedding):
        raise TypeError(f"the model must have an 'embedding' (nn.Embedding) of word vectors; "
                        f"{type(model).__name__} has none")
    return emb.weight


def rounding_logits(model, x: torch.Tensor) -> torch.Tensor:
    """logit_v(x) = -|| x - EMB(v) ||^2 for every word v: (..., d) -> (..., V)."""
    emb = word_vectors(model)
    _check_vectors("x", x, emb.shape[1])
    # ||x - e||^2 = ||x||^2 - 2 x.e + ||e||^2, computed without forming the (..., V, d) differences
    sq = (x * x).sum(-1, keepdim=True) - 2 * x @ emb.T + (emb * emb).sum(-1)
    return -sq


def round_to_words(model, x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour rounding: argmin_v || x - EMB(v) ||, (..., d) -> token ids (...)."""
    return rounding_logits(model, x).argmax(-1)


def rounding_nll(model, x0: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The rounding term -log p(w | x_0) per position, (B, L): cross-entropy of the tied readout."""
    logits = rounding_logits(model, x0)
    return nn.functional.cross_entropy(logits.transpose(1, 2), ids.to(logits.device), reduction="none")


def rounding_grad(model, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The gradient of the rounding term in x, (..., d): with p(v | x) = softmax_v(-||x - EMB(v)||^2),

        d/dx [-log p(w | x)] = 2 (sum_v p(v | x) EMB(v) - EMB(w)),

    twice the gap from the word's own vector to the vector expected under the readout: it vanishes only
    when the readout is sure of w, and it pushes x_0 (and, through EMB, the word vectors) apart."""
    emb = word_vectors(model)
    p = torch.softmax(rounding_logits(model, x), -1)                  # p(v | x), (..., V)
    return 2 * (p.to(emb.dtype) @ emb - emb[ids.to(emb.device)])      # 2 (E_p[EMB(v)] - EMB(w))


def clamp_to_words(model, x: torch.Tensor) -> torch.Tensor:
    """The clamping trick: replace each vector by its nearest word vector EMB(round(x))."""
    return word_vectors(model)[round_to_words(model, x)]


def score_interpolation(model, logits: torch.Tensor) -> torch.Tensor:
    """CDCD's x_0 estimate (Dieleman et al., 2022): the expected word vector under a distribution over words,

        x0_hat = sum_v p(v | x_t) EMB(v),    p = softmax(logits),   (..., V) -> (..., d).

    A denoiser trained with cross-entropy to predict the word gives it. (Clamping is different: it snaps
    the *expected* vector to its nearest word, which need not be the most probable word.)"""
    emb = word_vectors(model)
    check_tensor("logits", logits, floating=True, ndim_min=1)
    if logits.shape[-1] != emb.shape[0]:
        raise ValueError(f"logits must end in the vocabulary size {emb.shape[0]}, got shape {tuple(logits.shape)}")
    return torch.softmax(logits, -1).to(emb.dtype) @ emb


def _check_vectors(name: str, x, dim: int) -> None:
    check_tensor(name, x, floating=True, ndim_min=1)
    if x.shape[-1] != dim:
        raise ValueError(f"{name} must end in the embedding dimension {dim}, got shape {tuple(x.shape)}")


class EmbeddingDiffusion:
    """Diffusion-LM's process on a model with word vectors (``model.embedding``) and an x_0-predictor
    (``model(x_t, timesteps)``), over T timesteps of a Gaussian schedule ("sqrt" by default)."""

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "sqrt", mask_id: int = 1):
        self.gaussian = GaussianDiffusion(num_train_timesteps, beta_schedule, prediction_type="sample")
        self.num_train_timesteps = self.gaussian.num_train_timesteps
        self.mask_id = check_int("mask_id", mask_id, low=0)

    def __repr__(self) -> str:
        return (f"EmbeddingDiffusion(num_train_timesteps={self.num_train_timesteps}, "
                f"beta_schedule={self.gaussian.beta_schedule!r})")

    @property
    def sigma_0(self) -> float:
        """sigma_0 = sqrt(1 - abar_0): the noise of the embedding step q(x_0 | w) = N(EMB(w), sigma_0^2 I)."""
        return float((1 - self.gaussian.alphas_cumprod[0]).sqrt())

    def embed(self, model, ids: torch.Tensor) -> torch.Tensor:
        """EMB(w): token ids (B, L) -> word vectors (B, L, d)."""
        emb = word_vectors(model)
        check_tensor("ids", ids, floating=False)
        if ids.numel() and (ids.min() < 0 or ids.max() >= emb.shape[0]):
            raise ValueError(f"ids has token ids from {ids.min().item()} to {ids.max().item()}; allowed: "
                             f"0 <= id < {emb.shape[0]} (the model's vocabulary)")
        return emb[ids.to(emb.device)]

    # ----------------------------------------------------------------- training
    def loss_terms(self, model, ids: torch.Tensor, generator: torch.Generator | None = None,
                   timesteps: torch.Tensor | None = None) -> LossTerms:
        """The three terms for a batch of token ids (B, L); t ~ U{0..T-1} unless ``timesteps`` is given."""
        check_tensor("ids", ids, floating=False)
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (batch, length), got {tuple(ids.shape)}")
        e = self.embed(model, ids)                                        # EMB(w), (B, L, d)
        B, dev = ids.shape[0], e.device
        eps_0 = torch.randn(e.shape, generator=generator).to(dev)
        x0 = e + self.sigma_0 * eps_0                                     # x_0 = EMB(w) + sigma_0 eps_0
        if timesteps is None:
            timesteps = torch.randint(0, self.num_train_timesteps, (B,), generator=generator)
        timesteps = timesteps.to(dev)
        noise = torch.randn(e.shape, generator=generator).to(dev)
        x_t = self.gaussian.add_noise(x0, noise, timesteps)              # sqrt(abar_t) x_0 + sqrt(1-abar_t) eps
        mse = ((model(x_t, timesteps) - x0) ** 2).mean(dim=(1, 2))        # ||f(x_t, t) - x_0||^2
        abar_T = self.gaussian.alphas_cumprod[-1].to(dev)
        prior = (abar_T * e ** 2).mean(dim=(1, 2))                        # ||sqrt(abar_T) EMB(w)||^2
        rounding = rounding_nll(model, x0, ids).mean(1)                   # -log p(w | x_0), logit -||x_0 - EMB(v)||^2
        return LossTerms(mse, prior, rounding)

    def loss(self, model, ids: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """mse + prior + rounding, per sequence (batch,)."""
        return self.loss_terms(model, ids, generator).total

    def noisy_word_vectors(self, model, ids: torch.Tensor, timesteps: torch.Tensor,
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw of x_t given the words: x_0 = EMB(w) + sigma_0 eps_0, then ``add_noise`` to ``timesteps``."""
        return self._draw(self.embed(model, ids), timesteps, generator)[1]

    def _draw(self, e: torch.Tensor, timesteps: torch.Tensor, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_0, x_t) for word vectors e: x_0 = e + sigma_0 eps_0, then x_t = add_noise(x_0, eps, t)."""
        x0 = e + self.sigma_0 * torch.randn(e.shape, generator=generator).to(e.device)
        x_t = self.gaussian.add_noise(x0, torch.randn(e.shape, generator=generator).to(e.device),
                                      timesteps.to(e.device))
        return x0, x_t

    def classifier_loss(self, classifier: nn.Module, model, ids: torch.Tensor, labels: torch.Tensor,
                        generator: torch.Generator | None = None) -> torch.Tensor:
        """Cross-entropy of a noisy-vector classifier, -log p(c | x_t, t), t ~ U{0..T-1}, per sequence.
        The word vectors come from ``model`` and are frozen (no gradient reaches them)."""
        check_tensor("labels", labels, floating=False)
        check_tensor("ids", ids, floating=False)
        n = getattr(getattr(classifier, "config", None), "num_classes", None)
        if labels.shape != (ids.shape[0],):
            raise ValueError(f"labels must have shape ({ids.shape[0]},), one per sequence, got {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or (n is not None and labels.max() >= n)):
            raise ValueError(f"labels run from {labels.min().item()} to {labels.max().item()}; allowed: "
                             f"0 <= label < {n} (the classifier's classes)")
        t = torch.randint(0, self.num_train_timesteps, (ids.shape[0],), generator=generator)
        with torch.no_grad():
            x_t = self.noisy_word_vectors(model, ids, t, generator)
        logits = classifier(x_t, t.to(x_t.device))
        return nn.functional.cross_entropy(logits, labels.to(logits.device), reduction="none")

    def _step_term(self, model, ids: torch.Tensor, e: torch.Tensor, t: torch.Tensor, generator):
        """For a fresh x_0 ~ q(x_0 | w) and x_t: (rounding + prior terms, the term of step t), per sequence.
        The step term is KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) for t >= 1, and for t = 0 the
        decoder minus the entropy of q(x_0 | w): ||x_0 - f||^2 / (2 sigma_0^2) - L d / 2."""
        B, L, d = e.shape
        dev, s0 = e.device, self.sigma_0
        t = t.to(dev)
        x0, x_t = self._draw(e, t, generator)
        f = model(x_t, t)
        rest = rounding_nll(model, x0, ids).sum(1)
        aT = self.gaussian.alphas_cumprod[-1].to(dev)                   # KL(q(x_T | x_0) || N(0, I))
        rest = rest + gaussian_kl(aT.sqrt() * x0, (1 - aT).expand_as(x0), torch.zeros_like(x0),
                                  torch.ones_like(x0)).sum(dim=(1, 2))
        mean_q, var = self.gaussian.posterior(x_t, x0, t.clamp(min=1))
        mean_p, _ = self.gaussian.posterior(x_t, f, t.clamp(min=1))
        kl = ((mean_q - mean_p) ** 2 / (2 * var.clamp(min=1e-20))).sum(dim=(1, 2))
        dec = ((x0 - f) ** 2).sum(dim=(1, 2)) / (2 * s0 ** 2) - L * d / 2
        return rest.float(), torch.where(t >= 1, kl, dec).float()

    @torch.no_grad()
    def step_terms(self, model, ids: torch.Tensor, timesteps, generator: torch.Generator | None = None) -> list[float]:
        """The bound's term of each step in ``timesteps`` (t = 0: decoder minus entropy; t >= 1: the KL),
        averaged over the sequences ``ids``: where the nats of ``nelbo`` come from."""
        check_tensor("ids", ids, floating=False)
        e = self.embed(model, ids)
        T = self.num_train_timesteps
        return [float(self._step_term(model, ids, e, torch.full((e.shape[0],), check_int("t", int(t), 0, T - 1)),
                                      generator)[1].mean()) for t in timesteps]

    @torch.no_grad()
    def nelbo(self, model, ids: torch.Tensor, *, generator: torch.Generator | None = None, n_samples: int = 16,
              exact_steps: int = 50) -> Estimate:
        """A Monte-Carlo upper bound on -log p(w) in nats per sequence: the Gaussian analogue of the NELBO.

        The model's p(w) = int p(w | x_0) p_theta(x_0) dx_0, with p_theta(x_0) the reverse chain whose last
        step is a Gaussian N(x_0; f(x_{t=0}, 0), sigma_0^2 I). With x_0 ~ q(x_0 | w) = N(EMB(w), sigma_0^2 I):

            -log p(w) <= E[ -log p(w | x_0) + KL(q(x_T | x_0) || N(0, I))
                            + sum_{t>=1} KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))
                            - log N(x_0; f(x_{t=0}, 0), sigma_0^2 I) ] - H[q(x_0 | w)]

        The first ``exact_steps`` terms (t = 0, the decoder, and the steps near the data, where the terms are
        largest and most variable) are computed one by one; the rest is estimated with ``n_samples``
        stratified t, times their number. ``stderr`` is the standard error of that Monte-Carlo part (treating
        the stratified draws as independent, which overstates it). The bound is for the model whose last
        step draws x_0 from N(f(x_{t=0}, 0), sigma_0^2 I); ``sample`` returns that Gaussian's mean instead.
        """
        check_tensor("ids", ids, floating=False)
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (batch, length), got {tuple(ids.shape)}")
        n_samples = check_int("n_samples", n_samples, low=2)
        T = self.num_train_timesteps
        E = check_int("exact_steps", exact_steps, low=0, high=T - 1)
        e = self.embed(model, ids)
        B = e.shape[0]
        head = torch.zeros(B, dtype=torch.float64)                  # float64 sums on the CPU (MPS has none)
        for t in range(E):
            head += self._step_term(model, ids, e, torch.full((B,), t), generator)[1].cpu()
        draws = torch.zeros(B, n_samples, dtype=torch.float64)
        offset = torch.rand(B, generator=generator)
        for k in range(n_samples):
            t = E + ((offset + k) / n_samples * (T - E)).long().clamp(max=T - 1 - E)   # one stratum each
            rest, step = self._step_term(model, ids, e, t, generator)
            draws[:, k] = (rest + (T - E) * step).cpu()
        return Estimate(head + draws.mean(1), draws.std(1) / n_samples ** 0.5)

    # ----------------------------------------------------------------- sampling
    sample_options = {
        "clamp": "snap the predicted x_0 to the nearest word vectors before each step (the clamping trick)",
        "fixed": "ids (L,) or (B, L), [MASK] where the model writes: the other words are kept (infilling)",
        "guidance": "a ClassifierGuidance applied after every step (plug-and-play control)",
        "method": "'ddpm' or 'ddim'",
        "eta": "DDIM's noise scale: 0 deterministic, 1 as much noise as DDPM",
        "timestep_spacing": "how the inference timesteps are chosen: 'leading', 'trailing' or 'quadratic'",
    }

    def sample(self, model, num_samples: int, length: int, num_steps: int = 200, *,
               generator: torch.Generator | None = None, method: str = "ddpm", eta: float = 0.0, clamp: bool = False,
               fixed: torch.Tensor | None = None, guidance: ClassifierGuidance | None = None,
               timestep_spacing: str = "leading") -> Trajectory:
        """A ``Trajectory`` of every x_t (B, L, d), x_T first, in ``num_steps`` reverse steps;
        ``round_to_words`` of the last state is the sample (token ids).

        - ``clamp``: snap the predicted x_0 to the nearest word vectors before each step;
        - ``fixed``: ids (L,) or (B, L), [MASK] (``mask_id``) where the model writes: the other positions
          are kept at their word vectors, noised to the current step (infilling);
        - ``guidance``: a ``ClassifierGuidance`` applied to every x_{t-1}.
        """
        emb = word_vectors(model)
        num_samples = check_int("num_samples", num_samples, low=1)
        length = check_int("length", length, low=1)
        T = self.num_train_timesteps
        num_steps = check_int("num_steps", num_steps, low=1, high=T)
        check_choice("method", method, METHODS)
        check_float("eta", eta, 0.0, 1.0)
        if not isinstance(clamp, bool):
            raise TypeError(f"clamp must be a bool, got {type(clamp).__name__} {clamp!r}")
        if guidance is not None and not isinstance(guidance, ClassifierGuidance):
            raise TypeError(f"guidance must be a ClassifierGuidance or None, got {type(guidance).__name__}")
        known = None
        if fixed is not None:
            check_tensor("fixed", fixed, floating=False)
            if fixed.shape not in ((length,), (num_samples, length)):
                raise ValueError(f"fixed must have shape ({length},) or ({num_samples}, {length}), "
                                 f"got {tuple(fixed.shape)}")
            fixed = fixed.cpu().expand(num_samples, length)
            known = fixed != self.mask_id
            fixed = torch.where(known, fixed, torch.zeros_like(fixed))
            known = (known, self.embed(model, fixed))
        timesteps = self.gaussian.inference_timesteps(num_steps, timestep_spacing).tolist()
        shape = (num_samples, length, emb.shape[1])
        return Trajectory(lambda traj: self._reverse(traj, model, shape, timesteps, method, eta, clamp, known,
                                                     guidance, generator))

    def _impose(self, x: torch.Tensor, known, timestep: int, generator) -> torch.Tensor:
        """Infilling: put the known positions back at EMB(w) noised to ``timestep`` (clean below 0)."""
        if known is None:
            return x
        mask, e = known
        mask = mask.to(x.device)[..., None]
        if timestep >= 0:
            t = torch.full((x.shape[0],), timestep, dtype=torch.long)
            e = self.gaussian.add_noise(e, torch.randn(e.shape, generator=generator).to(e.device), t)
        return torch.where(mask, e.to(x.dtype), x)

    def _reverse(self, traj, model, shape, timesteps, method, eta, clamp, known, guidance,
                 generator) -> Iterator[torch.Tensor]:
        dev = model_device(model)
        table = torch.cat([torch.ones(1), self.gaussian.alphas_cumprod])  # abar_{-1} = 1, then abar_t
        x = torch.randn(shape, generator=generator).to(dev)
        x = self._impose(x, known, timesteps[0], generator)
        yield x
        for t, s in zip(timesteps, timesteps[1:] + [-1]):
            x0_hat = model(x, torch.full((shape[0],), t, dtype=torch.long, device=dev))       # f(x_t, t)
            traj.network_calls += 1
            if clamp:
                x0_hat = clamp_to_words(model, x0_hat)                    # the clamping trick
            noise = torch.randn(shape, generator=generator).to(dev)
            x = self.gaussian.step(x0_hat, t, x, s, method=method, eta=eta, noise=noise)
            if guidance is not None:
                x = guidance.apply(x, s, float(table[s + 1]))
            x = self._impose(x, known, s, generator)
            yield x

    @torch.no_grad()
    def rounding_accuracy(self, model, ids: torch.Tensor, timesteps, seed: int = 0,
                          positions: str = "all") -> dict[str, list[float] | float]:
        """At each timestep, the share of words still recovered by nearest-neighbour rounding of the
        rescaled noisy vector x_t / sqrt(abar_t) ("noisy") and of the model's x_0 prediction ("model").

        ``positions="free"`` counts only the positions where the stories ``ids`` differ (not the template
        words that every story has at that place, nor a padding that every story has), so no word can be
        read from its position alone. "prior" is the share a guess that ignores the sentence gets on the
        counted words: the most common word at each position (the positional prior). Every timestep uses
        the same draws of the noise (``seed``), so only t changes along the curve."""
        check_tensor("ids", ids, floating=False)
        check_choice("positions", positions, ("all", "free"))
        out: dict[str, list[float] | float] = {"noisy": [], "model": []}
        dev = model_device(model)
        ids = ids.to(dev)
        guess = ids.mode(0).values                                        # the most common word per position
        counted = torch.ones_like(ids, dtype=torch.bool)
        if positions == "free":
            counted = (ids != ids[:1]).any(0).expand_as(ids)             # positions where the stories differ
        n = counted.sum()
        out["prior"] = float(((ids == guess) & counted).sum() / n)
        for t in timesteps:
            tt = torch.full((ids.shape[0],), int(t), dtype=torch.long)
            gen = torch.Generator().manual_seed(seed)                     # the same draws at every t
            x_t = self.noisy_word_vectors(model, ids, tt, gen)
            abar = float(self.gaussian.alphas_cumprod[int(t)])
            out["noisy"].append(float(((round_to_words(model, x_t / abar ** 0.5) == ids) & counted).sum() / n))
            out["model"].append(float(((round_to_words(model, model(x_t, tt.to(dev))) == ids) & counted).sum() / n))
        return out
