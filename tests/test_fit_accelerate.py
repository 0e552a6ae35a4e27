"""fit on Accelerate: one process is the plain loop, shards are averaged, and two CPU processes under torchrun
(gloo) train exactly the weights of one process that takes the full batch in two shards."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from diffnlp.models.denoisers import MLPDenoiser
from diffnlp.runtime import seed_everything
from diffnlp.training.fit import fit, shard_generator
from test_train import DATA, loss_fn, small_mlp  # the tiny 2-D problem of fit's other tests


def reference_loop(model, steps, batch_size, lr, warmup, seed, grad_clip=None, ema_decay=None, shards=1):
    """The loop fit runs, written out plainly: AdamW, linear warm-up then cosine, clipping, EMA; with
    ``shards`` > 1 the batch is cut into shards, shard s draws its noise from ``shard_generator(seed, s)`` and
    the gradient is the mean of the shard gradients."""
    g = seed_everything(seed)
    noise = [g] if shards == 1 else [shard_generator(seed, s) for s in range(shards)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    ema = [p.detach().clone() for p in model.parameters()]
    model.train()
    for step in range(steps):
        rate = lr * (step + 1) / warmup if step < warmup else \
            lr * 0.5 * (1 + math.cos(math.pi * min((step - warmup) / max(1, steps - warmup), 1.0)))
        for group in opt.param_groups:
            group["lr"] = rate
        idx = torch.randint(0, len(DATA), (batch_size,), generator=g)
        opt.zero_grad(set_to_none=True)
        micro = batch_size // shards
        for s in range(shards):
            (loss_fn(model, DATA[idx[s * micro:(s + 1) * micro]], noise[s]) / shards).backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        if ema_decay is not None:
            with torch.no_grad():
                for e, p in zip(ema, model.parameters()):
                    e.lerp_(p, 1 - ema_decay)
    return ema if ema_decay is not None else [p.detach().clone() for p in model.parameters()]


def run_fit(model, **kwargs):
    args = {"steps": 12, "batch_size": 64, "lr": 3e-3, "seed": 2, "device": "cpu", "warmup": 4, "progress": False}
    args.update(kwargs)
    fit(model, loss_fn, DATA, **args)
    return [p.detach().clone() for p in model.parameters()]


def test_one_process_is_the_plain_loop_bit_for_bit():
    """What the shipped recipes ran before Accelerate: the same batches, noise, schedule, clipping and EMA."""
    got = run_fit(small_mlp(), grad_clip=0.5, ema_decay=0.9)
    want = reference_loop(small_mlp(), 12, 64, 3e-3, 4, seed=2, grad_clip=0.5, ema_decay=0.9)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_accumulation_averages_the_gradients_of_independent_shards():
    got = run_fit(small_mlp(), accumulation=4, grad_clip=1.0)
    want = reference_loop(small_mlp(), 12, 64, 3e-3, 4, seed=2, grad_clip=1.0, shards=4)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    one = run_fit(small_mlp(), grad_clip=1.0)                  # one shard draws other noise: a different run
    assert not all(torch.allclose(a, b) for a, b in zip(got, one, strict=True))


def test_shard_generators_are_independent_streams():
    draws = [torch.rand(4, generator=shard_generator(0, s)) for s in range(3)]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])
    assert torch.equal(draws[1], torch.rand(4, generator=shard_generator(0, 1)))
    assert not torch.equal(draws[0], torch.rand(4, generator=shard_generator(1, 0)))


def test_bf16_autocast_trains_and_leaves_a_plain_float32_model():
    model = small_mlp()
    history = fit(model, loss_fn, DATA, steps=5, batch_size=32, device="cpu", progress=False, mixed_precision="bf16")
    assert len(history) == 5 and all(math.isfinite(v) for v in history)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    out = model(DATA[:4], torch.zeros(4, dtype=torch.long))
    assert out.dtype == torch.float32
    assert getattr(model.forward, "__func__", None) is MLPDenoiser.forward     # the autocast wrapper is gone
    # and the next fit is the plain float32 loop again, bit for bit (Accelerate's process-wide state was reset)
    got = run_fit(small_mlp(), grad_clip=0.5)
    want = reference_loop(small_mlp(), 12, 64, 3e-3, 4, seed=2, grad_clip=0.5)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 30, "accumulation": 4}, "multiple of processes x accumulation"),
    ({"accumulation": 0}, "accumulation"),
    ({"mixed_precision": "fp8"}, "mixed_precision"),
])
def test_bad_fit_options_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(small_mlp(), loss_fn, DATA, steps=2, device="cpu", progress=False, **kwargs)


def test_what_accelerate_would_silently_change_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="fp16.*needs a GPU"):          # Accelerate would train in float32
        fit(small_mlp(), loss_fn, DATA, steps=2, device="cpu", progress=False, mixed_precision="fp16")
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "2")    # it would divide the loss again
    with pytest.raises(ValueError, match="gradient_accumulation_steps=2"):
        fit(small_mlp(), loss_fn, DATA, steps=2, device="cpu", progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_a_missing_gpu_is_an_error_not_a_silent_cpu_run():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        fit(small_mlp(), loss_fn, DATA, steps=2, device="cuda", progress=False)


def train_cli(tmp_path, name, launcher, *extra):
    """``python -m diffnlp train`` on the real-text live recipe for 4 steps of 8 rows, one thread a process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DIFFNLP_THREADS": "1", "DIFFNLP_DEVICE": "cpu",
           "ACCELERATE_USE_CPU": "true"}
    out = tmp_path / name
    cmd = [*launcher, "-m", "diffnlp", "train", "--recipe", "shakespeare-mdlm-live", "--steps", "4",
           "--batch-size", "8", "--max-seconds", "0", "--out", str(out), *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    meta = json.loads(out.with_name(name + ".json").read_text())["meta"]
    return load_file(str(out.with_name(name + ".safetensors"))), meta


@pytest.mark.slow
def test_two_cpu_processes_under_torchrun_equal_one_process_on_the_full_batch(tmp_path):
    """The scale-up path of the README, run for real: torchrun starts two processes that talk over gloo."""
    pytest.importorskip("accelerate")
    two, meta2 = train_cli(tmp_path, "two", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                             "--nproc_per_node", "2"])
    one, meta1 = train_cli(tmp_path, "one", [sys.executable], "--accumulation", "2")
    assert meta2["processes"] == 2 and meta2["accumulation"] == 1      # a connected world of two, not two loners
    assert meta1["processes"] == 1 and meta1["accumulation"] == 2
    assert meta2["steps"] == meta1["steps"] == 4
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")
    first = train_cli(tmp_path, "plain", [sys.executable])[0]          # one shard: other noise, other weights
    assert any(not torch.allclose(first[k], one[k]) for k in one)
