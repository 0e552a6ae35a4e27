"""Recorded training recipes: the exact settings a lesson trains with, so the notebook, the
benchmark and ``python -m diffnlp train --recipe NAME`` all train the same model.

Each recipe fits the lesson's CPU budget on a 2-core machine (measured by
``python -m diffnlp bench``); raise ``steps`` to train longer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from .._checks import check_choice
from ..models.denoisers import DigitsDenoiser, MLPDenoiser
from ..processes.gaussian import GaussianDiffusion
from ..runtime import seed_everything
from .fit import fit
from .kinds import KINDS, batch_loss


@dataclass(frozen=True)
class Recipe:
    """A Gaussian-diffusion recipe of lessons 01-02: the data, the denoiser, and the training settings."""

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
    # lesson 01: a 2-D DDPM on the spiral, about 20 s on 2 CPU cores (the same recipe on other clouds
    # is measured by `python -m diffnlp bench points`)
    "spiral": Recipe("spiral", "spiral", {"hidden": 128, "depth": 3}, steps=4000, batch_size=512, lr=3e-3),
    "moons": Recipe("moons", "moons", {"hidden": 128, "depth": 3}, steps=4000, batch_size=512, lr=3e-3),
    "ring": Recipe("ring", "ring", {"hidden": 128, "depth": 3}, steps=4000, batch_size=512, lr=3e-3),
    # lesson 02: the digits denoiser, about 90 s on 2 CPU cores
    "digits": Recipe("digits", "digits", {"arch": "mlp", "hidden": 512, "depth": 3}, steps=4400, batch_size=128,
                     lr=2e-3),
}


DIFFUSION_LM_MODEL = {"d_model": 128, "n_layers": 4, "n_heads": 4, "embed_dim": 16, "num_train_timesteps": 1000}


@dataclass(frozen=True)
class TextRecipe:
    """A language model on the story grammar: "mdlm" (masked diffusion), "ar" (autoregressive) or
    "diffusion-lm" (Gaussian diffusion of word vectors), the same Transformer backbone, data and batch."""

    name: str
    kind: str                        # "mdlm", "ar" or "diffusion-lm"
    model: dict = field(default_factory=lambda: {"d_model": 128, "n_layers": 4, "n_heads": 4})
    length: int = 32                 # tokens per sequence (stories are padded with [PAD])
    stories: int = 300_000           # training stories: the first draws of the grammar's "train" split
    steps: int = 7500
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 200
    ema_decay: float | None = 0.998
    weighting: str = "token"         # MDLM training weight (see MaskedDiffusion.loss); the NELBO is reported
    seed: int = 0
    max_seconds: float | None = None  # a wall-clock budget instead of a step count
    grad_clip: float | None = None   # clip the gradient's global norm (the AR model needs it, see below)
    timesteps: int = 32              # "uniform" only: D3PM's number of integer steps T
    condition: str | None = None     # "mdlm-cond" only: the story attribute the model is conditioned on
    p_uncond: float = 0.1            # "mdlm-cond" only: how often the label is dropped ("no label")
    half: bool = False               # ship the weights in float16 (where the metrics hold: a test recomputes them)
    corpus: str | None = None        # "shakespeare": real text (data.corpus) instead of the story grammar
    vocab_size: int = 1024           # corpus only: the BPE vocabulary trained on the training works
    stride: int = 16                 # corpus only: training rows start every ``stride`` tokens (overlapping)

    def describe(self) -> str:
        d = asdict(self)
        if self.corpus is None:                  # a story recipe: the corpus fields do not apply
            for key in ("corpus", "vocab_size", "stride"):
                d.pop(key)
        return ", ".join(f"{k}={v}" for k, v in d.items() if k != "name")


TEXT_RECIPES = {
    # the checkpoints lesson 04 samples from (src/diffnlp/pretrained/), under 14 min each on 2 CPU cores
    # (a wall-clock budget of 810 s of training, at most 12,000 steps: about 7,000 steps on 2 cores)
    "stories-mdlm": TextRecipe("stories-mdlm", "mdlm", steps=12_000, max_seconds=810.0),
    # The AR model diverged with this recipe as it stands (its loss jumped from 22.5 to 30 nats at step
    # ~1000 and stayed at 25.4): it gets one change, gradient clipping at norm 1.
    "stories-ar": TextRecipe("stories-ar", "ar", steps=12_000, max_seconds=810.0, grad_clip=1.0),
    # lesson 04's live demonstration: the same number of steps for both, about 80 s each on 2 cores
    # (``python -m diffnlp bench lm`` trains them for an equal wall-clock budget instead)
    "stories-mdlm-live": TextRecipe("stories-mdlm-live", "mdlm", stories=100_000, steps=700, ema_decay=None,
                                    grad_clip=1.0),
    "stories-ar-live": TextRecipe("stories-ar-live", "ar", stories=100_000, steps=700, ema_decay=None,
                                  grad_clip=1.0),
    # lesson 03: Diffusion-LM, the same backbone on 16-dimensional word vectors, T = 1000 "sqrt" steps
    "stories-diffusion-lm": TextRecipe("stories-diffusion-lm", "diffusion-lm", model=DIFFUSION_LM_MODEL, lr=2e-3,
                                       steps=12_000, max_seconds=600.0, grad_clip=1.0),
    "stories-diffusion-lm-live": TextRecipe("stories-diffusion-lm-live", "diffusion-lm", model=DIFFUSION_LM_MODEL,
                                            stories=100_000, lr=2e-3, steps=600, ema_decay=None, grad_clip=1.0),
}
TEXT_RECIPES["stories-bd3"] = TextRecipe(
    # lesson 05: block diffusion, the MDLM recipe on a block-causal Transformer (blocks of 8), with the AR
    # recipe's gradient clipping (block-causal attention is partly autoregressive)
    "stories-bd3", "bd3", model={"d_model": 128, "n_layers": 4, "n_heads": 4, "block_length": 8}, steps=12_000,
    max_seconds=810.0, grad_clip=1.0)
# Lesson 05's alternatives to masking, at an equal budget: the shipped MDLM's 5,867 steps of batch 64 (its
# 810 s on 2 cores), the same backbone, data and learning-rate schedule; clipped at norm 1 like the AR and
# block models; capped at 870 s so each stays under 15 minutes. Stored in float16 (the 25 MB budget).
FRONTIER = dict(steps=5_867, max_seconds=870.0, grad_clip=1.0, half=True)
TEXT_RECIPES["stories-sedd"] = TextRecipe("stories-sedd", "sedd", **FRONTIER)         # score entropy (absorbing)
TEXT_RECIPES["stories-dfm"] = TextRecipe("stories-dfm", "dfm", **FRONTIER)           # flow matching, kappa = t
TEXT_RECIPES["stories-uniform"] = TextRecipe(                                       # D3PM-uniform, T = 32
    "stories-uniform", "uniform", model={"d_model": 128, "n_layers": 4, "n_heads": 4, "time_conditioning": True},
    **FRONTIER)
# classifier-free guidance: MDLM conditioned on the place (16 values), the label dropped 10 % of the time;
# a 780 s cap, since reading the places of 300,000 stories takes about a minute before training starts
TEXT_RECIPES["stories-mdlm-place"] = TextRecipe(
    "stories-mdlm-place", "mdlm-cond", model={"d_model": 128, "n_layers": 4, "n_heads": 4, "num_classes": 16},
    condition="place", **{**FRONTIER, "max_seconds": 780.0})


# Lesson 07: real text (Shakespeare, data.corpus), BPE with 1024 tokens, rows of 64 tokens (about 150
# characters). MDLM and AR get the same budget: 780 s of training on 2 cores (at most 20,000 steps of 64 rows),
# the story models' clipping and EMA, stored in float16 (the 30 MB budget of all shipped checkpoints).
# Rotary positions: with learned absolute ones the bidirectional MDLM stayed at the unigram loss (364 nats a
# row; 370 is the unigram entropy) for its first 950 steps, while AR left it at once; with RoPE it learns.
REAL_TEXT = dict(corpus="shakespeare", model={"d_model": 128, "n_layers": 4, "n_heads": 4, "rope": True}, length=64,
                 steps=20_000, max_seconds=780.0, grad_clip=1.0, half=True)
TEXT_RECIPES["shakespeare-mdlm"] = TextRecipe("shakespeare-mdlm", "mdlm", **REAL_TEXT)
TEXT_RECIPES["shakespeare-ar"] = TextRecipe("shakespeare-ar", "ar", **REAL_TEXT)
# lesson 07's live demonstration: 40 s of training each, no EMA
LIVE_REAL_TEXT = {**REAL_TEXT, "max_seconds": 40.0, "ema_decay": None, "half": False}
TEXT_RECIPES["shakespeare-mdlm-live"] = TextRecipe("shakespeare-mdlm-live", "mdlm", **LIVE_REAL_TEXT)
TEXT_RECIPES["shakespeare-ar-live"] = TextRecipe("shakespeare-ar-live", "ar", **LIVE_REAL_TEXT)


def corpus_data(recipe: TextRecipe):
    """(tokenizer, ids) of a real-text recipe: the corpus's BPE tokenizer and the training works as rows of
    ``recipe.length`` ids, overlapping every ``recipe.stride`` (held-out text is cut into disjoint rows:
    ``windows(encode_works(tok, split).values(), length)``)."""
    from ..data.corpus import corpus_tokenizer, encode_works, windows

    check_choice("corpus", recipe.corpus, ("shakespeare",))
    tok = corpus_tokenizer(recipe.vocab_size)
    return tok, windows(encode_works(tok, "train").values(), recipe.length, recipe.stride)


def text_meta(recipe: TextRecipe) -> dict:
    """What a text checkpoint records beside its weights so that its ids can be read: the story vocabulary,
    or the corpus's BPE tokenizer as JSON (the corpus itself is not needed to load it)."""
    if recipe.corpus is not None:
        from ..data.corpus import LICENCE, corpus_tokenizer

        return {"corpus": recipe.corpus, "licence": LICENCE, "tokenizer": corpus_tokenizer(recipe.vocab_size).to_json()}
    from ..data.stories import StoryGrammar

    return {"vocab": StoryGrammar().tokenizer().vocab}


