"""Lesson 05's measurements: speed against quality for autoregression, parallel (masked) diffusion and
block diffusion, and the helpers of the frontier lesson.

Gemini Diffusion's claim is about *latency*: a diffusion model decodes K << L positions' worth of network
calls, each over the whole sequence, where an autoregressive model makes L calls of one token each (with a
KV cache). Which one is faster depends on the batch: at batch 1 the calls are small and their number
dominates; at batch 64 the arithmetic per token dominates, and the KV cache makes AR's calls cheap.

    rows = speed_quality(decoders(ar, mdlm, bd3), grammar, tokenizer, n=500)
    plot_speed_quality(rows)
"""

from __future__ import annotations

import re
import statistics
import time

import torch
from torch import nn

from .._checks import check_int
from ..runtime import threads as runtime_threads
from . import lm_eval
from .metrics import story_report


class CallCounter(nn.Module):
    """A network wrapped to count its calls and the positions each call processes: the sequential work of a
    decoder (``calls``) and its total work per sequence (``positions``). Called like the network itself."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if not isinstance(model, nn.Module) or not hasattr(model, "config"):
            raise TypeError(f"model must be a course network (an nn.Module with a config), got {type(model).__name__}")
        self.model, self.config = model, model.config
        self.calls = self.positions = 0

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        self.calls += 1
        self.positions += x.shape[1]
        return self.model(x, *args, **kwargs)


def decoders(ar=None, mdlm=None, bd3=None, end_id: int = 0, mdlm_steps=(4, 8, 16, 32),
             bd3_steps=(1, 2, 4, 8), bd3_strategies=("ancestral", "confidence"), adaptive=(),
             distilled=None, distilled_steps=(2,), fast=None, nucleus=()) -> dict:
    """The configurations of lesson 05's table: ``name -> (model, process, sampler kwargs, family)``.

    ``ar``, ``mdlm``, ``bd3``, ``distilled``: ``(model, process)`` pairs (any may be None). AR uses its KV
    cache and stops when every story has ended (``end_id`` = [PAD]); MDLM uses K steps ("ancestral" with the
    skip-when-nothing-changed cache, and LLaDA's "confidence"); block diffusion K steps per block with its
    KV cache, stopping at the end of a story, with ancestral or confidence steps inside a block.
    ``adaptive``: (rule, value, cap[, temperature]) tuples ("threshold", tau, cap) or ("entropy", gamma, cap),
    for MDLM and inside BD3's blocks (``kernels.adaptive_counts``; cap: at most this many steps a block for
    BD3, None for none; a temperature other than 1, BD3 only, sharpens the draws); ``distilled``: a
    step-distilled BD3 student at ``distilled_steps`` ancestral steps per block;
    ``fast``: ``(model, process, options)`` of ``diffnlp.frontier.FAST_DECODER``; ``nucleus``: (steps per block,
    top_p) pairs, BD3's ancestral steps with nucleus sampling."""
    out = {}
    if ar is not None:
        out["AR (KV cache)"] = (*ar, {"end_id": end_id}, "autoregressive")
    if mdlm is not None:
        for K in mdlm_steps:
            out[f"MDLM ancestral K={K}"] = (*mdlm, {"num_steps": K, "reuse_unchanged": True}, "MDLM ancestral")
        for K in mdlm_steps:
            out[f"MDLM confidence K={K}"] = (*mdlm, {"num_steps": K, "strategy": "confidence"}, "MDLM confidence")
    def n_blocks(pair) -> int:
        return pair[0].config.max_len // pair[0].config.block_length

    if bd3 is not None:
        blocks = n_blocks(bd3)
        for strategy in bd3_strategies:
            for k in bd3_steps:
                name = f"BD3 {'' if strategy == 'ancestral' else strategy + ' '}{k}/block (K={k * blocks})"
                out[name] = (*bd3, {"num_steps": k, "kv_cache": True, "end_id": end_id, "strategy": strategy},
                             f"block diffusion {strategy}")
    for rule, value, cap, *temp in adaptive:
        option = {"threshold": "threshold", "entropy": "entropy_budget"}[rule]
        T = temp[0] if temp else 1.0
        if mdlm is not None and cap is None and T == 1.0:
            out[f"MDLM {rule} {value:g}"] = (*mdlm, {"strategy": rule, option: value}, "MDLM adaptive")
        if bd3 is not None:
            capped = {} if cap is None else {"num_steps": cap}
            name = f"BD3 {rule} {value:g}" + ("" if cap is None else f" (<= {cap}/block") + (
                "" if T == 1.0 else f", T={T:g}") + ("" if cap is None else ")")
            out[name] = (*bd3, {"strategy": rule, option: value, "kv_cache": True, "end_id": end_id, **capped,
                                **({} if T == 1.0 else {"temperature": T})}, "block diffusion adaptive")
    if distilled is not None:
        for k in distilled_steps:
            out[f"BD3 distilled {k}/block (K={k * n_blocks(distilled)})"] = (
                *distilled, {"num_steps": k, "kv_cache": True, "end_id": end_id}, "block diffusion distilled")
    if bd3 is not None:
        for k, p in nucleus:
            out[f"BD3 {k}/block top-p {p:g} (K={k * n_blocks(bd3)})"] = (
                *bd3, {"num_steps": k, "top_p": p, "kv_cache": True, "end_id": end_id}, "block diffusion nucleus")
    if fast is not None:
        from ..frontier import fast_decoder_name

        out[fast_decoder_name()] = (fast[0], fast[1], {**fast[2], "end_id": end_id}, "fast decoder")
    return out


