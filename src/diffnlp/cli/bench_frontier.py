"""``python -m diffnlp bench frontier``: lesson 05's measurements (speed against quality, the alternatives to
masking, self-correction and guidance), written to ``benchmarks/results/frontier.json`` and ``frontier.png``."""

from __future__ import annotations

import platform
import time

import torch

from ..runtime import device as best_device
from ..training.recipes import GUIDANCE_TARGET
from .report import RESULTS

ALTERNATIVES = {   # lesson 05: name -> (checkpoint, sampler configurations), all at the MDLM's training budget
    "MDLM (masking, NELBO)": ("stories-mdlm", {"ancestral K=32": {"num_steps": 32}, "ancestral K=8": {"num_steps": 8}}),
    # (Euler tau-leaping gives the same samples as Tweedie here: on the log-linear schedule the steps coincide)
    "SEDD (score entropy)": ("stories-sedd", {"Tweedie K=32": {"num_steps": 32}, "Tweedie K=8": {"num_steps": 8}}),
    "DFM (flow matching, kappa = t)": ("stories-dfm", {"Euler K=32": {"num_steps": 32}, "Euler K=8": {"num_steps": 8}}),
    "D3PM-uniform (T = 32)": ("stories-uniform", {"ancestral T=32": {}}),
}
REMASK_ETAS = (0.0, 0.02, 0.05, 0.1, 0.2)
CFG_TARGET = GUIDANCE_TARGET              # classifier-free guidance steers toward the same place
CFG_SCALES = (0.0, 1.0, 2.0, 4.0, 8.0)
# adaptive parallel decoding: (rule, value, at most this many steps a block or None[, temperature])
ADAPTIVE = (("threshold", 0.9, None), ("entropy", 0.5, None), ("entropy", 1.0, None), ("entropy", 2.0, None),
            ("entropy", 1.0, 2), ("entropy", 2.0, 2), ("entropy", 1.0, 2, 0.8), ("entropy", 1.0, 2, 0.6))
NUCLEUS = ((1, 0.95), (1, 0.9), (2, 0.95), (2, 0.93))                 # BD3 (steps a block, top_p)


