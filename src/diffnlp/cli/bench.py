"""Benchmarks: scripts that measure and write results, never tests that assert timings.

``python -m diffnlp bench [widgets|points|digits|lm|embedding|notebooks|all]`` writes
``benchmarks/results/<name>.json`` and rewrites ``benchmarks/results/README.md`` (a Markdown
table of every result file present).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import torch

from ..evaluation.metrics import DigitsJudge, story_report, swd_mean
from ..runtime import device as best_device
from ..training.recipes import GUIDANCE_TARGET
from .bench_frontier import bench_frontier
from .bench_real_text import bench_real_text
from .report import RESULTS, write_markdown


def _machine() -> dict:
    import os

    return {"python": platform.python_version(), "torch": torch.__version__, "device": str(best_device()),
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "platform": platform.platform()}


def _write(name: str, result: dict, out: Path = RESULTS) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "machine": _machine(), "date": time.strftime("%Y-%m-%d %H:%M"), **result}
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    write_markdown(out)
    return path


def bench_widgets(repeats: int = 40) -> dict:
    """Median slider-callback latency, figure draw and PNG encoding included."""
    from ..course.widgets.points import NoisingExplorer, TrajectoryPlayer

    rows = {}
    for kind in ("points", "digits"):
        e = NoisingExplorer(kind)
        e.latencies.clear()
        for i in range(repeats):
            e.slider.value = (i * 997) % 1000
        rows[f"NoisingExplorer({kind}) slider"] = e.latencies
        e.latencies = []
        for s in ["cosine", "sqrt", "linear"] * 3:
            e.dropdown.value = s
        rows[f"NoisingExplorer({kind}) schedule"] = e.latencies
    traj = [torch.randn(2000, 2) * (1 - i / 100) for i in range(101)]
    p = TrajectoryPlayer(traj)
    p.latencies.clear()
    for i in range(repeats):
        p.slider.value = (i * 37) % 101
    rows["TrajectoryPlayer(points, 2000) frame"] = p.latencies
    from ..course.widgets.text import TextNoisingExplorer, UnmaskingPlayer
    from ..training.pretrained import load_pretrained

    t = TextNoisingExplorer()
    t.latencies.clear()
    for i in range(repeats):
        t.slider.value = (i * 37 % 101) / 100
    rows["TextNoisingExplorer slider"] = t.latencies
    model, process, tok, _ = load_pretrained("stories-mdlm")
    u = UnmaskingPlayer(model, process, tok, num_steps=32)
    u.latencies.clear()
    for i in range(repeats):
        u.slider.value = (i * 7) % 33
    rows["UnmaskingPlayer frame"] = u.latencies
    u.latencies = []
    for strategy in ["ancestral (MDLM)", "confidence, blocks of 8", "random order", "confidence (LLaDA)",
                     "ancestral + remasking (ReMDM, eta = 0.1)"] * 2:
        u.strategy.value = strategy
    rows["UnmaskingPlayer new strategy (runs the sampler, 32 steps)"] = u.latencies
    from ..course.widgets.embedding import EmbeddingNoisingExplorer

    model, process, tok, _ = load_pretrained("stories-diffusion-lm")
    e = EmbeddingNoisingExplorer(model, process, tok)
    e.latencies.clear()
    for i in range(repeats):
        e.slider.value = (i * 997) % 1000
    rows["EmbeddingNoisingExplorer slider"] = e.latencies
    e.latencies = []
    for _ in range(10):
        e.clamp.value = not e.clamp.value
    rows["EmbeddingNoisingExplorer clamp toggle"] = e.latencies
    table = {k: {"median_ms": 1000 * statistics.median(v), "max_ms": 1000 * max(v), "n": len(v)}
             for k, v in rows.items()}
    return {"callbacks": table}


def bench_points(recipes=("spiral", "moons", "ring"), n: int = 5000) -> dict:
    """Train the 2-D recipes (lesson 01 uses "spiral") and measure each one's SWD (5000 points,
    512 projections, 5 seeds) against the floor, for DDPM (1000 steps) and DDIM (50 steps, eta = 0)."""
    return {"clouds": {r: _bench_cloud(r, n) for r in recipes}}


def _bench_cloud(recipe: str, n: int) -> dict:
    from ..data.toy2d import sample_points
    from ..training.recipes import RECIPES, train_recipe

    r = RECIPES[recipe]
    t0 = time.perf_counter()
    model, diffusion, history = train_recipe(recipe)
    train_s = time.perf_counter() - t0
    test, fresh = sample_points(r.data, n, seed=1), sample_points(r.data, n, seed=2)
    floor = swd_mean(test, fresh)
    rows = {}
    for label, kw in [("DDPM 1000 steps", {"method": "ddpm"}),
                      ("DDIM 50 steps", {"method": "ddim", "num_inference_steps": 50}),
                      ("DDIM 50 steps, quadratic spacing", {"method": "ddim", "num_inference_steps": 50,
                                                             "timestep_spacing": "quadratic"}),
                      ("DDIM 1000 steps", {"method": "ddim"})]:
        t0 = time.perf_counter()
        x = diffusion.sample(model, (n, 2), generator=torch.Generator().manual_seed(1), **kw).run()
        rows[label] = {"swd": swd_mean(x, test), "sample_s": time.perf_counter() - t0}
        rows[label]["ratio_to_floor"] = rows[label]["swd"] / floor
    ddpm = rows["DDPM 1000 steps"]["swd"]
    return {"recipe": r.describe(), "train_s": train_s, "final_loss": statistics.mean(history[-200:]),
            "floor": floor, "samplers": rows,
            "ddim50_over_ddpm1000": rows["DDIM 50 steps"]["swd"] / ddpm,
            "pass_swd_le_1.5x_floor": ddpm <= 1.5 * floor,
            "pass_ddim50_le_1.1x_ddpm1000": rows["DDIM 50 steps"]["swd"] <= 1.1 * ddpm}


def bench_digits(n: int = 1000) -> dict:
    """Train the lesson-02 digits recipe; judge n samples (DDPM 1000 and DDIM 100 steps)."""
    from ..training.recipes import RECIPES, train_recipe

    t0 = time.perf_counter()
    model, diffusion, history = train_recipe("digits")
    train_s = time.perf_counter() - t0
    judge = DigitsJudge()
    rows = {}
    for label, kw in [("DDIM 100 steps", {"method": "ddim", "num_inference_steps": 100}),
                      ("DDPM 1000 steps", {"method": "ddpm"})]:
        t0 = time.perf_counter()
        x = diffusion.sample(model, (n, 1, 8, 8), generator=torch.Generator().manual_seed(0), **kw).run()
        rep = judge.judge(x)
        rows[label] = {"sample_s": time.perf_counter() - t0, "confidence": rep.confidence,
                       "relative_confidence": rep.relative_confidence, "class_shares": rep.class_shares,
                       "min_share": rep.min_share,
                       "pass": rep.relative_confidence >= 0.9 and rep.min_share >= 0.04}
    return {"recipe": RECIPES["digits"].describe(), "train_s": train_s, "judge_test_accuracy": judge.test_accuracy,
            "judge_real_confidence": judge.real_confidence, "samplers": rows}


def bench_notebooks(notebooks_dir: str | Path = "notebooks") -> dict:
    """Seconds to execute each notebook top to bottom (nbclient, CPU, 2 threads)."""
    import os

    import nbformat
    from nbclient import NotebookClient

    os.environ.setdefault("DIFFNLP_DEVICE", "cpu")
    os.environ.setdefault("DIFFNLP_THREADS", "2")
    rows = {}
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
                       ).execute()
        rows[path.name] = {"seconds": time.perf_counter() - t0}
    return {"notebooks": rows}


def _lm_block(name, model, process, grammar, tok, test_ids, n: int, train_s: float | None) -> dict:
    from ..evaluation import lm_eval

    L = test_ids.shape[1]
    lik = lm_eval.likelihood(name, model, process, grammar, test_ids)
    row = {"train_s": train_s, "likelihood": lik.as_dict(), "samples": {}}
    if "strategy" not in process.sample_options:                   # the autoregressive model: one sampler
        configs = {"autoregressive": {}}
    else:
        configs = {f"{s} K={K}": {"num_steps": K, "strategy": s} for s in ("ancestral", "confidence")
                   for K in (L // 8, L // 4, L // 2, L)}
        configs[f"random K={L}"] = {"num_steps": L, "strategy": "random"}
        configs[f"confidence, blocks of 8, K={L}"] = {"num_steps": L, "strategy": "confidence", "block_length": 8}
    for label, kw in configs.items():
        t0 = time.perf_counter()
        rep = lm_eval.sample_quality(grammar, tok, model, process, n=n, length=L, seed=1, **kw)
        row["samples"][label] = {**rep.as_dict(), "sample_s": time.perf_counter() - t0}
        print(f"  {name} {label}: {rep}", flush=True)
    kw = {"num_steps": L, "strategy": "confidence"} if "strategy" in process.sample_options else {}
    row["ms_per_sample"] = {f"batch {b}": lm_eval.ms_per_sample(model, process, b, L, **kw) for b in (1, 64)}
    if "reuse_unchanged" in process.sample_options:                 # MDLM: calls the cache saves
        traj = process.sample(model, 1, L, 2 * L, reuse_unchanged=True, generator=torch.Generator().manual_seed(0))
        traj.run()
        row["cache"] = {"num_steps": 2 * L, "batch": 1, "network_calls": traj.network_calls,
                        "calls_saved": traj.calls_saved}
    return row


def bench_lm(n: int = 500, live_seconds: float = 90.0) -> dict:
    """MDLM against the autoregressive model on the story grammar, two ways:

    - "shipped": the checkpoints lesson 04 samples from (the same recipe for both: data, model, batch,
      steps and learning rate);
    - "live": both trained from scratch for the same wall-clock budget (``live_seconds``) here.
    Likelihood on the 2,000 test stories; samples: ``n`` per configuration.
    """
    from ..training.pretrained import load_pretrained
    from ..training.recipes import story_data, train_text_recipe

    grammar, tok, test_ids = story_data(split="test")
    out = {"entropy": grammar.entropy(), "length": test_ids.shape[1], "n_samples": n, "shipped": {}, "live": {}}
    for name in ("stories-mdlm", "stories-ar"):
        model, process, _, meta = load_pretrained(name)
        out["shipped"][name] = _lm_block(name, model, process, grammar, tok, test_ids, n, meta.get("train_s"))
        out["shipped"][name]["recipe"] = meta.get("recipe")
    _, _, train_ids = story_data(stories=100_000)
    for name in ("stories-mdlm-live", "stories-ar-live"):
        t0 = time.perf_counter()
        model, process, history = train_text_recipe(name, progress=False, data=train_ids, max_seconds=live_seconds,
                                                    steps=100_000)
        train_s = time.perf_counter() - t0
        out["live"][name] = _lm_block(name, model, process, grammar, tok, test_ids, n, train_s)
        out["live"][name]["steps"] = len(history)
    return out


GUIDANCE_SCALES = (0.0, 1.0, 4.0, 16.0, 64.0, 256.0)


def bench_embedding(n: int = 500, live_seconds: float = 90.0) -> dict:
    """Diffusion-LM (lesson 03) on the story grammar: the shipped checkpoint's Gaussian NELBO on the test
    stories, samples at 50 and 200 DDPM steps with clamping off and on, plug-and-play guidance toward
    ``GUIDANCE_TARGET`` at ``GUIDANCE_SCALES``, infilling, speed, and a live model trained for
    ``live_seconds``. ``n`` samples per row."""
    from ..evaluation import lm_eval
    from ..evaluation.metrics import control_report
    from ..sampling.guidance import ClassifierGuidance
    from ..training.pretrained import load_guidance_classifier, load_pretrained
    from ..training.recipes import story_data, train_text_recipe

    grammar, tok, test_ids = story_data(split="test")
    L = test_ids.shape[1]
    model, process, _, meta = load_pretrained("stories-diffusion-lm")
    out = {"entropy": grammar.entropy(), "length": L, "n_samples": n, "recipe": meta.get("recipe"),
           "train_s": meta.get("train_s"), "steps": meta.get("steps")}
    lik = lm_eval.likelihood("stories-diffusion-lm", model, process, grammar, test_ids, n_samples=16)
    out["likelihood"] = lik.as_dict()
    print(f"  {lik}", flush=True)

    def quality(m, label, **kw):
        t0 = time.perf_counter()
        rep = lm_eval.sample_quality(grammar, tok, m, process, n=n, length=L, seed=1, **kw)
        print(f"  {label}: {rep}", flush=True)
        return {**rep.as_dict(), "sample_s": time.perf_counter() - t0}

    out["samples"] = {f"{K} steps, clamp {'on' if c else 'off'}": quality(model, f"K={K} clamp={c}", num_steps=K,
                                                                              clamp=c)
                      for K in (50, 200) for c in (False, True)}
    clf, cmeta = load_guidance_classifier("stories-diffusion-lm-place")
    attribute, target = GUIDANCE_TARGET
    out["guidance"] = {"attribute": attribute, "target": target, "steps": 100, "clamp": True, "rows": {}}
    for scale in GUIDANCE_SCALES:
        guidance = ClassifierGuidance(clf, cmeta["values"].index(target), scale=scale)
        ids = lm_eval.generate(model, process, n, L, num_steps=100, seed=2, clamp=True, guidance=guidance)
        rep = control_report(grammar, ids, attribute, target, tok)
        out["guidance"]["rows"][f"scale {scale:g}"] = rep.as_dict()
        print(f"  guidance scale {scale:g}: {rep}", flush=True)
    fixed = test_ids[:n].clone()
    fixed[:, 9:] = process.mask_id                                   # keep sentence 1 (9 tokens), write the rest
    ids = lm_eval.generate(model, process, n, L, num_steps=200, seed=3, clamp=True, fixed=fixed)
    rep = story_report(grammar, ids, tok)
    kept = float((ids[:, :9] == test_ids[:n, :9]).all(1).float().mean())
    out["infilling"] = {"fixed": "sentence 1 of the test stories", **rep.as_dict(), "kept": kept}
    print(f"  infilling after sentence 1: {rep}", flush=True)
    out["ms_per_sample"] = {f"{K} steps, batch {b}": lm_eval.ms_per_sample(model, process, b, L, num_steps=K)
                            for K in (50, 200) for b in (1, 64)}
    t0 = time.perf_counter()
    live, _, history = train_text_recipe("stories-diffusion-lm-live", progress=False, max_seconds=live_seconds,
                                         steps=100_000)
    out["live"] = {"train_s": time.perf_counter() - t0, "steps": len(history),
                   "samples": {f"200 steps, clamp {'on' if c else 'off'}": quality(live, f"live clamp={c}",
                                                                                     num_steps=200, clamp=c)
                               for c in (False, True)}}
    return out


BENCHES = {"widgets": bench_widgets, "points": bench_points, "digits": bench_digits, "notebooks": bench_notebooks,
           "lm": bench_lm, "embedding": bench_embedding, "frontier": bench_frontier, "real_text": bench_real_text}


def run(names: list[str], out: Path = RESULTS) -> list[Path]:
    """Run the named benchmarks; write each one's JSON and the Markdown summary under ``out``."""
    paths = []
    for name in names:
        print(f"== bench {name}", flush=True)
        result = BENCHES[name]()
        paths.append(_write(name, result, out))
        print(json.dumps(result, indent=2)[:2000])
    return paths