def pareto_front(rows: dict, cost: str = "ms_batch1", quality: str = "valid") -> list[str]:
    """The configurations no other one beats on both axes (lower ``cost``, higher ``quality``), cheapest
    first: r is on the front iff no r' has cost' <= cost and quality' >= quality with one strict."""
    names = [k for k, r in rows.items() if not any(
        o[cost] <= r[cost] and o[quality] >= r[quality] and (o[cost] < r[cost] or o[quality] > r[quality])
        for j, o in rows.items() if j != k)]
    return sorted(names, key=lambda k: rows[k][cost])


def latency(model, process, batch: int, length: int = 32, repeats: int = 5, **kwargs) -> float:
    """Milliseconds per story at a batch size: the median over ``repeats`` runs (one warm-up run first)."""
    check_int("batch", batch, low=1)
    lm_eval.generate(model, process, batch, length, seed=999, batch_size=batch, **kwargs)        # warm-up
    return lm_eval.ms_per_sample(model, process, batch, length, repeats=repeats, **kwargs)


def latencies_round_robin(configs: dict, batch: int, length: int = 32, repeats: int = 5) -> dict:
    """Milliseconds per story at a batch size for every configuration, timed **round-robin**: one warm-up
    run of each, then ``repeats`` rounds in which every decoder runs once, in turn. A burst of load (another
    process, a notebook beside this one) then slows every decoder alike, so their *ratios* survive it, where
    timing one decoder after another would charge the burst to whichever ran then.
    Returns {name: [ms per story of each round]}."""
    check_int("batch", batch, low=1)
    check_int("repeats", repeats, low=1)
    for model, process, kw, _ in configs.values():
        lm_eval.generate(model, process, batch, length, seed=999, batch_size=batch, **kw)       # warm-up
    times = {name: [] for name in configs}
    for r in range(repeats):
        for name, (model, process, kw, _) in configs.items():
            t0 = time.perf_counter()
            lm_eval.generate(model, process, batch, length, seed=r, batch_size=batch, **kw)
            times[name].append((time.perf_counter() - t0) * 1000 / batch)
    return times


def word_coverage(tokenizer, samples: torch.Tensor, reference: torch.Tensor) -> float:
    """The share of the words of ``reference`` stories (N, L) that also appear somewhere in ``samples``: a decoder
    that never writes a rare word (or an optional one, like "very") scores below 1, whatever its validity."""
    ref = set(reference.unique().tolist()) - {tokenizer.pad_id}
    return len(ref & set(samples.unique().tolist())) / max(len(ref), 1)


