"""Evaluate a language model of the stories, diffusion or autoregressive, the same way for both:
likelihood (NELBO or exact NLL per story, against the grammar's entropy) and samples (validity,
oracle NLL, diversity), plus sampling speed."""

from __future__ import annotations

import time

import torch

from .._checks import check_int
from ..processes.autoregressive import Autoregressive
from ..processes.embedding import EmbeddingDiffusion
from ..processes.masked import MaskedDiffusion
from .metrics import LikelihoodReport, StoryReport, likelihood_report, story_report


def nats_per_story(model, process, ids: torch.Tensor, n_samples: int = 32, batch_size: int = 256,
                   seed: int = 0) -> torch.Tensor:
    """Per-story bound on -log p, in nats, shape (N,): each process's own ``nelbo`` (Monte Carlo with
    ``n_samples`` stratified draws; D3PM: one x_t per step), SEDD's score-entropy bound, MDLM's NELBO for
    flow matching (the same masking path and denoiser), or the exact NLL (autoregressive)."""
    gen = torch.Generator().manual_seed(seed)
    from ..base import model_device

    out = []
    dev = model_device(model)
    kind = type(process).__name__
    with torch.no_grad():
        for i in range(0, len(ids), batch_size):
            x = ids[i:i + batch_size].to(dev)
            if isinstance(process, Autoregressive):
                out.append(process.nll(model, x).cpu())
            elif kind == "D3PM":
                out.append(process.nelbo(model, x, generator=gen).float().cpu())
            else:
                p = process.masking if kind == "MaskedFlowMatching" else process
                out.append(p.nelbo(model, x, n_samples=n_samples, generator=gen).mean.float().cpu())
    return torch.cat(out)


def likelihood(name: str, model, process, grammar, ids: torch.Tensor, **kwargs) -> LikelihoodReport:
    """``nats_per_story`` averaged and set against the grammar's entropy H (excess = nats - H)."""
    return likelihood_report(name, nats_per_story(model, process, ids, **kwargs), grammar.entropy(), ids.shape[1])


# the keyword arguments each process's sampler takes through ``generate`` (beyond steps and strategy)
SAMPLER_OPTIONS = {"Autoregressive": ("end_id", "use_cache"), "MaskedDiffusion": ("cache", "remask", "fixed"),
                   "BlockDiffusion": ("cache", "end_id"), "ScoreEntropy": ("method",),
                   "MaskedFlowMatching": (), "D3PM": ()}


def _last(states):
    """The final state of a sampler's generator of states."""
    import collections

    return collections.deque(states, maxlen=1)[0]


def generate(model, process, n: int, length: int, num_steps: int | None = None, strategy: str = "ancestral",
             block_length: int | None = None, temperature: float = 1.0, seed: int = 0,
             batch_size: int = 250, **kwargs) -> torch.Tensor:
    """``n`` samples (N, length) from any text model of the course:

    - masked diffusion (MDLM) with ``num_steps`` steps, a strategy, and ``cache``, ``remask``, ``fixed``;
    - block diffusion with ``num_steps`` steps *per block* (``cache``, ``end_id``);
    - SEDD (``method``), discrete flow matching, with ``num_steps`` steps; D3PM with its T steps;
    - Diffusion-LM with ``num_steps`` DDPM steps (``clamp``, ``guidance`` ... passed on in ``kwargs``);
    - autoregressive (``num_steps`` and ``strategy`` are then ignored: one token per step; ``end_id`` stops early).
    """
    n = check_int("n", n, low=1)
    if isinstance(process, EmbeddingDiffusion):
        if strategy != "ancestral" or block_length is not None or temperature != 1.0:
            raise ValueError("strategy, block_length and temperature are masked-diffusion options; Diffusion-LM "
                             "takes num_steps, clamp, guidance, fixed, method and eta")
        return process.generate(model, n, length, batch_size=batch_size, seed=seed,
                                num_inference_steps=num_steps or 200, **kwargs)
    kind = type(process).__name__
    unknown = [k for k in kwargs if k not in SAMPLER_OPTIONS.get(kind, ())]
    if unknown:
        raise TypeError(f"unexpected arguments for {kind}: {', '.join(unknown)}; it takes "
                        f"{', '.join(SAMPLER_OPTIONS.get(kind, ())) or 'none'}")
    if kind != "MaskedDiffusion" and block_length is not None:
        raise ValueError(f"block_length={block_length} is an option of MDLM sampling, not of {kind}")
    if kind not in ("MaskedDiffusion", "Autoregressive") and temperature != 1.0:
        raise ValueError(f"temperature={temperature} is an option of MDLM and AR sampling, not of {kind}")
    if kind not in ("MaskedDiffusion", "BlockDiffusion", "Autoregressive") and strategy != "ancestral":
        # (AR ignores strategy and num_steps, so one call can loop over diffusion and AR models alike)
        raise ValueError(f"strategy={strategy!r} is an option of MDLM and block diffusion; {kind} has one sampler")
    if kind == "D3PM" and num_steps not in (None, process.num_timesteps):
        raise ValueError(f"num_steps={num_steps}: D3PM samples with its T={process.num_timesteps} steps")
    if kwargs.get("fixed") is not None:
        from .._checks import check_tensor

        check_tensor("fixed", kwargs["fixed"], floating=False)
    gen = torch.Generator().manual_seed(seed)
    fixed = kwargs.pop("fixed", None)
    K = num_steps or length
    out = []
    for i in range(0, n, batch_size):
        b = min(batch_size, n - i)
        if isinstance(process, Autoregressive):
            last = _last(process.sample(model, b, length, temperature=temperature, generator=gen, **kwargs))
        elif isinstance(process, MaskedDiffusion):
            f = fixed[i:i + b] if fixed is not None and fixed.ndim == 2 else fixed
            last = process.sample(model, b, length, K, strategy=strategy, block_length=block_length,
                                  temperature=temperature, generator=gen, fixed=f, **kwargs).run()
        elif kind == "D3PM":
            last = _last(process.sample(model, b, length, generator=gen))
        elif kind == "BlockDiffusion":
            last = _last(process.sample(model, b, length, K, strategy=strategy, generator=gen, **kwargs))
        else:                                                            # SEDD, flow matching
            last = _last(process.sample(model, b, length, K, generator=gen, **kwargs))
        out.append(last.cpu())
    return torch.cat(out)


def sample_quality(grammar, tokenizer, model, process, n: int = 500, length: int = 32, **kwargs) -> StoryReport:
    """``n`` samples from ``generate`` (its ``kwargs``) judged by the grammar: validity, oracle NLL, distinct."""
    return story_report(grammar, generate(model, process, n, length, **kwargs), tokenizer)


def ms_per_sample(model, process, batch: int, length: int = 32, num_steps: int | None = None,
                  strategy: str = "ancestral", repeats: int = 3, **kwargs) -> float:
    """Wall-clock milliseconds per generated sequence at a batch size (median of ``repeats``)."""
    times = []
    if not isinstance(process, EmbeddingDiffusion):
        kwargs["strategy"] = strategy
    for r in range(repeats):
        t0 = time.perf_counter()
        generate(model, process, batch, length, num_steps=num_steps, seed=r, batch_size=batch, **kwargs)
        times.append((time.perf_counter() - t0) * 1000 / batch)
    return sorted(times)[len(times) // 2]
