"""The shipped checkpoints (``src/diffnlp/pretrained/``): each was made by a recorded recipe,
``python -m diffnlp train --recipe NAME``, and is loaded here with its process and tokenizer."""

from __future__ import annotations

from pathlib import Path

from .._checks import check_choice
from ..data.tokenizers import BPETokenizer
from ..models.embedding import NoisyClassifier
from .checkpoints import load_checkpoint
from .recipes import GUIDANCE_RECIPES, TEXT_RECIPES, build_text_model

PRETRAINED_DIR = Path(__file__).parent.parent / "pretrained"
SHIPPED = ("stories-mdlm", "stories-ar", "stories-diffusion-lm", "stories-bd3", "stories-sedd", "stories-dfm",
           "stories-uniform", "stories-mdlm-place", "stories-bd3-distilled", "shakespeare-mdlm", "shakespeare-ar")


def check_vocab(meta: dict, tokenizer, where: str = "the checkpoint") -> None:
    """A text checkpoint records its vocabulary; it must be the tokenizer's, token for token."""
    vocab = meta.get("vocab")
    if vocab != tokenizer.vocab:
        if vocab is None:
            raise ValueError(f"{where} records no vocabulary, so its token ids cannot be trusted")
        diff = next((i for i, (a, b) in enumerate(zip(vocab, tokenizer.vocab)) if a != b),
                    min(len(vocab), len(tokenizer.vocab)))
        raise ValueError(f"{where} was trained with a different vocabulary ({len(vocab)} tokens) than the "
                         f"tokenizer's ({tokenizer.vocab_size}); they first differ at id {diff}")


def load_pretrained(name: str, path: str | Path | None = None):
    """A shipped text checkpoint: ``(model, process, tokenizer, meta)``. ``name`` is one of ``SHIPPED``
    (made by ``python -m diffnlp train --recipe NAME``); ``path`` loads another file trained by that
    recipe instead."""
    from ..data.stories import StoryGrammar

    check_choice("name", name, SHIPPED)
    model, meta = load_checkpoint(path or PRETRAINED_DIR / name)
    where = f"checkpoint {str(path or PRETRAINED_DIR / name)!r}"
    if TEXT_RECIPES.get(name) and TEXT_RECIPES[name].corpus is not None:   # real text: its BPE tokenizer rides along
        if not isinstance(meta.get("tokenizer"), str):
            raise ValueError(f"{where} records no tokenizer, so its token ids cannot be read")
        tok = BPETokenizer.from_json(meta["tokenizer"])
    else:
        tok = StoryGrammar().tokenizer()
        check_vocab(meta, tok, where)
    from .distillation import DISTILL_RECIPES

    recipe = TEXT_RECIPES[DISTILL_RECIPES[name].teacher if name in DISTILL_RECIPES else name]   # a student: its
    # teacher's network and process
    expected, process = build_text_model(recipe, tok.vocab_size)
    if type(model) is not type(expected) or model.config != expected.config:
        raise ValueError(f"{where} holds a {type(model).__name__} {getattr(model, 'config', '')}, not the "
                         f"{recipe.kind} model of recipe {name!r} ({expected.config})")
    return model, process, tok, meta


def load_guidance_classifier(name: str, path: str | Path | None = None):
    """A shipped guidance classifier: ``(classifier, meta)``; ``meta["values"]`` are its classes."""

    check_choice("name", name, GUIDANCE_RECIPES)
    clf, meta = load_checkpoint(path or PRETRAINED_DIR / name)
    if not isinstance(clf, NoisyClassifier) or "values" not in meta:
        raise ValueError(f"checkpoint {str(path or PRETRAINED_DIR / name)!r} is not a guidance classifier "
                         f"(a NoisyClassifier with its attribute's values)")
    return clf, meta