def speed_quality(configs: dict, grammar, tokenizer, n: int = 500, length: int = 32, repeats_b1: int = 15,
                  repeats_b64: int = 3, seed: int = 1, progress: bool = True, threads: int = 1,
                  reference: torch.Tensor | None = None) -> dict:
    """For each configuration: latency per story at batch 1 (ms), throughput at batch 64 (tokens/s, 32
    positions per story, padding included), the quality of ``n`` samples (valid share, oracle NLL of the
    valid ones, distinct share) and the average network calls a story needed (``calls``: those it would
    make alone, ``Trajectory.calls_per_sample``); with ``reference`` (n data stories), ``word_coverage``. The
    timings are the medians of ``latencies_round_robin`` (all decoders interleaved); ``ms_batch1_runs`` keeps
    every batch-1 run. Everything runs on ``threads`` CPU threads (``runtime.threads``: one by default, which a
    busy core beside it cannot stall)."""
    rows = {}
    with runtime_threads(threads):
        for name, (model, process, kw, family) in configs.items():
            t0 = time.perf_counter()
            x, calls = lm_eval.generate(model, process, n, length, seed=seed, return_calls=True, **kw)
            rep = story_report(grammar, x, tokenizer)
            rows[name] = {"family": family, **rep.as_dict(), "valid_stderr": rep.valid_stderr,
                          "calls": float(calls.double().mean()), "sample_s": time.perf_counter() - t0,
                          "threads": threads}
            if reference is not None:
                rows[name]["word_coverage"] = word_coverage(tokenizer, x, reference)
        b1 = latencies_round_robin(configs, 1, length, repeats_b1)
        b64 = latencies_round_robin(configs, 64, length, repeats_b64)
    for name, row in rows.items():
        ms1, ms64 = statistics.median(b1[name]), statistics.median(b64[name])
        row.update(ms_batch1=ms1, ms_per_story_batch64=ms64, tokens_per_s_batch64=1000 * length / ms64,
                   ms_batch1_runs=b1[name])
        if progress:
            cover = f"  words {row['word_coverage']:4.0%}" if "word_coverage" in row else ""
            print(f"  {name:30s} calls {row['calls']:5.1f}{cover}  valid {row['valid']:6.1%}  oracle NLL "
                  f"{row['oracle_nll']:6.2f}  distinct "
                  f"{row['distinct']:6.1%}  batch 1: {ms1:6.1f} ms/story  batch 64: {1000 * length / ms64:8.0f} "
                  "tokens/s", flush=True)
    return rows


