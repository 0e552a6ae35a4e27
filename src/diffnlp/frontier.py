"""The course's best few-step decoder, declared once.

``FAST_DECODER`` names a shipped checkpoint and the sampler options of the fastest decoder the course found
that keeps the stories (lesson 05, "Fewer steps without losing the story"); ``python -m diffnlp bench
frontier`` measures it against autoregression in the same run as every other decoder.

    from diffnlp.frontier import load_fast_decoder
    model, process, tok, options = load_fast_decoder()
    stories = tok.decode_batch(lm_eval.generate(model, process, 8, 32, seed=0, **options))
"""

from __future__ import annotations

FAST_DECODER = {
    "checkpoint": "stories-bd3",               # a shipped checkpoint (``training.pretrained.SHIPPED``)
    "sampler": {"num_steps": 1, "top_p": 0.93, "kv_cache": True},
    "why": "block diffusion (every block trained at once), one step a block (L/8 = 4 calls a story), each token "
           "drawn from the nucleus holding 93 % of its probability: the tail it cuts is where the independent "
           "draws of one step break the story, and the rare words it cuts are the price (lesson 05)",
}


def fast_decoder_name() -> str:
    """The row name of ``FAST_DECODER`` in the benchmark and the lesson."""
    s = FAST_DECODER["sampler"]
    rule = s.get("strategy", "ancestral")
    option = {"entropy": "entropy_budget", "threshold": "threshold"}.get(rule)
    detail = f" {s[option]:g}" if option in s else ""
    extra = "".join(f", {label}{s[key]:g}" for key, label in (("top_p", "top-p "), ("temperature", "T="))
                    if s.get(key, 1.0) != 1.0)
    return f"FAST_DECODER ({FAST_DECODER['checkpoint']}, {rule}{detail}, {s['num_steps']}/block{extra})"


def load_fast_decoder(device=None):
    """``(model, process, tokenizer, options)``: the checkpoint of ``FAST_DECODER`` on ``device`` (default
    ``diffnlp.device()``) and its sampler options, with ``end_id`` set to the tokenizer's [PAD], ready for
    ``process.sample(model, n, 32, generator=..., **options)`` or ``lm_eval.generate``."""
    from .runtime import device as best_device
    from .training.pretrained import load_pretrained

    model, process, tok, _ = load_pretrained(FAST_DECODER["checkpoint"])
    model.to(device if device is not None else best_device())
    return model, process, tok, {**FAST_DECODER["sampler"], "end_id": tok.pad_id}
