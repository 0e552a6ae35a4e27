"""Evaluate a language model of the stories, diffusion or autoregressive, the same way for both:
likelihood (NELBO or exact NLL per story, against the grammar's entropy) and samples (validity,
oracle NLL, diversity), plus sampling speed."""

from __future__ import annotations

import time

import torch

from ._checks import check_int
from .autoregressive import Autoregressive
from .discrete import MaskedDiffusion
from .embedding import EmbeddingDiffusion
from .metrics import LikelihoodReport, StoryReport, likelihood_report, story_report


def nats_per_story(model, process, ids: torch.Tensor, n_samples: int = 32, batch_size: int = 256,
                   seed: int = 0) -> torch.Tensor:
    """Per-story NELBO (masked diffusion, or its Gaussian analogue for Diffusion-LM: Monte Carlo with
    ``n_samples`` stratified times) or exact NLL (autoregressive), in nats, shape (N,)."""
    gen = torch.Generator().manual_seed(seed)
    from .discrete import _model_device

    out = []
    dev = _model_device(model)
    with torch.no_grad():
        for i in range(0, len(ids), batch_size):
            x = ids[i:i + batch_size].to(dev)
            if isinstance(process, (MaskedDiffusion, EmbeddingDiffusion)):
                out.append(process.nelbo(model, x, n_samples=n_samples, generator=gen).mean.float().cpu())
            else:
                out.append(process.nll(model, x).cpu())
    return torch.cat(out)


def likelihood(name: str, model, process, grammar, ids: torch.Tensor, **kwargs) -> LikelihoodReport:
    return likelihood_report(name, nats_per_story(model, process, ids, **kwargs), grammar.entropy(), ids.shape[1])


def generate(model, process, n: int, length: int, num_steps: int | None = None, strategy: str = "ancestral",
             block_length: int | None = None, temperature: float = 1.0, seed: int = 0,
             batch_size: int = 250, **kwargs) -> torch.Tensor:
    """``n`` samples (N, length): masked diffusion with ``num_steps`` steps and a strategy, Diffusion-LM
    with ``num_steps`` DDPM steps (``clamp``, ``guidance`` ... passed on in ``kwargs``), or autoregressive
    (``num_steps`` is then ignored: one token per step)."""
    n = check_int("n", n, low=1)
    if isinstance(process, EmbeddingDiffusion):
        if strategy != "ancestral" or block_length is not None or temperature != 1.0:
            raise ValueError("strategy, block_length and temperature are masked-diffusion options; Diffusion-LM "
                             "takes num_steps, clamp, guidance, fixed, method and eta")
        return process.generate(model, n, length, batch_size=batch_size, seed=seed,
                                num_inference_steps=num_steps or 200, **kwargs)
    if kwargs:
        raise TypeError(f"unexpected arguments for {type(process).__name__}: {', '.join(kwargs)}")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch_size):
        b = min(batch_size, n - i)
        if isinstance(process, Autoregressive):
            *_, last = process.sample(model, b, length, temperature=temperature, generator=gen)
        else:
            last = process.sample(model, b, length, num_steps or length, strategy=strategy,
                                  block_length=block_length, temperature=temperature, generator=gen).run()
        out.append(last.cpu())
    return torch.cat(out)


def sample_quality(grammar, tokenizer, model, process, n: int = 500, length: int = 32, **kwargs) -> StoryReport:
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
