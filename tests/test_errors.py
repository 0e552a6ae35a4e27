"""Bad input raises ValueError or TypeError whose message names the argument (docs/architecture.md)."""

from __future__ import annotations

import json

import pytest
import torch

from diffnlp import GaussianDiffusion
from diffnlp.data.digits import load_digits
from diffnlp.data.toy2d import sample_points
from diffnlp.evaluation.metrics import sliced_wasserstein, swd_mean
from diffnlp.evaluation.oracle import GaussianMixtureDenoiser
from diffnlp.models import build_model
from diffnlp.models.denoisers import DigitsDenoiser, MLPDenoiser
from diffnlp.training.checkpoints import load_checkpoint, save_checkpoint
from diffnlp.training.fit import fit

D = GaussianDiffusion(1000)
X = torch.zeros(4, 2)
T4 = torch.zeros(4, dtype=torch.long)


def _zero_model(x_t, timesteps):
    return torch.zeros_like(x_t)


def _sample(**kwargs):
    args = {"model": _zero_model, "shape": (4, 2), "num_inference_steps": 5}
    args.update(kwargs)
    return next(D.sample(**args))  # sample() is a generator: checks run on the first next()


def _tiny_mlp():
    return MLPDenoiser(hidden=8, depth=1, time_dim=8)


def _fit(**kwargs):
    args = {"model": _tiny_mlp(), "loss_fn": lambda m, x, g: D.loss(m, x, generator=g).mean(),
            "data": torch.randn(16, 2), "steps": 2, "batch_size": 4, "progress": False, "device": "cpu"}
    args.update(kwargs)
    return fit(**args)


def _saved(tmp_path, model=None):
    model = model or _tiny_mlp()
    weights = save_checkpoint(tmp_path / "ckpt", model, meta={"note": "test"})
    return weights, weights.with_suffix(".json")


def _corrupt_weights(tmp_path):
    weights, _ = _saved(tmp_path)
    weights.write_bytes(b"\x00garbage, not a safetensors file" * 4)
    return load_checkpoint(weights)


def _truncated_weights(tmp_path):
    weights, _ = _saved(tmp_path)
    weights.write_bytes(weights.read_bytes()[:100])
    return load_checkpoint(weights)


def _corrupt_json(tmp_path):
    weights, config = _saved(tmp_path)
    config.write_text("{not json")
    return load_checkpoint(weights)


def _json_without_model(tmp_path):
    weights, config = _saved(tmp_path)
    config.write_text(json.dumps({"meta": {}}))
    return load_checkpoint(weights)


def _mismatched_config(tmp_path):
    weights, _ = _saved(tmp_path)
    return load_checkpoint(weights, MLPDenoiser(hidden=16, depth=1, time_dim=8))


def _weights_do_not_fit(tmp_path):
    weights, config = _saved(tmp_path)
    info = json.loads(config.read_text())
    info["model"]["config"]["hidden"] = 16  # the JSON now describes another model than the weights
    config.write_text(json.dumps(info))
    return load_checkpoint(weights)


def _missing_tensor(tmp_path):
    from safetensors.torch import save_file

    model = _tiny_mlp()
    weights, _ = _saved(tmp_path, model)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "out.1.bias"}
    save_file(state, str(weights))
    return load_checkpoint(weights)


def _missing_json(tmp_path):
    weights, config = _saved(tmp_path)
    config.unlink()
    return load_checkpoint(weights)