def story_data(length: int = 32, stories: int = 100_000, split: str = "train"):
    """(grammar, tokenizer, ids): a split of the story grammar encoded as (N, length) token ids."""
    from ..data.stories import StoryGrammar

    grammar = StoryGrammar()
    tok = grammar.tokenizer()
    texts = grammar.split(split, stories) if split == "train" else grammar.split(split)
    return grammar, tok, tok.encode_batch(texts, length)


def story_labels(grammar, tokenizer, ids: torch.Tensor, attribute: str) -> torch.Tensor:
    """The class of each story, (N,): the index of its ``attribute`` in ``metrics.attribute_values``."""
    from ..data.attributes import attribute_values, decode_stories, story_attributes

    values = attribute_values(grammar, attribute)
    found = story_attributes(grammar, decode_stories(tokenizer, ids), attribute)
    if None in found:
        raise ValueError(f"story {found.index(None)} has no {attribute!r}: the data must be valid stories")
    return torch.tensor([values.index(v) for v in found])


def build_text_model(recipe: TextRecipe, vocab_size: int):
    """The recipe's untrained network and its process, from the registry ``kinds.KINDS``."""
    check_choice("kind", recipe.kind, KINDS)
    kind = KINDS[recipe.kind]
    model = kind.network(recipe, vocab_size)
    return model, kind.process(recipe, model)


