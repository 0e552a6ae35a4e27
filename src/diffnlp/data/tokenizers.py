"""Text as token ids: the two tokenizers of the course.

A diffusion model for text never sees letters, only integer ids in ``0 .. vocab_size - 1``.
Two ids are special and are the same in every tokenizer here (docs/notation.md)::

    [PAD] = 0   fills a sequence up to the model's fixed length (and is modelled, like a word)
    [MASK] = 1  the absorbing state of masked diffusion: "this token has been noised away"

Two tokenizers share one interface (``encode``, ``decode``, ``encode_batch``, ``decode_batch``,
``vocab_size``, ``pad_id``, ``mask_id``, ``save``/``load`` as JSON, never pickle):

- ``WordTokenizer`` for a closed vocabulary, e.g. the story grammar's word list: one id per word
  or punctuation mark, text split on whitespace ("mia found a red kite ."). Every id is a word a
  learner can read, so a denoising trajectory prints as a sentence filling in.
- ``BPETokenizer``, trained locally with HuggingFace ``tokenizers`` by ``train_bpe`` on any text:
  byte pair encoding starts from single bytes and repeatedly merges the most frequent adjacent
  pair into a new token, until the vocabulary has ``vocab_size`` entries.

Text a learner brings (files, datasets) and fixed-length batches are in ``diffnlp.data.loaders``.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .._checks import check_id_list, check_id_lists, check_int, check_path, check_text, check_texts

PAD_TOKEN = "[PAD]"
MASK_TOKEN = "[MASK]"
SPECIAL_TOKENS = (PAD_TOKEN, MASK_TOKEN)  # ids 0 and 1, in this order, in every tokenizer
PAD_ID = 0
MASK_ID = 1


def _read_json_file(name: str, path) -> str:
    p = check_path(name, path)
    if not p.is_file():
        raise ValueError(f"{name}={str(p)!r}: no such file (a tokenizer saved with .save(path))")
    return p.read_text(encoding="utf-8")


def _parse_tokenizer_json(data, kind: str) -> dict:
    """Parse our JSON wrapper ``{"kind": ..., ...}`` and check that it holds a tokenizer of ``kind``."""
    if not isinstance(data, str):
        raise TypeError(f"data must be a JSON str, got {type(data).__name__}")
    try:
        obj = json.loads(data)
    except json.JSONDecodeError as e:
        raise ValueError(f"data is not valid JSON ({e}); expected the output of {kind}.to_json()") from e
    got = obj.get("kind") if isinstance(obj, dict) else None
    if got != f"diffnlp.{kind}":
        raise ValueError(f"data holds kind={got!r}, not a 'diffnlp.{kind}'; load it with the matching class "
                         "(or diffnlp.data.tokenizers.load_tokenizer, which reads the kind)")
    return obj


# ---- the interface both tokenizers share ----------------------------------------------------------


class _Tokenizer:
    """What WordTokenizer and BPETokenizer have in common: specials, batches, ids checks, files."""

    pad_token = PAD_TOKEN
    mask_token = MASK_TOKEN
    pad_id = PAD_ID
    mask_id = MASK_ID

    # subclasses define: vocab_size, vocab, token_to_id, encode, _decode_checked, to_json, from_json

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def labels(self) -> list[str]:
        """A readable label for every id, in id order, for widgets and figures (here: the vocabulary)."""
        return self.vocab

    def _check_ids(self, name: str, ids) -> list[int]:
        ids = check_id_list(name, ids)
        for i, v in enumerate(ids):
            if not 0 <= v < self.vocab_size:
                raise ValueError(f"{name}[{i}]={v} is out of range; allowed: 0 <= id < vocab_size={self.vocab_size}")
        return ids

    def decode(self, ids, skip_pad: bool = True) -> str:
        """Ids (list, tuple or 1-D LongTensor) back to text. ``[PAD]`` is dropped unless ``skip_pad=False``;
        ``[MASK]`` always shows as "[MASK]", so a half-denoised sequence reads as a fill-in-the-blanks."""
        ids = self._check_ids("ids", ids)
        if skip_pad:
            ids = [i for i in ids if i != self.pad_id]
        return self._decode_checked(ids)

    def encode_batch(self, texts, length: int) -> torch.Tensor:
        """Texts as a LongTensor (N, length), each right-padded with ``pad_id``.

        A text with more than ``length`` tokens is an error (a sequence longer than the model), never
        silently cut: the model has a fixed length and the end of a story is part of what it learns."""
        texts = check_texts("texts", texts)
        length = check_int("length", length, 1)
        rows = []
        for i, text in enumerate(texts):
            try:
                ids = self.encode(text)
            except (TypeError, ValueError) as e:
                raise type(e)(f"texts[{i}]: {e}") from e
            if len(ids) > length:
                raise ValueError(f"texts[{i}] has {len(ids)} tokens, more than length={length}: a sequence longer "
                                 "than the model; shorten the text or raise length")
            rows.append(ids + [self.pad_id] * (length - len(ids)))
        return torch.tensor(rows, dtype=torch.long)  # the ids come from encode: no need to check them again

    def decode_batch(self, ids_2d, skip_pad: bool = True) -> list[str]:
        """A 2-D LongTensor (N, L) or a list of id lists back to N strings."""
        rows = check_id_lists("ids_2d", ids_2d)
        return [self.decode(row, skip_pad=skip_pad) for row in rows]

    def save(self, path) -> Path:
        """Write ``to_json()`` to ``path`` (UTF-8 JSON, never pickle) and return the path."""
        p = check_path("path", path)
        p.write_text(self.to_json(), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path):
        """Read a tokenizer written by ``save``; a file holding another kind of tokenizer is a ValueError."""
        return cls.from_json(_read_json_file("path", path))


# ---- a closed vocabulary: one id per word -----------------------------------------------------------


class WordTokenizer(_Tokenizer):
    """Word-level tokenizer for a closed vocabulary: ``[PAD]`` = 0, ``[MASK]`` = 1, then ``words`` in order.

    Text is split on whitespace, so punctuation must be written as its own token
    ("mia found a red kite ."). "[MASK]" and "[PAD]" may be typed in a text and map to their ids,
    so a learner can ask a model to fill in "mia found a [MASK] kite .".
    """

    def __init__(self, words):
        if isinstance(words, str) or not isinstance(words, Sequence):
            raise TypeError(f"words must be a list or tuple of str, got {type(words).__name__} {words!r:.80}")
        if len(words) == 0:
            raise ValueError("words is empty; give the vocabulary's words (specials [PAD] and [MASK] are added)")
        seen: dict[str, int] = {}
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise TypeError(f"words[{i}] must be a str, got {type(w).__name__} {w!r:.40}")
            if not w or any(c.isspace() for c in w):
                raise ValueError(f"words[{i}]={w!r} is empty or contains whitespace; a word is one token "
                                 "of whitespace-split text")
            if w in SPECIAL_TOKENS:
                raise ValueError(f"words[{i}]={w!r} is a special token; {PAD_TOKEN} and {MASK_TOKEN} are added "
                                 "as ids 0 and 1 by the tokenizer itself")
            if w in seen:
                raise ValueError(f"words[{i}]={w!r} duplicates words[{seen[w]}]; each word must appear once")
            seen[w] = i
        self._vocab = [*SPECIAL_TOKENS, *words]
        self._token_to_id = {tok: i for i, tok in enumerate(self._vocab)}

    @property
    def vocab(self) -> list[str]:
        """All token strings in id order: ``["[PAD]", "[MASK]", *words]``."""
        return list(self._vocab)

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def token_to_id(self) -> dict[str, int]:
        return dict(self._token_to_id)

    @property
    def words(self) -> list[str]:
        """The vocabulary without the two special tokens (what the constructor was given)."""
        return self._vocab[len(SPECIAL_TOKENS) :]

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """Whitespace-split ``text`` into ids; an unknown word is a ValueError naming it, its position
        and the closest vocabulary words."""
        tokens = check_text("text", text).split()
        ids = []
        for pos, tok in enumerate(tokens):
            i = self._token_to_id.get(tok)
            if i is None:
                raise ValueError(f"text has an unknown word {tok!r} at position {pos}; {self._hint(tok)}")
            ids.append(i)
        return ids

    def _hint(self, word: str) -> str:
        close = difflib.get_close_matches(word, self.words, n=3, cutoff=0.6)
        if not close and word.lower() != word:
            close = difflib.get_close_matches(word.lower(), self.words, n=3, cutoff=0.6)
        if close:
            return f"did you mean {', '.join(map(repr, close))}? (words and punctuation are separated by spaces)"
        some = ", ".join(map(repr, self.words[:8]))
        return f"the vocabulary has {len(self.words)} words, e.g. {some}"

    def _decode_checked(self, ids: list[int]) -> str:
        return " ".join(self._vocab[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"kind": "diffnlp.WordTokenizer", "version": 1, "words": self.words}, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> WordTokenizer:
        obj = _parse_tokenizer_json(data, "WordTokenizer")
        if not isinstance(obj.get("words"), list):
            raise ValueError("data has no list 'words'; expected the output of WordTokenizer.to_json()")
        return cls(obj["words"])


# ---- byte pair encoding for any text: HuggingFace tokenizers ----------------------------------------


def _byte_alphabet_size() -> int:
    from tokenizers import pre_tokenizers

    return len(pre_tokenizers.ByteLevel.alphabet())  # 256: every byte has a token, so nothing is unknown


class BPETokenizer(_Tokenizer):
    """A byte-level BPE tokenizer (a wrapped ``tokenizers.Tokenizer``) with ``[PAD]`` = 0 and ``[MASK]`` = 1.

    Byte level (GPT-2's scheme): text is first turned into UTF-8 bytes, each byte shown as one
    printable character (a space becomes "Ġ"), and the pre-tokenizer splits words with the space
    in front of them ("the cat" -> "the", "Ġcat"). All 256 bytes are in the vocabulary, so any
    character encodes (an emoji as several byte tokens) and ``decode(encode(text)) == text``.
    Build one with ``train_bpe``; "[MASK]" and "[PAD]" typed in a text map to their ids.
    """

    def __init__(self, tokenizer):
        try:
            from tokenizers import Tokenizer
        except ImportError as e:  # pragma: no cover - tokenizers is a main dependency
            raise ImportError("BPETokenizer needs the 'tokenizers' package: pip install -e .") from e
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a tokenizers.Tokenizer (see train_bpe), got {type(tokenizer).__name__}")
        for want, tok in enumerate(SPECIAL_TOKENS):
            got = tokenizer.token_to_id(tok)
            if got != want:
                raise ValueError(f"tokenizer maps {tok} to id {got}; diffnlp needs {PAD_TOKEN}=0 and {MASK_TOKEN}=1 "
                                 "(train it with train_bpe)")
        self._tok = tokenizer
        self._labels: list[str] | None = None     # made on first use (``labels``)

    @property
    def tokenizer(self):
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tok

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def vocab(self) -> list[str]:
        """All token strings in id order (byte-level: a leading "Ġ" is a space)."""
        return [self._tok.id_to_token(i) for i in range(self.vocab_size)]

    @property
    def token_to_id(self) -> dict[str, int]:
        return dict(self._tok.get_vocab(with_added_tokens=True))

    @property
    def labels(self) -> list[str]:
        """Each token as the text it stands for, with a space shown as "·" and a line break as "↵" ("Ġthe" ->
        "·the"); a token that is part of a multi-byte character shows as "\ufffd"."""
        if self._labels is None:
            specials = set(SPECIAL_TOKENS)
            self._labels = [tok if tok in specials else
                            self._tok.decode([i], skip_special_tokens=False).replace(" ", "·").replace("\n", "↵")
                            for i, tok in enumerate(self.vocab)]
        return self._labels

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """Text to ids; no character is unknown (byte level)."""
        return list(self._tok.encode(check_text("text", text), add_special_tokens=False).ids)

    def tokens(self, text: str) -> list[str]:
        """The token strings ``encode`` produces, to show a learner how a text was cut."""
        return list(self._tok.encode(check_text("text", text), add_special_tokens=False).tokens)

    def _decode_checked(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=False)

    def to_json(self) -> str:
        return json.dumps({"kind": "diffnlp.BPETokenizer", "version": 1, "tokenizer": json.loads(self._tok.to_str())},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> BPETokenizer:
        from tokenizers import Tokenizer

        obj = _parse_tokenizer_json(data, "BPETokenizer")
        if not isinstance(obj.get("tokenizer"), dict):
            raise ValueError("data has no object 'tokenizer'; expected the output of BPETokenizer.to_json()")
        try:
            tok = Tokenizer.from_str(json.dumps(obj["tokenizer"]))
        except Exception as e:  # tokenizers raises its own Exception type for a malformed definition
            raise ValueError(f"data's 'tokenizer' is not a valid tokenizers definition: {e}") from e
        return cls(tok)


def _corpus(texts_or_files) -> list[str]:
    """The training texts: one path (str or PathLike), a list of Path objects, or a list of str texts."""
    from .loaders import load_text_file

    if isinstance(texts_or_files, (str, os.PathLike)):
        return load_text_file(texts_or_files)
    if not isinstance(texts_or_files, Sequence):
        raise TypeError("texts_or_files must be a path, a list of pathlib.Path or a list of str texts, "
                        f"got {type(texts_or_files).__name__}")
    if len(texts_or_files) == 0:
        raise ValueError("texts_or_files is an empty list: empty corpus; give texts or files to train on")
    if all(isinstance(x, os.PathLike) for x in texts_or_files):
        return [line for p in texts_or_files for line in load_text_file(p)]
    for i, x in enumerate(texts_or_files):
        if not isinstance(x, str):
            raise TypeError(f"texts_or_files[{i}] is a {type(x).__name__}; give all str texts or all pathlib.Path "
                            "files (a list of str is read as texts, not file names)")
    texts = [t for t in texts_or_files if t.strip()]
    if not texts:
        raise ValueError("texts_or_files holds only empty strings: empty corpus")
    return texts


def train_bpe(texts_or_files, vocab_size: int = 1000, min_frequency: int = 2) -> BPETokenizer:
    """Train a byte-level BPE tokenizer locally (no download) with HuggingFace ``tokenizers``.

    ``texts_or_files``: a list of str texts, or one file path (str or PathLike), or a list of
    ``pathlib.Path`` files (each read with ``load_text_file``). BPE starts from the 256 byte tokens
    and adds merges of the most frequent adjacent pair (seen at least ``min_frequency`` times) until
    the vocabulary has ``vocab_size`` tokens (fewer when the corpus runs out of pairs), so
    ``vocab_size`` must be at least 2 specials + 256 bytes = 258.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    smallest = max(4, len(SPECIAL_TOKENS) + len(alphabet))
    vocab_size = check_int("vocab_size", vocab_size, smallest)
    min_frequency = check_int("min_frequency", min_frequency, 1)
    texts = _corpus(texts_or_files)

    tok = Tokenizer(models.BPE())
    # add_prefix_space=False: the first word of a text keeps no invented space, so decode is exact.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return BPETokenizer(tok)


def load_tokenizer(path) -> WordTokenizer | BPETokenizer:
    """Read a tokenizer saved by ``WordTokenizer.save`` or ``BPETokenizer.save``; the file says which."""
    data = _read_json_file("path", path)
    try:
        kind = json.loads(data).get("kind")
    except (json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"path={str(path)!r} is not a diffnlp tokenizer JSON file") from e
    classes = {"diffnlp.WordTokenizer": WordTokenizer, "diffnlp.BPETokenizer": BPETokenizer}
    if kind not in classes:
        raise ValueError(f"path={str(path)!r} holds kind={kind!r}; expected one of {', '.join(map(repr, classes))}")
    return classes[kind].from_json(data)


__all__ = ["MASK_ID", "MASK_TOKEN", "PAD_ID", "PAD_TOKEN", "SPECIAL_TOKENS", "BPETokenizer", "WordTokenizer",
           "load_tokenizer", "train_bpe"]
