"""The process protocol, for every process of the course: ``sample`` returns a Trajectory that runs without
gradients and counts its network calls; ``loss`` is (B,), ``nelbo`` an Estimate; and the device rule:
no float64 tensor is ever made on a device other than the CPU (MPS has no float64, so lesson 04 once
crashed on a Mac), checked on this CPU-only machine by a simulated foreign device."""

from __future__ import annotations

import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

import diffnlp
from diffnlp.base import Estimate, Trajectory
from diffnlp.evaluation import lm_eval
from diffnlp.models import MLPDenoiser
from diffnlp.processes.gaussian import GaussianDiffusion
from diffnlp.training.kinds import KINDS
from diffnlp.training.recipes import TEXT_RECIPES

FOREIGN = torch.device("meta")      # stands for cuda or mps: a device that is not the CPU
L, V = 16, 12

# one small recipe per text kind (the kinds registry builds the network and the process)
RECIPES = {kind: next(r for r in TEXT_RECIPES.values() if r.kind == kind) for kind in KINDS}


def _small(kind):
    from dataclasses import replace

    r = RECIPES[kind]
    model = {**r.model, "d_model": 16, "n_layers": 1, "n_heads": 2}
    if "block_length" in model:
        model["block_length"] = 4
    r = replace(r, model=model, length=L, timesteps=4)
    net = KINDS[kind].network(r, V)
    torch.manual_seed(0)
    return net.eval(), KINDS[kind].process(r, net), r


def _data(kind):
    return torch.randint(2, V, (3, L), generator=torch.Generator().manual_seed(1))


def _net(kind, net):
    """A class-conditional network is a token denoiser once its label is fixed."""
    if KINDS[kind].labelled:
        from diffnlp.sampling.guidance import Conditioned

        return Conditioned(net, 3)
    return net


# ------------------------------------------------------------------ a simulated foreign device
class OnDevice(torch.Tensor):
    """A CPU tensor that says it lives on FOREIGN: every op on it runs on the CPU and its result goes back to
    FOREIGN, unless the op moves it to the CPU (``.cpu()``, ``.item()``). Making a float64 tensor there fails."""

    @staticmethod
    def __new__(cls, inner):
        r = torch.Tensor._make_wrapper_subclass(cls, inner.shape, strides=inner.stride(), dtype=inner.dtype,
                                                device=FOREIGN, requires_grad=inner.requires_grad)
        r.inner = inner
        return r

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {})


def _run(func, args, kwargs):
    foreign = False

    def unwrap(x):
        nonlocal foreign
        if isinstance(x, OnDevice):
            foreign = True
            return x.inner
        if isinstance(x, torch.device) and x.type == FOREIGN.type:
            foreign = True
            return torch.device("cpu")
        return x

    out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))
    moved_to_cpu = func is torch.ops.aten._to_copy.default and kwargs.get("device") is not None and \
        torch.device(kwargs["device"]).type == "cpu"
    if not foreign or moved_to_cpu or func is torch.ops.aten._local_scalar_dense.default:
        return out

    def wrap(x):
        if isinstance(x, torch.Tensor) and not isinstance(x, OnDevice):
            if x.dtype == torch.float64:
                raise AssertionError(f"{func} made a float64 tensor on {FOREIGN} (float64 belongs on the CPU)")
            return OnDevice(x)
        return x

    return tree_map(wrap, out)


class ForeignDevice(TorchDispatchMode):
    """Inside it, tensors created or moved to FOREIGN behave like tensors on a GPU without float64."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {})


@pytest.fixture
def foreign_device(monkeypatch):
    """Every module's ``model_device`` says FOREIGN, so the processes put their state there."""
    original = diffnlp.base.model_device
    for name, module in list(sys.modules.items()):
        if name.startswith("diffnlp") and getattr(module, "model_device", None) is original:
            monkeypatch.setattr(module, "model_device", lambda model: FOREIGN)
    with ForeignDevice():
        yield


def test_the_simulated_device_catches_float64():
    with ForeignDevice():
        x = torch.rand(3).to(FOREIGN)
        assert x.device == FOREIGN and (x.cpu().double().sum() > 0)         # float64 on the CPU: fine
        with pytest.raises(AssertionError, match="float64"):
            x.double()
        with pytest.raises(AssertionError, match="float64"):
            torch.zeros(2, dtype=torch.float64, device=FOREIGN)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_text_processes_make_no_float64_on_a_foreign_device(kind, foreign_device):
    net, process, _ = _small(kind)
    x0 = _data(kind).to(FOREIGN)
    model = _net(kind, net)
    g = torch.Generator().manual_seed(0)
    assert process.loss(model, x0, generator=g).shape == (3,)
    est = process.nelbo(model, x0, generator=g, n_samples=2)
    assert isinstance(est, Estimate) and est.mean.shape == (3,)
    final = process.sample(model, 2, L, generator=g).run()
    assert final.device == FOREIGN and final.shape[:2] == (2, L)


def test_gaussian_diffusion_makes_no_float64_on_a_foreign_device(foreign_device):
    d = GaussianDiffusion(50)
    model = MLPDenoiser(data_dim=2, hidden=16, depth=1).eval()
    x0 = torch.randn(4, 2).to(FOREIGN)
    assert d.loss(model, x0, generator=torch.Generator().manual_seed(0)).shape == (4,)
    assert d.nelbo(model, x0, generator=torch.Generator().manual_seed(0), n_samples=2).mean.shape == (4,)
    x = d.sample(model, (3, 2), 5, generator=torch.Generator().manual_seed(0)).run()
    assert x.device == FOREIGN and x.shape == (3, 2)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_process_samples_a_trajectory_with_gradients_off(kind):
    net, process, _ = _small(kind)
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config
            if hasattr(inner, "embedding"):                       # Diffusion-LM rounds with the word vectors
                self.embedding = inner.embedding

        def forward(self, *args, **kwargs):
            seen.append(torch.is_grad_enabled())
            return self.inner(*args, **kwargs)

    with torch.enable_grad():
        traj = process.sample(Spy(_net(kind, net)), 2, L, generator=torch.Generator().manual_seed(0))
        assert isinstance(traj, Trajectory)
        states = list(traj)
    assert len(states) >= 2 and traj.network_calls == len(seen) > 0
    assert not any(seen), "a sampler built an autograd graph"
    assert all(not s.requires_grad for s in states)
    assert isinstance(process.sample_options, dict) and all(isinstance(v, str) for v in process.sample_options.values())


def test_gaussian_sampling_is_a_trajectory_with_gradients_off():
    d = GaussianDiffusion(50)
    seen = []
    net = MLPDenoiser(data_dim=2, hidden=16, depth=1)

    def model(x, t):
        seen.append(torch.is_grad_enabled())
        return net(x, t)

    with torch.enable_grad():
        traj = d.sample(model, (3, 2), 5, generator=torch.Generator().manual_seed(0))
        assert isinstance(traj, Trajectory) and len(list(traj)) == 6
    assert traj.network_calls == 5 and seen == [False] * 5


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_lm_eval_uses_the_protocol_only(kind):
    net, process, _ = _small(kind)
    model = _net(kind, net)
    ids = lm_eval.generate(model, process, 3, L, batch_size=2, seed=0)
    assert ids.shape == (3, L) and ids.dtype == torch.long
    with pytest.raises(TypeError, match="unexpected sampling option"):
        lm_eval.generate(model, process, 1, L, no_such_option=1)
    nats = lm_eval.nats_per_story(model, process, _data(kind), n_samples=2)
    assert nats.shape == (3,) and torch.isfinite(nats).all()