CASES = [
    # ---- GaussianDiffusion construction
    ("unknown beta_schedule", lambda p: GaussianDiffusion(beta_schedule="quadratic"), ValueError, "beta_schedule"),
    ("unknown prediction_type", lambda p: GaussianDiffusion(prediction_type="noise"), ValueError, "prediction_type"),
    ("T=1", lambda p: GaussianDiffusion(num_train_timesteps=1), ValueError, "num_train_timesteps"),
    ("T float", lambda p: GaussianDiffusion(num_train_timesteps=1000.0), TypeError, "num_train_timesteps"),
    # ---- timesteps
    ("timesteps = T", lambda p: D.add_noise(X, X, torch.full((4,), 1000)), ValueError, "timesteps"),
    ("timesteps = -1", lambda p: D.add_noise(X, X, torch.full((4,), -1)), ValueError, "timesteps"),
    ("int timestep = T", lambda p: D.add_noise(X, X, 1000), ValueError, "timesteps"),
    ("float timesteps", lambda p: D.add_noise(X, X, torch.full((4,), 3.0)), TypeError, "timesteps"),
    ("python float timestep", lambda p: D.add_noise(X, X, 3.0), TypeError, "timesteps"),
    ("timesteps (B, 1)", lambda p: D.add_noise(X, X, torch.zeros(4, 1, dtype=torch.long)), ValueError, "timesteps"),
    ("timesteps wrong batch", lambda p: D.add_noise(X, X, torch.zeros(3, dtype=torch.long)), ValueError, "timesteps"),
    ("posterior timesteps", lambda p: D.posterior(X, X, torch.full((4,), 1000)), ValueError, "timesteps"),
    ("prev_timesteps >= t", lambda p: D.posterior(X, X, T4 + 5, T4 + 5), ValueError, "prev_timesteps"),
    ("prev_timesteps float", lambda p: D.posterior(X, X, T4 + 5, T4 + 1.0), TypeError, "prev_timesteps"),
    ("q_sample_chain timestep", lambda p: D.q_sample_chain(X, 1000), ValueError, "timestep"),
    # ---- tensors
    ("noise shape", lambda p: D.add_noise(X, torch.zeros(4, 3), T4), ValueError, "noise"),
    ("x0 not a tensor", lambda p: D.add_noise([[0.0, 0.0]], X, T4), TypeError, "x0"),
    ("x0 integer", lambda p: D.add_noise(torch.zeros(4, 2, dtype=torch.long), X, T4), TypeError, "x0"),
    ("posterior x0 shape", lambda p: D.posterior(X, torch.zeros(4, 3), T4 + 1), ValueError, "x0"),
    ("loss x0 1-D", lambda p: D.loss(_zero_model, torch.zeros(4)), ValueError, "x0"),
    # ---- sampling
    ("num_inference_steps=0", lambda p: D.inference_timesteps(0), ValueError, "num_inference_steps"),
    ("num_inference_steps>T", lambda p: D.inference_timesteps(1001), ValueError, "num_inference_steps"),
    ("num_inference_steps float", lambda p: D.inference_timesteps(50.0), TypeError, "num_inference_steps"),
    ("sample num_inference_steps=0", lambda p: _sample(num_inference_steps=0), ValueError, "num_inference_steps"),
    ("unknown sampling method", lambda p: _sample(method="euler"), ValueError, "method"),
    ("negative eta", lambda p: _sample(method="ddim", eta=-0.5), ValueError, "eta"),
    ("sample shape 1-D", lambda p: _sample(shape=(4,)), ValueError, "shape"),
    ("sample shape zero", lambda p: _sample(shape=(0, 2)), ValueError, "shape"),
    ("sample shape not a tuple", lambda p: _sample(shape=4), ValueError, "shape"),
    ("step unknown method", lambda p: D.step(X, 10, X, 9, method="plms"), ValueError, "method"),
    ("step negative eta", lambda p: D.step(X, 10, X, 9, method="ddim", eta=-1.0), ValueError, "eta"),
    ("ddpm step without noise", lambda p: D.step(X, 10, X, 9, method="ddpm"), ValueError, "noise"),
    ("ddim eta>0 without noise", lambda p: D.step(X, 10, X, 9, method="ddim", eta=0.5), ValueError, "noise"),
    ("step timestep = T", lambda p: D.step(X, 1000, X, 999, noise=X), ValueError, "timestep"),
    # ---- data
    ("unknown toy dataset", lambda p: sample_points("circles", 10), ValueError, "name"),
    ("n=0 points", lambda p: sample_points("moons", 0), ValueError, "n"),
    ("n float", lambda p: sample_points("moons", 10.0), TypeError, "n"),
    ("digits split", lambda p: load_digits("validation"), ValueError, "split"),
    ("digits test_fraction", lambda p: load_digits("train", test_fraction=1.5), ValueError, "test_fraction"),
    # ---- checkpoints
    ("missing checkpoint", lambda p: load_checkpoint(p / "nothing_here"), ValueError, "nothing_here.*does not exist"),
    ("missing json", _missing_json, ValueError, r"ckpt\.json.*does not exist"),
    ("corrupt safetensors", _corrupt_weights, ValueError, r"ckpt\.safetensors.*corrupt"),
    ("truncated safetensors", _truncated_weights, ValueError, r"ckpt\.safetensors.*corrupt"),
    ("corrupt JSON config", _corrupt_json, ValueError, r"ckpt\.json.*corrupt"),
    ("JSON without model", _json_without_model, ValueError, r"ckpt\.json.*corrupt"),
    ("mismatched model config", _mismatched_config, ValueError, "does not match the given model"),
    ("weights do not fit config", _weights_do_not_fit, ValueError, "do not fit the model"),
    ("weights miss a tensor", _missing_tensor, ValueError, "do not fit the model"),
    ("build_model unknown class", lambda p: build_model({"class": "UNet", "config": {}}), ValueError, "UNet"),
    ("build_model bad config", lambda p: build_model({"class": "MLPDenoiser", "config": {"width": 3}}),
     ValueError, "config for MLPDenoiser"),
    ("build_model no keys", lambda p: build_model({"config": {}}), ValueError, "class"),
    # ---- models
    ("MLPDenoiser x_t dim", lambda p: _tiny_mlp()(torch.zeros(4, 3), T4), ValueError, "x_t"),
    ("MLPDenoiser x_t 3-D", lambda p: _tiny_mlp()(torch.zeros(4, 2, 1), T4), ValueError, "x_t"),
    ("DigitsDenoiser x_t", lambda p: DigitsDenoiser(channels=8)(torch.zeros(4, 64), T4), ValueError, "x_t"),
    ("DigitsDenoiser 2 channels", lambda p: DigitsDenoiser(channels=8)(torch.zeros(4, 2, 8, 8), T4), ValueError, "x_t"),
    ("DigitsDenoiser arch", lambda p: DigitsDenoiser(arch="unet"), ValueError, "arch"),
    ("DigitsDenoiser channels", lambda p: DigitsDenoiser(arch="conv", channels=12), ValueError, "channels"),
    ("MLPDenoiser depth", lambda p: MLPDenoiser(depth=0), ValueError, "depth"),
    ("oracle weights", lambda p: GaussianMixtureDenoiser(D, [[0.0], [1.0]], 0.1, [0.5, 0.6]), ValueError, "weights"),
    ("oracle means", lambda p: GaussianMixtureDenoiser(D, [0.0, 1.0], 0.1, [0.5, 0.5]), ValueError, "means"),
    ("oracle stds", lambda p: GaussianMixtureDenoiser(D, [[0.0], [1.0]], [0.1] * 3, [0.5, 0.5]), ValueError, "stds"),
    # ---- metrics and training
    ("sliced_wasserstein shapes", lambda p: sliced_wasserstein(torch.zeros(5, 2), torch.zeros(6, 2)), ValueError,
     "x and y"),
    ("sliced_wasserstein dims", lambda p: sliced_wasserstein(torch.zeros(5, 2), torch.zeros(5, 3)), ValueError,
     "x and y"),
    ("sliced_wasserstein integer", lambda p: sliced_wasserstein(torch.zeros(5, 2, dtype=torch.long),
                                                                torch.zeros(5, 2)), TypeError, "x"),
    ("num_projections=0", lambda p: sliced_wasserstein(X, X, num_projections=0), ValueError, "num_projections"),
    ("swd_mean shapes", lambda p: swd_mean(torch.zeros(5, 2), torch.zeros(6, 2)), ValueError, "x and y"),
    ("fit steps=0", lambda p: _fit(steps=0), ValueError, "steps"),
    ("fit batch_size=0", lambda p: _fit(batch_size=0), ValueError, "batch_size"),
    ("fit negative lr", lambda p: _fit(lr=-1e-3), ValueError, "lr"),
    ("fit ema_decay", lambda p: _fit(ema_decay=1.5), ValueError, "ema_decay"),
    ("fit empty data", lambda p: _fit(data=torch.zeros(0, 2)), ValueError, "data"),
    ("fit data not a tensor", lambda p: _fit(data=[[0.0, 0.0]]), TypeError, "data"),
    ("fit non-finite loss", lambda p: _fit(loss_fn=lambda m, x, g: m(x, T4[:1].expand(len(x))).sum() * float("nan")),
     FloatingPointError, "loss"),
]


