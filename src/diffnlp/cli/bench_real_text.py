"""``python -m diffnlp bench real_text``: lesson 07's shipped models on held-out Shakespeare, in bits per byte
(= bits per character: the corpus is ASCII), MDLM's bound against AR's exact NLL, with a unigram baseline and the
MDLM paper's ratio on OpenWebText for scale."""

from __future__ import annotations

import math

from ..data.corpus import encode_works, load_works, token_bytes, windows
from ..evaluation.real_text import bits_per_byte, unigram_bits_per_byte
from ..training.pretrained import load_pretrained

# MDLM (Sahoo et al. 2024), OpenWebText test perplexity: AR 17.54, MDLM <= 23.21 (per token, the same GPT-2
# tokenizer), so MDLM's bound is ln 23.21 / ln 17.54 = 1.098 times AR's NLL.
PAPER_RATIO = math.log(23.21) / math.log(17.54)
GOAL_RATIO = 1.10


def bench_real_text(n_samples: int = 32) -> dict:
    """Bits per byte of ``shakespeare-mdlm`` (NELBO, ``n_samples`` draws a row) and ``shakespeare-ar`` (exact) on
    every disjoint 64-token row of the test play (Hamlet) and the validation play (Macbeth)."""
    models = {name: load_pretrained(name) for name in ("shakespeare-mdlm", "shakespeare-ar")}
    tok = models["shakespeare-mdlm"][2]
    tb = token_bytes(tok)
    length = models["shakespeare-mdlm"][0].config.max_len
    streams = {s: encode_works(tok, s) for s in ("train", "validation", "test")}     # each split encoded once
    train_rows = windows(streams["train"].values(), length)
    out = {"paper_ratio_owt": PAPER_RATIO, "goal_ratio": GOAL_RATIO, "n_samples": n_samples, "length": length,
           "corpus": {s: {"works": len(ids), "characters": sum(map(len, load_works(s).values())),
                          "tokens": sum(map(len, ids.values()))} for s, ids in streams.items()},
           "checkpoints": {k: {"recipe": m[3]["recipe"], "train_s": m[3]["train_s"], "steps": m[3]["steps"]}
                           for k, m in models.items()}, "splits": {}}
    for split in ("test", "validation"):
        rows = windows(streams[split].values(), length)
        row = {"rows": len(rows), "bytes": int(tb[rows].sum()), "unigram": unigram_bits_per_byte(train_rows, rows, tb)}
        for name, (model, process, _, _) in models.items():
            bpb, err = bits_per_byte(model, process, rows, tb, n_samples=n_samples, seed=0)
            row[name] = {"bits_per_byte": bpb, "stderr": err}
        row["ratio"] = row["shakespeare-mdlm"]["bits_per_byte"] / row["shakespeare-ar"]["bits_per_byte"]
        out["splits"][split] = row
    out["goal_met"] = out["splits"]["test"]["ratio"] <= GOAL_RATIO
    return out

