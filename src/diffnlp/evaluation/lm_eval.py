"""Evaluate a language model of the stories, diffusion or autoregressive, the same way for both:
likelihood (NELBO or exact NLL per story, against the grammar's entropy) and samples (validity,
oracle NLL, diversity), plus sampling speed."""

from __future__ import annotations

import time

import torch

from .._checks import check_int, check_tensor
from ..base import check_options, model_device
from ..processes.embedding import round_to_words
from .metrics import LikelihoodReport, StoryReport, likelihood_report, story_report


def nats_per_story(model, process, ids: torch.Tensor, n_samples: int = 32, batch_size: int = 256,
                   seed: int = 0) -> torch.Tensor:
    """Per-story bound on -log p, in nats, shape (N,): the process's own ``nelbo`` (the process protocol),
    with ``n_samples`` stratified Monte-Carlo draws per story (MDLM's NELBO, SEDD's score-entropy bound,
    flow matching through MDLM's NELBO, D3PM's sum over steps), or the exact NLL (autoregressive)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    dev = model_device(model)
    for i in range(0, len(ids), batch_size):
        x = ids[i:i + batch_size].to(dev)
        out.append(process.nelbo(model, x, generator=gen, n_samples=n_samples).mean.float().cpu())
    return torch.cat(out)


def likelihood(name: str, model, process, grammar, ids: torch.Tensor, **kwargs) -> LikelihoodReport:
    """``nats_per_story`` averaged and set against the grammar's entropy H (excess = nats - H)."""
    return likelihood_report(name, nats_per_story(model, process, ids, **kwargs), grammar.entropy(), ids.shape[1])


def generate(model, process, n: int, length: int, num_steps: int | None = None, seed: int = 0,
             batch_size: int = 250, return_calls: bool = False, **options):
    """``n`` samples (N, length) of token ids from any text model of the course, in batches: the last state of
    ``process.sample(model, b, length, num_steps, generator=..., **options)`` (the process protocol).

    ``num_steps``: the sampler's steps (per block for block diffusion; None: the process's default, e.g.
    one per token for the autoregressive model). ``options`` are the process's ``sample_options`` (a
    TypeError names the ones it takes); a ``fixed`` of shape (n, length) is split over the batches.
    A sampler of word vectors (Diffusion-LM) ends in vectors: they are rounded to the nearest words.
    ``return_calls=True``: also the network calls each sample needed (N,), its trajectory's
    ``calls_per_sample`` where the sampler counts them (stories that end early, adaptive steps), else the
    batch's number of calls.
    """
    n = check_int("n", n, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    check_options(type(process).__name__, options, process.sample_options)
    gen = torch.Generator().manual_seed(check_int("seed", seed))
    fixed = options.pop("fixed", None)
    if fixed is not None:
        check_tensor("fixed", fixed, floating=False)
    steps = () if num_steps is None else (num_steps,)
    out, calls = [], []
    for i in range(0, n, batch_size):
        b = min(batch_size, n - i)
        if fixed is not None:
            options["fixed"] = fixed[i:i + b] if fixed.ndim == 2 else fixed
        traj = process.sample(model, b, length, *steps, generator=gen, **options)
        last = traj.run()
        if last.is_floating_point():                                 # word vectors -> the nearest words
            last = round_to_words(model, last)
        out.append(last.cpu())
        per = getattr(traj, "calls_per_sample", None)
        calls.append(per if per is not None else torch.full((b,), traj.network_calls))
    return (torch.cat(out), torch.cat(calls)) if return_calls else torch.cat(out)


def sample_quality(grammar, tokenizer, model, process, n: int = 500, length: int = 32, **kwargs) -> StoryReport:
    """``n`` samples from ``generate`` (its ``kwargs``) judged by the grammar: validity, oracle NLL, distinct."""
    return story_report(grammar, generate(model, process, n, length, **kwargs), tokenizer)


def ms_per_sample(model, process, batch: int, length: int = 32, num_steps: int | None = None,
                  repeats: int = 3, **options) -> float:
    """Wall-clock milliseconds per generated sequence at a batch size (median of ``repeats``)."""
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        generate(model, process, batch, length, num_steps=num_steps, seed=r, batch_size=batch, **options)
        times.append((time.perf_counter() - t0) * 1000 / batch)
    return sorted(times)[len(times) // 2]