@pytest.mark.parametrize("call,exc,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_named_error(tmp_path, call, exc, match):
    with pytest.raises(exc, match=match):
        call(tmp_path)


def test_error_messages_name_value_and_allowed():
    with pytest.raises(ValueError, match="'quadratic'.*'linear', 'cosine', 'sqrt'"):
        GaussianDiffusion(beta_schedule="quadratic")
    with pytest.raises(ValueError, match=r"\[0, 999\].*\[1000, 1000\]"):
        D.add_noise(X, X, 1000)
    with pytest.raises(ValueError, match="1 <= num_inference_steps <= 1000"):
        D.inference_timesteps(0)


# ------------------------------------------------------------------------------------------ step and model edge cases
@pytest.mark.parametrize("method", [
    "ddpm",
    "ddim",
])
@pytest.mark.parametrize("prev", [10, 20, 1200])
def test_step_rejects_prev_timestep_not_below_timestep(method, prev):
    with pytest.raises(ValueError, match="prev_timestep"):
        D.step(X, 10, X, prev, method=method, eta=0.0, noise=X)


def test_ddim_eta_above_one_is_rejected():
    with pytest.raises(ValueError, match="eta"):
        _sample(method="ddim", eta=2.0)


def test_step_rejects_noise_of_the_wrong_shape():
    with pytest.raises(ValueError, match="noise"):
        D.step(X, 10, X, 9, method="ddpm", noise=torch.zeros(1, 2))


def test_odd_time_dim_is_rejected():
    with pytest.raises(ValueError, match="time_dim"):
        MLPDenoiser(hidden=8, depth=1, time_dim=7)


def test_odd_image_size_is_rejected():
    with pytest.raises(ValueError, match="image_size"):
        DigitsDenoiser(channels=8, image_size=7)


def test_sample_checks_its_arguments_at_the_call():
    """sample() is a generator, but a bad argument fails at the call, before any step."""
    with pytest.raises(ValueError, match="method"):
        D.sample(torch.nn.Identity(), (4, 2), method="euler")
    with pytest.raises(ValueError, match="shape"):
        D.sample(torch.nn.Identity(), (True, 2))
