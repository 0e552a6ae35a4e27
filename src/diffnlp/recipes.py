"""Recorded training recipes: the exact settings a lesson trains with, so the notebook, the
benchmark and ``python -m diffnlp train --recipe NAME`` all train the same model.

Each recipe fits the lesson's CPU budget on a 2-core machine (measured by
``python -m diffnlp bench``); raise ``steps`` to train longer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from ._checks import check_choice
from .gaussian import GaussianDiffusion
from .nn import DigitsDenoiser, MLPDenoiser
from .runtime import seed_everything
from .train import fit


@dataclass(frozen=True)
class Recipe:
    name: str
    data: str                        # "moons" (or another toy2d cloud) or "digits"
    model: dict = field(default_factory=dict)
    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    ema_decay: float | None = 0.995
    beta_schedule: str = "linear"
    prediction_type: str = "epsilon"
    seed: int = 0

    def describe(self) -> str:
        d = asdict(self)
        return ", ".join(f"{k}={v}" for k, v in d.items() if k != "name")


RECIPES = {
    # lesson 01: a 2-D DDPM on the spiral, about 45 s on 2 CPU cores (the same recipe on other clouds
    # is measured by `python -m diffnlp bench points`)
    "spiral": Recipe("spiral", "spiral", {"hidden": 128, "depth": 3}, steps=4000, batch_size=512, lr=3e-3),
    "moons": Recipe("moons", "moons", {"hidden": 128, "depth": 3}, steps=4000, batch_size=512, lr=3e-3),
    "ring": Recipe("ring", "ring", {"hidden": 128, "depth": 3}, steps=4000, batch_size=512, lr=3e-3),
    # lesson 02: the digits denoiser, about 90 s on 2 CPU cores
    "digits": Recipe("digits", "digits", {"arch": "mlp", "hidden": 512, "depth": 3}, steps=4400, batch_size=128,
                     lr=2e-3),
}


def training_data(recipe: Recipe) -> torch.Tensor:
    """The recipe's training set: 20,000 points of the cloud, or the training digits."""
    if recipe.data == "digits":
        from .data.digits import load_digits

        return load_digits("train", seed=0)[0]
    from .data.toy2d import sample_points

    return sample_points(recipe.data, 20000, seed=0)


def train_recipe(name: str, progress: bool = True, device=None):
    """Train a recipe from scratch; return ``(model, diffusion, history)``."""
    check_choice("recipe", name, RECIPES)
    r = RECIPES[name]
    diffusion = GaussianDiffusion(1000, r.beta_schedule, r.prediction_type)
    seed_everything(r.seed)  # the initial weights too
    model = DigitsDenoiser(**r.model) if r.data == "digits" else MLPDenoiser(**r.model)
    history = fit(model, lambda m, x, g: diffusion.loss(m, x, generator=g), training_data(r), steps=r.steps,
                  batch_size=r.batch_size, lr=r.lr, ema_decay=r.ema_decay, seed=r.seed, progress=progress,
                  device=device, desc=f"{name} DDPM")
    return model, diffusion, history