def recorded(name: str = "frontier") -> dict:
    """The benchmark ``python -m diffnlp bench NAME`` recorded in ``benchmarks/results/NAME.json`` of this
    repository (with its date and machine), for a lesson to show next to its own small live run."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no recorded benchmark {name!r} at {path}: run `python -m diffnlp bench {name}`")
    return json.loads(path.read_text())


def latency_verdict(rows: dict, baseline: str = "AR (KV cache)", within: float = 0.05, length: int = 32) -> dict:
    """The fastest batch-1 configuration whose validity is within ``within`` of the baseline's, and its
    speed-up (baseline ms / its ms); also the best batch-64 throughput among them. ``at_quarter``: every
    decoder with K = length / 4 steps in all, with its speed-up at batch 1, its validity gap to the baseline
    (points) and its throughput ratio at batch 64."""
    from .._checks import check_choice, check_float

    check_choice("baseline", baseline, rows)
    check_float("within", within, 0.0, 1.0)
    base = rows[baseline]
    quarter = {k: {"speedup_batch1": base["ms_batch1"] / r["ms_batch1"], "valid_gap": base["valid"] - r["valid"],
                   "throughput_ratio_batch64": r["tokens_per_s_batch64"] / base["tokens_per_s_batch64"]}
               for k, r in rows.items() if re.search(rf"K={length // 4}\b", k)}
    close = {k: r for k, r in rows.items() if k != baseline and r["valid"] >= base["valid"] - within}
    out = {"baseline": baseline, "baseline_valid": base["valid"], "baseline_ms_batch1": base["ms_batch1"],
           "baseline_tokens_per_s_batch64": base["tokens_per_s_batch64"], "within": within, "at_quarter": quarter}
    if not close:
        return {**out, "fastest_within": None, "speedup_batch1": None, "throughput_ratio_batch64": None}
    best = min(close, key=lambda k: close[k]["ms_batch1"])
    fastest = max(close, key=lambda k: close[k]["tokens_per_s_batch64"])
    return {**out, "fastest_within": best, "speedup_batch1": base["ms_batch1"] / close[best]["ms_batch1"],
            "highest_throughput_within": fastest,
            "throughput_ratio_batch64": close[fastest]["tokens_per_s_batch64"] / base["tokens_per_s_batch64"]}


def speed_claims(rows: dict, baseline: str = "AR (KV cache)", length: int = 32) -> dict:
    """The claims lesson 05's prose makes about speed against quality, each computed from ``rows`` (of
    ``speed_quality`` or of the recorded benchmark): {claim: (holds, the sentence with its numbers)}.

    - ``fast_only_when_worse``: MDLM (ancestral) at K = L/4 steps is faster than AR at batch 1, and its
      validity is more than 20 points below AR's (more than 4 standard errors at 200 samples);
    - ``no_2x_at_quality``: no decoder within 5 points of AR's validity is 2x faster than AR at batch 1;
    - ``ar_wins_batch64_at_quality``: every decoder within 10 % of AR's batch-64 throughput (or above it) is
      at least 10 points less valid than AR;
    - ``blocks_beat_mdlm_at_equal_calls``: block diffusion (ancestral) at K = L/4 is more valid than MDLM at
      K = L/4, by more than 3 standard errors of the difference;
    - ``mdlm_cost_grows_with_K``: MDLM's batch-1 latency grows with K (a sanity check of the timing)."""
    from .._checks import check_choice

    check_choice("baseline", baseline, rows)
    base = rows[baseline]
    q = length // 4
    mdlm = {int(k.split("K=")[1]): r for k, r in rows.items() if k.startswith("MDLM ancestral K=")}
    bd3 = next((r for k, r in rows.items() if k.startswith("BD3 ") and "confidence" not in k and f"K={q})" in k),
               None)
    if q not in mdlm or bd3 is None:
        raise ValueError(f"rows must hold 'MDLM ancestral K={q}' and an ancestral BD3 row at K={q}; got {list(rows)}")
    m = mdlm[q]
    out = {}
    speedup = base["ms_batch1"] / m["ms_batch1"]
    gap = base["valid"] - m["valid"]
    out["fast_only_when_worse"] = (speedup > 1 and gap > 0.20,
                                   f"MDLM at K = {q} is {speedup:.2f}x AR's speed at batch 1, and "
                                   f"{100 * gap:.1f} points less valid ({m['valid']:.1%} against {base['valid']:.1%})")
    close = {k: base["ms_batch1"] / r["ms_batch1"] for k, r in rows.items()
             if k != baseline and r["valid"] >= base["valid"] - 0.05}
    best = max(close, key=close.get) if close else None
    out["no_2x_at_quality"] = (best is None or close[best] < 2,
                               "no decoder is within 5 points of AR's validity" if best is None else
                               f"the fastest decoder within 5 points of AR's validity, {best}, runs at "
                               f"{close[best]:.2f}x AR's speed at batch 1")
    fast = {k: r for k, r in rows.items()
            if k != baseline and r["tokens_per_s_batch64"] >= 0.9 * base["tokens_per_s_batch64"]}
    worst_gap = min((base["valid"] - r["valid"] for r in fast.values()), default=None)
    out["ar_wins_batch64_at_quality"] = (
        worst_gap is None or worst_gap >= 0.10,
        f"at batch 64, {len(fast)} decoder(s) reach 90 % of AR's {base['tokens_per_s_batch64']:.0f} tokens/s"
        + ("" if worst_gap is None else f", the most valid of them {100 * worst_gap:.1f} points below AR"))
    se = (bd3["valid_stderr"] ** 2 + m["valid_stderr"] ** 2) ** 0.5
    diff = bd3["valid"] - m["valid"]
    out["blocks_beat_mdlm_at_equal_calls"] = (
        diff > 3 * se, f"at K = {q}, block diffusion is {100 * diff:.1f} ± {100 * se:.1f} points more valid than "
                       f"MDLM ({bd3['valid']:.1%} against {m['valid']:.1%})")
    ks = sorted(mdlm)
    ms = [mdlm[k]["ms_batch1"] for k in ks]
    out["mdlm_cost_grows_with_K"] = (all(a < b for a, b in zip(ms, ms[1:])),
                                     "MDLM's batch-1 ms per story at K = " + ", ".join(map(str, ks)) + ": "
                                     + ", ".join(f"{x:.1f}" for x in ms))
    return out


# the fixed-step decoders of lesson 05's first sections (``speed_claims``, ``latency_verdict``)
CLASSIC_FAMILIES = ("autoregressive", "MDLM ancestral", "MDLM confidence", "block diffusion ancestral",
                    "block diffusion confidence")

FAMILY_STYLE = {"autoregressive": ("#222222", "*"), "MDLM ancestral": ("#1f77b4", "o"),
                "MDLM confidence": ("#9467bd", "s"), "MDLM adaptive": ("#17becf", "v"),
                "block diffusion ancestral": ("#e8743b", "D"), "block diffusion confidence": ("#2ca02c", "^"),
                "block diffusion adaptive": ("#d62728", "P"), "block diffusion distilled": ("#8c564b", "X"),
                "block diffusion nucleus": ("#bcbd22", "h"),
                "fast decoder": ("#ff1493", "*")}


