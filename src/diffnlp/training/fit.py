"""One training loop: AdamW with warm-up and cosine decay, optional EMA, gradient clipping and a wall-clock budget.

    history = fit(model, lambda m, x0, g: diffusion.loss(m, x0, generator=g).mean(), data, steps=3000)
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import torch
from torch import nn

from .._checks import check_float, check_int, check_tensor
from ..runtime import device as best_device
from ..runtime import seed_everything

LossFn = Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor]


def fit(model: nn.Module, loss_fn: LossFn, data: torch.Tensor, steps: int = 1000, batch_size: int = 256,
        lr: float = 1e-3, seed: int = 0, device: torch.device | str | None = None, warmup: int = 100,
        ema_decay: float | None = None, weight_decay: float = 0.0, progress: bool = True,
        desc: str = "training", max_seconds: float | None = None, grad_clip: float | None = None) -> list[float]:
    """Train ``model`` for ``steps`` AdamW steps on random batches of ``data``; return the loss history.

    - the seed fixes initialisation-independent randomness: batches, timesteps and noise
      (``loss_fn(model, batch, generator)`` draws from ``generator``);
    - the learning rate warms up linearly over ``warmup`` steps, then follows a cosine decay to 0;
    - with ``ema_decay`` the model ends holding the exponential moving average of its weights
      (theta_ema <- d theta_ema + (1 - d) theta), which samples better than the last iterate;
    - ``device`` defaults to ``diffnlp.device()``; the model is moved there and stays there;
    - ``max_seconds`` trains for a wall-clock budget instead (at most ``steps`` steps): the schedule then
      follows the elapsed fraction of the budget, so two models get the same time, not the same steps;
    - ``grad_clip`` rescales the gradient to at most this global norm before each step.
    """
    from tqdm.auto import tqdm

    check_tensor("data", data, ndim_min=1)
    steps = check_int("steps", steps, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    lr = check_float("lr", lr, low=0.0)
    warmup = check_int("warmup", warmup, low=0)
    if ema_decay is not None:
        check_float("ema_decay", ema_decay, 0.0, 1.0)
    if max_seconds is not None:
        check_float("max_seconds", max_seconds, low=1e-3)
    if len(data) == 0:
        raise ValueError("data is empty")
    dev = torch.device(device) if device is not None else best_device()
    generator = seed_everything(seed)
    model.to(dev).train()
    data = data.to(dev)
    ema = copy.deepcopy(model).eval() if ema_decay is not None else None
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def lr_at(step: int, progress: float) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        done = max((step - warmup) / max(1, steps - warmup), progress)
        return lr * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))

    history: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=0.5)
    for step in bar:
        elapsed = 0.0 if max_seconds is None else (time.perf_counter() - start) / max_seconds
        if elapsed >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, elapsed)
        idx = torch.randint(0, len(data), (batch_size,), generator=generator).to(dev)
        loss = loss_fn(model, data[idx], generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()} at step {step}; try a smaller lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(p, 1 - ema_decay)
        history.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{sum(history[-50:]) / len(history[-50:]):.4f}")
    bar.close()
    if ema is not None:
        model.load_state_dict(ema.state_dict())
    model.eval()
    return history
