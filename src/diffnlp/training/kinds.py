"""The registry of text-model kinds: for each ``TextRecipe.kind``, the network, the process and how a batch
is scored. The recipes, ``load_pretrained`` and the CLI look a kind up here; nothing else dispatches on it.

    kind = KINDS["mdlm"]
    model = kind.network(recipe, vocab_size); process = kind.process(recipe, model)
    loss_fn = batch_loss(kind, process, recipe)          # loss_fn(model, batch, generator), for ``fit``
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..data.tokenizers import MASK_ID
from ..models.embedding import EmbeddingDenoiser
from ..models.transformer import Transformer
from ..processes.autoregressive import Autoregressive
from ..processes.block import BlockDiffusion
from ..processes.d3pm import D3PM
from ..processes.embedding import EmbeddingDiffusion
from ..processes.flow_matching import MaskedFlowMatching
from ..processes.masked import MaskedDiffusion
from ..processes.sedd import ScoreEntropy


@dataclass(frozen=True)
class Kind:
    """What a kind builds. ``network(recipe, vocab_size)`` -> the untrained network; ``process(recipe, model)``
    -> its process; ``loss_options``: recipe fields passed on to ``process.loss`` (e.g. ``weighting``);
    ``labelled``: each training row carries a class label in its last column (classifier-free guidance)."""

    network: Callable[..., nn.Module]
    process: Callable[..., object]
    loss_options: tuple[str, ...] = ()
    labelled: bool = False


def _transformer(causal: bool = False) -> Callable[..., nn.Module]:
    def build(recipe, vocab_size: int) -> nn.Module:
        return Transformer(vocab_size=vocab_size, max_len=recipe.length, causal=causal, **recipe.model)
    return build


def _masked(recipe, model) -> MaskedDiffusion:
    return MaskedDiffusion("loglinear", mask_id=MASK_ID)


KINDS: dict[str, Kind] = {
    "mdlm": Kind(_transformer(), _masked, ("weighting",)),
    "ar": Kind(_transformer(causal=True), lambda r, m: Autoregressive(MASK_ID)),
    "bd3": Kind(_transformer(), lambda r, m: BlockDiffusion(m.config.block_length, mask_id=MASK_ID), ("weighting",)),
    "diffusion-lm": Kind(lambda r, v: EmbeddingDenoiser(vocab_size=v, max_len=r.length, **r.model),
                         lambda r, m: EmbeddingDiffusion(m.config.num_train_timesteps, mask_id=MASK_ID)),
    "sedd": Kind(_transformer(), lambda r, m: ScoreEntropy("loglinear", mask_id=MASK_ID)),
    "dfm": Kind(_transformer(), lambda r, m: MaskedFlowMatching("linear", mask_id=MASK_ID)),
    "uniform": Kind(_transformer(), lambda r, m: D3PM(m.config.vocab_size, r.timesteps, kind="uniform")),
    "mdlm-cond": Kind(_transformer(), _masked, ("weighting",), labelled=True),
}


def batch_loss(kind: Kind, process, recipe) -> Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor]:
    """``fit``'s loss: the mean of ``process.loss`` over a batch, every random draw from ``fit``'s generator.
    For a labelled kind the label is dropped (replaced by "no label" = num_classes) with probability
    ``recipe.p_uncond``, so that one network learns p(x | c) and p(x)."""
    options = {name: getattr(recipe, name) for name in kind.loss_options}

    def loss(model, batch, generator):
        if not kind.labelled:
            return process.loss(model, batch, generator=generator, **options).mean()
        ids, label = batch[:, :-1], batch[:, -1]
        drop = torch.rand(len(batch), generator=generator).to(batch.device) < recipe.p_uncond
        label = torch.where(drop, torch.full_like(label, model.config.num_classes), label)
        return process.loss(lambda z, t: model(z, t, label=label), ids, generator=generator, **options).mean()
    return loss