def bench_frontier(n: int = 500) -> dict:
    """Lesson 05 on the story grammar, ``n`` samples per row:

    - speed against quality: AR with its KV cache, MDLM at K steps, block diffusion at K steps per block,
      adaptive parallel decoding (``ADAPTIVE``), the step-distilled student and ``FAST_DECODER``, all in one
      run with interleaved timings; batch-1 latency, batch-64 throughput, average network calls, validity,
      oracle NLL, distinct; the Pareto front and issue 13's goal for ``FAST_DECODER``; a plot (frontier.png);
    - the alternatives to masking at an equal training budget: bound on -log p (500 test stories) and samples;
    - self-correction: MDLM with ReMDM remasking at equal steps (2n samples per row);
    - classifier-free guidance toward ``CFG_TARGET`` at ``CFG_SCALES``: control success and validity.
    Runs on ``diffnlp.device()`` (a CUDA GPU where there is one) and records it."""
    from ..evaluation import frontier, lm_eval
    from ..evaluation.metrics import control_report, non_decreasing_within_ci
    from ..sampling.guidance import ClassifierFreeGuidance
    from ..training.pretrained import load_pretrained
    from ..training.recipes import story_data

    dev = best_device()
    grammar, tok, test_ids = story_data(split="test")
    L = test_ids.shape[1]

    def load(name):
        model, process, _, meta = load_pretrained(name)
        return model.to(dev), process, meta

    from ..frontier import FAST_DECODER, fast_decoder_name

    names = dict.fromkeys(("stories-ar", "stories-mdlm", "stories-bd3", "stories-bd3-distilled",
                           FAST_DECODER["checkpoint"]))                 # each loaded once
    ckpt = {name: load(name) for name in names}
    out = {"entropy": grammar.entropy(), "length": L, "n_samples": n, "device": str(dev),
           "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor() or "cpu",
           "checkpoints": {k: {"recipe": m["recipe"], "train_s": m["train_s"], "steps": m["steps"]}
                           for k, (_, _, m) in ckpt.items()}}
    fast = ckpt[FAST_DECODER["checkpoint"]]
    configs = frontier.decoders(ckpt["stories-ar"][:2], ckpt["stories-mdlm"][:2], ckpt["stories-bd3"][:2],
                                end_id=tok.pad_id, adaptive=ADAPTIVE, distilled=ckpt["stories-bd3-distilled"][:2],
                                distilled_steps=(2, 4), fast=(fast[0], fast[1], FAST_DECODER["sampler"]),
                                nucleus=NUCLEUS)
    out["speed_quality"] = frontier.speed_quality(configs, grammar, tok, n=n, length=L, reference=test_ids[:n])
    rows = out["speed_quality"]
    classic = {k: r for k, r in rows.items() if r["family"] in frontier.CLASSIC_FAMILIES}
    out["verdict"] = frontier.latency_verdict(classic)
    out["pareto_front"] = frontier.pareto_front(rows)
    out["fast_decoder"] = {"name": fast_decoder_name(), **FAST_DECODER,
                           "moonshot": frontier.moonshot(rows, fast_decoder_name(), grammar.entropy(), length=L)}
    print(f"  verdict (fixed-step decoders): {out['verdict']}", flush=True)
    print(f"  Pareto front (batch-1 ms, valid): {out['pareto_front']}", flush=True)
    for k, (holds, text) in out["fast_decoder"]["moonshot"].items():
        print(f"  {k}: {'-' if holds is None else 'yes' if holds else 'NO'}  {text}", flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = frontier.plot_speed_quality(out["speed_quality"])
    axes[0].figure.suptitle(f"Speed against quality on the story grammar ({dev}, {n} samples per point)")
    axes[0].figure.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    axes[0].figure.savefig(RESULTS / "frontier.png", dpi=110)
    plt.close(axes[0].figure)

    out["alternatives"] = {}
    for label, (name, samplers) in ALTERNATIVES.items():
        model, process, meta = ckpt[name] if name in ckpt else load(name)
        t0 = time.perf_counter()
        bound = lm_eval.nats_per_story(model, process, test_ids[:500], n_samples=32)
        row = {"checkpoint": name, "train_s": meta["train_s"], "steps": meta["steps"],
               "bound": float(bound.mean()), "bound_stderr": float(bound.std() / len(bound) ** 0.5),
               "bound_s": time.perf_counter() - t0, "samples": {}}
        for sname, kw in samplers.items():
            t0 = time.perf_counter()
            rep = lm_eval.sample_quality(grammar, tok, model, process, n=n, length=L, seed=1, **kw)
            row["samples"][sname] = {**rep.as_dict(), "sample_s": time.perf_counter() - t0}
            print(f"  {label} {sname}: {rep}", flush=True)
        print(f"  {label}: bound {row['bound']:.2f} +- {row['bound_stderr']:.2f} nats", flush=True)
        out["alternatives"][label] = row

    model, process, _ = ckpt["stories-mdlm"]
    out["remasking"] = {"n_samples": 2 * n, "rows": {}}
    for K in (16, 32):
        for eta in REMASK_ETAS:
            rep = lm_eval.sample_quality(grammar, tok, model, process, n=2 * n, length=L, seed=4, num_steps=K,
                                         remask=eta)
            out["remasking"]["rows"][f"K={K} eta={eta:g}"] = {"K": K, "eta": eta, **rep.as_dict(),
                                                               "valid_stderr": rep.valid_stderr}
            print(f"  remasking K={K} eta={eta:g}: {rep}", flush=True)

    model, process, meta = load("stories-mdlm-place")
    attribute, target = CFG_TARGET
    label = meta["values"].index(target)
    out["guidance"] = {"attribute": attribute, "target": target, "sampler": "ancestral K=32", "rows": {}}
    for w in CFG_SCALES:
        guided = ClassifierFreeGuidance.for_label(model, label, w)
        rep = control_report(grammar, lm_eval.generate(guided, process, n, L, num_steps=32, seed=2), attribute,
                             target, tok)
        out["guidance"]["rows"][f"w={w:g}"] = {"w": w, **rep.as_dict()}
        print(f"  guidance w={w:g}: {rep}", flush=True)
    rows = [r for r in out["guidance"]["rows"].values() if r["w"] in (0, 1, 2, 4)]
    out["guidance"]["non_decreasing_within_95ci"] = non_decreasing_within_ci([r["success"] for r in rows],
                                                                             [r["stderr"] for r in rows])
    return out
