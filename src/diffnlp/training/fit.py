"""One training loop, on Hugging Face Accelerate: AdamW with warm-up and cosine decay, optional EMA, gradient
clipping, a wall-clock budget, mixed precision, and as many processes as ``accelerate launch`` or ``torchrun``
start (data parallel: DDP over NCCL on GPUs, gloo on CPUs).

    history = fit(model, lambda m, x0, g: diffusion.loss(m, x0, generator=g).mean(), data, steps=3000)

One process on a laptop is the default and needs no launcher. On several::

    torchrun --standalone --nproc_per_node 4 -m diffnlp train --recipe shakespeare-mdlm --max-seconds 0 --steps 20000
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_float, check_int, check_tensor
from ..runtime import device as best_device
from ..runtime import seed_everything

LossFn = Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor]
MIXED_PRECISION = ("no", "bf16", "fp16")


def make_accelerator(device: torch.device, mixed_precision: str | None = None):
    """An ``accelerate.Accelerator`` for ``device`` (a CPU device gives ``cpu=True``: gloo between processes) and
    ``mixed_precision`` (None: the launcher's ``--mixed_precision``, i.e. ``ACCELERATE_MIXED_PRECISION``, else "no").

    Accelerate keeps one process-wide state. In a single process (a notebook that trains on the CPU, then in
    bf16) it is reset so each ``fit`` gets the settings it asks for; under a launcher the settings are fixed."""
    import os

    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    single = int(os.environ.get("WORLD_SIZE", "1")) == 1      # torchrun and accelerate launch set WORLD_SIZE
    if AcceleratorState._shared_state and single:
        AcceleratorState._reset_state(reset_partial_state=True)
    if single and device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={str(device)!r} but torch sees no CUDA GPU; use 'cpu'")
        torch.cuda.set_device(device)                # Accelerate trains on the current GPU: make it this one
    accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision=mixed_precision)
    if single and accelerator.device.type != device.type:
        raise ValueError(f"device={str(device)!r} is not available to Accelerate (it chose {accelerator.device})")
    if accelerator.device.type == "cpu" and accelerator.mixed_precision == "fp16":
        raise ValueError("mixed_precision='fp16' needs a GPU (Accelerate would silently train in float32 on the "
                         "CPU); use 'bf16' or 'no'")
    if accelerator.gradient_accumulation_steps != 1:
        raise ValueError(f"the launcher asks for gradient_accumulation_steps={accelerator.gradient_accumulation_steps}"
                         "; fit accumulates itself: pass accumulation= (the CLI's --accumulation) instead")
    return accelerator


def shard_generator(seed: int, shard: int) -> torch.Generator:
    """The noise generator of one shard of the global batch (shard = rank * accumulation + micro-batch): an
    independent stream per shard, from NumPy's ``SeedSequence([seed, shard])``, the same on every machine."""
    state = int(np.random.SeedSequence([seed, shard]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(state)


class _Prepared:
    """What ``loss_fn`` receives under DDP: calls go through the prepared (DDP) model, so gradients are
    averaged across processes; attributes (``config``, ``embedding``, ...) are read from the module itself."""

    def __init__(self, prepared: nn.Module, module: nn.Module):
        self._prepared, self._module = prepared, module

    def __call__(self, *args, **kwargs):
        return self._prepared(*args, **kwargs)

    def __getattr__(self, name: str):
        if name == "forward":                        # forward() would bypass DDP: gradients would not be synced
            raise AttributeError("call the model, model(...), not model.forward(...), inside a fit loss")
        return getattr(self._module, name)


def fit(model: nn.Module, loss_fn: LossFn, data: torch.Tensor, steps: int = 1000, batch_size: int = 256,
        lr: float = 1e-3, seed: int = 0, device: torch.device | str | None = None, warmup: int = 100,
        ema_decay: float | None = None, weight_decay: float = 0.0, progress: bool = True,
        desc: str = "training", max_seconds: float | None = None, grad_clip: float | None = None,
        mixed_precision: str | None = None, accumulation: int = 1) -> list[float]:
    """Train ``model`` for ``steps`` AdamW steps on random batches of ``data``; return the loss history.

    - the seed fixes initialisation-independent randomness: batches, timesteps and noise
      (``loss_fn(model, batch, generator)`` draws from ``generator``);
    - the learning rate warms up linearly over ``warmup`` steps, then follows a cosine decay to 0;
    - with ``ema_decay`` the model ends holding the exponential moving average of its weights
      (theta_ema <- d theta_ema + (1 - d) theta), which samples better than the last iterate;
    - ``device`` defaults to ``diffnlp.device()``; the model is moved there and stays there;
    - ``max_seconds`` trains for a wall-clock budget instead (at most ``steps`` steps): the schedule then
      follows the elapsed fraction of the budget, so two models get the same time, not the same steps;
    - ``grad_clip`` rescales the gradient to at most this global norm before each step;
    - ``mixed_precision`` "bf16" (or "fp16", GPU only) runs the forward pass in that precision (Accelerate's
      autocast); the weights and the optimiser stay in float32. None: what ``accelerate launch
      --mixed_precision`` says, else "no".

    Several processes (started by ``torchrun`` or ``accelerate launch``) share each step's global batch of
    ``batch_size`` rows: all draw the same row indices from ``seed``, and each of the S = processes x
    ``accumulation`` shards (``batch_size / S`` rows) is processed by one process, ``accumulation`` shards
    in turn, its noise drawn from ``shard_generator(seed, shard)``. The gradient is the mean over shards
    (DDP averages across processes), so the weights depend on S, not on how the shards are spread: two
    processes equal one process with ``accumulation=2``. With S = 1 the noise comes from the batch generator,
    exactly as in a plain loop. The main process's clock decides the ``max_seconds`` stop and the schedule
    for all (broadcast each step), so no process waits for another that stopped; only it shows progress.
    """
    from accelerate.utils import broadcast
    from tqdm.auto import tqdm

    check_tensor("data", data, ndim_min=1)
    steps = check_int("steps", steps, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    lr = check_float("lr", lr, low=0.0)
    warmup = check_int("warmup", warmup, low=0)
    accumulation = check_int("accumulation", accumulation, low=1)
    if mixed_precision is not None:
        check_choice("mixed_precision", mixed_precision, MIXED_PRECISION)
    if ema_decay is not None:
        check_float("ema_decay", ema_decay, 0.0, 1.0)
    if max_seconds is not None:
        check_float("max_seconds", max_seconds, low=1e-3)
    if len(data) == 0:
        raise ValueError("data is empty")
    accelerator = make_accelerator(torch.device(device) if device is not None else best_device(), mixed_precision)
    shards = accelerator.num_processes * accumulation
    if batch_size % shards:
        raise ValueError(f"batch_size={batch_size} must be a multiple of processes x accumulation = "
                         f"{accelerator.num_processes} x {accumulation} = {shards} (each shard gets the same rows)")
    micro = batch_size // shards
    dev = accelerator.device
    generator = seed_everything(seed)            # the same on every process: the same global batch
    first = accelerator.process_index * accumulation
    noise = [generator] if shards == 1 else [shard_generator(seed, first + a) for a in range(accumulation)]
    model.to(dev).train()
    data = data.to(dev)
    ema = copy.deepcopy(model).eval() if ema_decay is not None else None
    prepared, opt = accelerator.prepare(model, torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay))
    module = accelerator.unwrap_model(prepared)
    if ema is not None:
        ema.load_state_dict(module.state_dict())    # DDP gave every process rank 0's weights: so does the EMA
    net = prepared if prepared is module else _Prepared(prepared, module)

    def lr_at(step: int, progress: float) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        done = max((step - warmup) / max(1, steps - warmup), progress)
        return lr * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))

    history: list[float] = []
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    bar = tqdm(range(steps), desc=desc, disable=not (progress and accelerator.is_main_process), mininterval=0.5)
    try:
        for step in bar:
            elapsed = 0.0
            if max_seconds is not None:          # the main process's clock, agreed by all
                clock = torch.tensor([(time.perf_counter() - start) / max_seconds], dtype=torch.float64, device=dev)
                elapsed = float(broadcast(clock, from_process=0)[0])
            if elapsed >= 1.0:
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(step, elapsed)
            idx = torch.randint(0, len(data), (batch_size,), generator=generator).to(dev)
            step_loss = torch.zeros((), device=dev)
            for a in range(accumulation):         # gradients add up locally; DDP syncs them on the last shard
                rows = idx[(first + a) * micro:(first + a + 1) * micro]
                sync = contextlib.nullcontext() if a == accumulation - 1 else accelerator.no_sync(prepared)
                with sync, accelerator.autocast():
                    loss = loss_fn(net, data[rows], noise[a]) / accumulation
                    accelerator.backward(loss)
                step_loss += loss.detach().float()
            step_loss = accelerator.reduce(step_loss, reduction="mean")   # the global batch's mean loss, on all
            if not torch.isfinite(step_loss):
                raise FloatingPointError(f"the loss became {step_loss.item()} at step {step}; try a smaller lr")
            if grad_clip is not None:
                accelerator.clip_grad_norm_(prepared.parameters(), grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                with torch.no_grad():
                    for pe, p in zip(ema.parameters(), module.parameters()):
                        pe.lerp_(p, 1 - ema_decay)
            history.append(step_loss.item())
            if step % 50 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{sum(history[-50:]) / len(history[-50:]):.4f}")
    finally:                                         # also after an error: drop DDP and autocast wrappers
        bar.close()
        module = accelerator.unwrap_model(prepared, keep_fp32_wrapper=False)
        module.eval()
    if ema is not None:
        module.load_state_dict(ema.state_dict())
    return history