def plot_speed_quality(rows: dict, axes=None):
    """Validity against milliseconds per story at batch 1 (left: lower is better; the dashed line is the Pareto
    front) and against tokens per second at batch 64 (right: higher is better), one line per family; each
    point is labelled with the average network calls a story needed (its number of steps K where the rows
    do not record calls)."""
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    panels = (("ms_batch1", "milliseconds per story at batch 1 (log scale)", "batch 1: latency (left is better)"),
              ("tokens_per_s_batch64", "tokens per second at batch 64 (log scale)",
               "batch 64: throughput (right is better)"))
    for ax, (key, xlabel, title) in zip(axes, panels):
        for family, (color, marker) in FAMILY_STYLE.items():
            pts = sorted((r[key], r["valid"], name) for name, r in rows.items() if r["family"] == family)
            if not pts:
                continue
            sweep = "adaptive" not in family and family != "fast decoder"    # a line through K = 4, 8, ...
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker=marker, color=color, label=family,
                    ms=7 if marker != "*" else 12, ls="-" if sweep else "none")
            for x, y, name in pts:
                calls = rows[name].get("calls")
                label = f"{calls:.1f}" if calls is not None else name.split("K=")[1].rstrip(")") if "K=" in name else ""
                ax.annotate(label, (x, 100 * y), textcoords="offset points", xytext=(4, -10), fontsize=7,
                            color=color)
        if key == "ms_batch1" and all("ms_batch1" in r for r in rows.values()):
            front = pareto_front(rows)
            ax.step([rows[k][key] for k in front], [100 * rows[k]["valid"] for k in front], where="post",
                    color="0.4", ls="--", lw=1, zorder=0, label="Pareto front")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))   # 10, 20, not 2 x 10^1
        ax.xaxis.set_minor_formatter(ticker.FuncFormatter(
            lambda v, _: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("valid stories (%)")
    axes[0].legend(fontsize=8, loc="lower right")
    return axes


def moonshot(rows: dict, fast: str, entropy: float, baseline: str = "AR (KV cache)", length: int = 32) -> dict:
    """Issue 13's goal for the course's fast decoder ``fast`` against ``baseline``, each criterion computed
    from ``rows`` (one run of ``speed_quality``): {criterion: (holds, the figure)}.

    - ``calls``: at most L/4 network calls per story on average;
    - ``validity``: valid share at least the baseline's minus 2 points;
    - ``latency``: batch-1 latency at least 2x lower than the baseline's;
    - ``no_collapse``: the oracle NLL of its valid samples within 1 nat of the grammar's entropy H;
    - ``distinct``: at least 99 % of its samples distinct.
    ``throughput_ratio_batch64`` (reported, not a criterion): its batch-64 tokens/s over the baseline's."""
    from .._checks import check_choice

    check_choice("fast", fast, rows)
    check_choice("baseline", baseline, rows)
    f, b = rows[fast], rows[baseline]
    speedup = b["ms_batch1"] / f["ms_batch1"]
    out = {
        "calls": (f["calls"] <= length / 4, f"{f['calls']:.2f} network calls per story (at most {length // 4})"),
        "validity": (f["valid"] >= b["valid"] - 0.02, f"{f['valid']:.1%} valid against AR's {b['valid']:.1%} "
                                                      f"({100 * (f['valid'] - b['valid']):+.1f} points; at least -2)"),
        "latency": (speedup >= 2, f"{f['ms_batch1']:.1f} ms per story at batch 1 against AR's {b['ms_batch1']:.1f}: "
                                  f"{speedup:.2f}x faster (at least 2x)"),
        "no_collapse": (abs(f["oracle_nll"] - entropy) <= 1, f"oracle NLL of the valid samples {f['oracle_nll']:.2f} "
                                                             f"nats against H = {entropy:.2f} (within 1)"),
        "distinct": (f["distinct"] >= 0.99, f"{f['distinct']:.1%} distinct (at least 99 %)"),
    }
    ratio = f["tokens_per_s_batch64"] / b["tokens_per_s_batch64"]
    out["throughput_ratio_batch64"] = (None, f"batch 64: {f['tokens_per_s_batch64']:.0f} tokens/s against AR's "
                                             f"{b['tokens_per_s_batch64']:.0f} ({ratio:.2f}x)")
    return out
