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
    "sampler": {"num_steps": 2, "strategy": "entropy", "entropy_budget": 1.0, "temperature": 0.8, "kv_cache": True},
    "why": "block diffusion (every block trained at once), at most 2 entropy-bounded steps a block (L/4 = 8 calls), "
           "tokens drawn at temperature 0.8: the most valid few-step point whose oracle NLL stays within 1 nat of H",
}


def fast_decoder_name() -> str:
    """The row name of ``FAST_DECODER`` in the benchmark and the lesson."""
    s = FAST_DECODER["sampler"]
    rule = s.get("strategy", "ancestral")
    option = {"entropy": "entropy_budget", "threshold": "threshold"}.get(rule)
    detail = f" {s[option]:g}" if option in s else ""
    temp = f", T={s['temperature']:g}" if s.get("temperature", 1.0) != 1.0 else ""
    return f"FAST_DECODER ({FAST_DECODER['checkpoint']}, {rule}{detail}, <= {s['num_steps']}/block{temp})"


def load_fast_decoder(device=None):
    """``(model, process, tokenizer, options)``: the checkpoint of ``FAST_DECODER`` on ``device`` (default
    ``diffnlp.device()``) and its sampler options, with ``end_id`` set to the tokenizer's [PAD], ready for
    ``process.sample(model, n, 32, generator=..., **options)`` or ``lm_eval.generate``."""
    from .runtime import device as best_device
    from .training.pretrained import load_pretrained

    model, process, tok, _ = load_pretrained(FAST_DECODER["checkpoint"])
    model.to(device if device is not None else best_device())
    return model, process, tok, {**FAST_DECODER["sampler"], "end_id": tok.pad_id}