def train_text_recipe(name: str, progress: bool = True, device=None, data: torch.Tensor | None = None,
                      mixed_precision: str | None = None, accumulation: int = 1, **overrides):
    """Train a text recipe from scratch; return ``(model, process, history)``. ``overrides`` change
    recipe fields (e.g. ``max_seconds=30``); ``data`` replaces the recipe's training ids; ``mixed_precision``
    and ``accumulation`` go to ``fit`` (they change how a step is computed, not what the recipe is)."""
    from dataclasses import replace

    check_choice("recipe", name, TEXT_RECIPES)
    r = replace(TEXT_RECIPES[name], **overrides)
    if r.corpus is not None:                      # real text: the model has the recipe's vocabulary size
        if data is None:
            _, data = corpus_data(r)
        vocab = r.vocab_size
    elif data is None:
        grammar, tok, data = story_data(r.length, r.stories)
        vocab = tok.vocab_size
    else:
        from ..data.stories import StoryGrammar

        grammar = StoryGrammar()
        tok = grammar.tokenizer()
        vocab = tok.vocab_size
    if KINDS[r.kind].labelled:                    # the label rides along as the last column
        data = torch.cat([data, story_labels(grammar, tok, data, r.condition)[:, None]], 1)
    seed_everything(r.seed)
    model, process = build_text_model(r, vocab)
    loss = batch_loss(KINDS[r.kind], process, r)
    history = fit(model, loss, data, steps=r.steps, batch_size=r.batch_size, lr=r.lr, warmup=r.warmup,
                  ema_decay=r.ema_decay, seed=r.seed, progress=progress, device=device, desc=f"{name}",
                  max_seconds=r.max_seconds, grad_clip=r.grad_clip, mixed_precision=mixed_precision,
                  accumulation=accumulation)
    return model, process, history


@dataclass(frozen=True)
class GuidanceRecipe:
    """A classifier of noisy word vectors for plug-and-play guidance of a Diffusion-LM checkpoint: it reads
    x_t and predicts a story attribute (the classes are ``metrics.attribute_values``)."""

    name: str
    base: str = "stories-diffusion-lm"     # the checkpoint whose (frozen) word vectors it reads
    attribute: str = "place"
    model: dict = field(default_factory=lambda: {"d_model": 64, "n_layers": 2, "n_heads": 4})
    stories: int = 100_000
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 100
    seed: int = 0

    def describe(self) -> str:
        d = asdict(self)
        return ", ".join(f"{k}={v}" for k, v in d.items() if k != "name")


GUIDANCE_TARGET = ("place", "museum")      # the attribute value lesson 03 and the benchmark steer toward (3 %)
GUIDANCE_RECIPES = {
    "stories-diffusion-lm-place": GuidanceRecipe("stories-diffusion-lm-place"),
}


def train_guidance_classifier(name: str, model=None, progress: bool = True, device=None, **overrides):
    """Train a guidance classifier recipe on the word vectors of ``model`` (default: the shipped ``base``
    checkpoint; a given model is copied, not changed); return ``(classifier, history)``."""
    import copy
    from dataclasses import replace

    from ..data.attributes import attribute_values
    from ..models.embedding import NoisyClassifier

    check_choice("recipe", name, GUIDANCE_RECIPES)
    r = replace(GUIDANCE_RECIPES[name], **overrides)
    if model is None:
        from .pretrained import load_pretrained

        model, process, _, _ = load_pretrained(r.base)
    else:
        model = copy.deepcopy(model)
        _, process = build_text_model(TEXT_RECIPES[r.base], model.config.vocab_size)
    grammar, tok, ids = story_data(model.config.max_len, r.stories)
    values = attribute_values(grammar, r.attribute)
    labels = story_labels(grammar, tok, ids, r.attribute)
    seed_everything(r.seed)
    clf = NoisyClassifier(input_dim=model.config.embed_dim, num_classes=len(values), max_len=model.config.max_len,
                          num_train_timesteps=process.num_train_timesteps, **r.model)
    from ..runtime import device as best_device

    dev = torch.device(device) if device is not None else best_device()
    model.requires_grad_(False).to(dev)

    def loss(c, batch, g):
        return process.classifier_loss(c, model, batch[:, :-1], batch[:, -1], generator=g).mean()

    history = fit(clf, loss, torch.cat([ids, labels[:, None]], 1), steps=r.steps, batch_size=r.batch_size,
                  lr=r.lr, warmup=r.warmup, seed=r.seed, progress=progress, device=dev, desc=name)
    return clf, history


def training_data(recipe: Recipe) -> torch.Tensor:
    """The recipe's training set: 20,000 points of the cloud, or the training digits."""
    if recipe.data == "digits":
        from ..data.digits import load_digits

        return load_digits("train", seed=0)[0]
    from ..data.toy2d import sample_points

    return sample_points(recipe.data, 20000, seed=0)


def train_recipe(name: str, progress: bool = True, device=None):
    """Train a recipe from scratch; return ``(model, diffusion, history)``."""
    check_choice("recipe", name, RECIPES)
    r = RECIPES[name]
    diffusion = GaussianDiffusion(1000, r.beta_schedule, r.prediction_type)
    seed_everything(r.seed)  # the initial weights too
    model = DigitsDenoiser(**r.model) if r.data == "digits" else MLPDenoiser(**r.model)
    history = fit(model, lambda m, x, g: diffusion.loss(m, x, generator=g).mean(), training_data(r), steps=r.steps,
                  batch_size=r.batch_size, lr=r.lr, ema_decay=r.ema_decay, seed=r.seed, progress=progress,
                  device=device, desc=f"{name} DDPM")
    return model, diffusion, history
