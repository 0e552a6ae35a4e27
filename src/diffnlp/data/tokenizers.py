"""Text as token ids: tokenizers, loaders for text a learner brings, and fixed-length batches.

A diffusion model for text never sees letters, only integer ids in ``0 .. vocab_size - 1``.
Two ids are special and are the same in every tokenizer here (DESIGN.md, Conventions)::

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

Loaders turn a local text file (``load_text_file``) or a HuggingFace dataset (``load_hf_dataset``,
the optional extra ``hf``) into a list of strings; ``pad_batch`` and ``pack`` turn id lists into
a ``(N, length)`` LongTensor, and ``batches`` walks its rows in seeded, shuffled mini-batches.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator, Sequence
from numbers import Integral
from pathlib import Path

import torch

from .._checks import check_int, check_tensor

PAD_TOKEN = "[PAD]"
MASK_TOKEN = "[MASK]"
SPECIAL_TOKENS = (PAD_TOKEN, MASK_TOKEN)  # ids 0 and 1, in this order, in every tokenizer
PAD_ID = 0
MASK_ID = 1


# ---- small checks shared by the functions below ---------------------------------------------------


def _check_text(name: str, text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__} {text!r:.80}")
    if not text.strip():
        raise ValueError(f"{name}={text!r:.80}: text is empty (or only whitespace); give at least one token")
    return text


def _check_texts(name: str, texts) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list or tuple of str, got {type(texts).__name__} {texts!r:.80}")
    if len(texts) == 0:
        raise ValueError(f"{name} is an empty list; give at least one text")
    return list(texts)


def _ids_to_list(name: str, ids) -> list[int]:
    """A list/tuple of ints or a 1-D integer tensor as a list of Python ints."""
    if isinstance(ids, torch.Tensor):
        check_tensor(name, ids, floating=False)
        if ids.ndim != 1 or ids.dtype == torch.bool:
            raise ValueError(f"{name} must be a 1-D integer tensor, got shape {tuple(ids.shape)} dtype {ids.dtype}")
        return ids.tolist()
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise TypeError(f"{name} must be a list/tuple of ints or a 1-D LongTensor, got {type(ids).__name__}")
    out = []
    for i, v in enumerate(ids):
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise TypeError(f"{name}[{i}] must be an int, got {type(v).__name__} {v!r:.40}")
        out.append(int(v))
    return out


def _id_lists(name: str, ids_lists) -> list[list[int]]:
    """A list of id sequences (lists, tuples or 1-D tensors), or a 2-D tensor, as lists of ints."""
    if isinstance(ids_lists, torch.Tensor):
        check_tensor(name, ids_lists, floating=False)
        if ids_lists.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, L) when a tensor, got shape {tuple(ids_lists.shape)}")
        rows = ids_lists.tolist()
    elif isinstance(ids_lists, (str, bytes)) or not isinstance(ids_lists, Sequence):
        raise TypeError(f"{name} must be a list of id lists or a 2-D LongTensor, got {type(ids_lists).__name__}")
    else:
        rows = [_ids_to_list(f"{name}[{i}]", row) for i, row in enumerate(ids_lists)]
    if len(rows) == 0:
        raise ValueError(f"{name} is empty; give at least one sequence of ids")
    return rows


def _check_path(name: str, path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike path, got {type(path).__name__} {path!r:.80}")
    return Path(path)


def _read_json_file(name: str, path) -> str:
    p = _check_path(name, path)
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
                         "(or diffnlp.data.text.load_tokenizer, which reads the kind)")
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

    def _check_ids(self, name: str, ids) -> list[int]:
        ids = _ids_to_list(name, ids)
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
        texts = _check_texts("texts", texts)
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
        rows = _id_lists("ids_2d", ids_2d)
        return [self.decode(row, skip_pad=skip_pad) for row in rows]

    def save(self, path) -> Path:
        """Write ``to_json()`` to ``path`` (UTF-8 JSON, never pickle) and return the path."""
        p = _check_path("path", path)
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
        tokens = _check_text("text", text).split()
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

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """Text to ids; no character is unknown (byte level)."""
        return list(self._tok.encode(_check_text("text", text), add_special_tokens=False).ids)

    def tokens(self, text: str) -> list[str]:
        """The token strings ``encode`` produces, to show a learner how a text was cut."""
        return list(self._tok.encode(_check_text("text", text), add_special_tokens=False).tokens)

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


# ---- text a learner brings --------------------------------------------------------------------------


def load_text_file(path, min_chars: int = 1) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped; lines shorter than ``min_chars`` are dropped."""
    p = _check_path("path", path)
    min_chars = check_int("min_chars", min_chars, 1)
    if not p.exists():
        raise ValueError(f"path={str(p)!r}: no such file")
    if not p.is_file():
        raise ValueError(f"path={str(p)!r} is a directory (or not a regular file); give a text file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"path={str(p)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    lines = [s for s in (line.strip() for line in text.splitlines()) if len(s) >= min_chars]
    if not lines:
        raise ValueError(f"path={str(p)!r} is empty: no line with at least min_chars={min_chars} characters")
    return lines


def _check_local_data_files(data_files) -> None:
    """A plain local path in ``data_files`` (no glob, no URL) must exist: say so before datasets does."""
    if data_files is None:
        return
    if isinstance(data_files, (str, os.PathLike)):
        items = [data_files]
    elif isinstance(data_files, dict):
        items = [f for v in data_files.values() for f in ([v] if isinstance(v, (str, os.PathLike)) else v)]
    elif isinstance(data_files, Sequence):
        items = list(data_files)
    else:
        raise TypeError(f"data_files must be a path, a list of paths or a dict split -> paths, "
                        f"got {type(data_files).__name__}")
    for f in items:
        s = os.fspath(f)
        if "://" not in s and not any(c in s for c in "*?[") and not Path(s).exists():
            raise ValueError(f"data_files: {s!r}: no such file")


def load_hf_dataset(path_or_name: str, split: str = "train", text_column: str = "text", data_files=None,
                    limit: int | None = None, cache_dir=None, **kwargs) -> list[str]:
    """Texts from a HuggingFace dataset, through ``datasets.load_dataset`` (the optional extra ``hf``).

    Works offline on local files with a packaged builder::

        load_hf_dataset("text", data_files="my_corpus.txt")                     # one row per line
        load_hf_dataset("json", data_files="stories.jsonl", text_column="story")

    A hub name (e.g. "roneneldan/TinyStories") needs the network once, then the cache
    (``HF_DATASETS_OFFLINE=1`` forbids the network; local builders never need it). Rows whose text is
    empty are dropped; ``limit`` keeps the first ``limit`` rows of the split. ``cache_dir`` and other
    keyword arguments go to ``load_dataset``.
    """
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise TypeError(f"path_or_name must be a str (a builder such as 'text' or 'json', a hub name or a local "
                        f"path), got {type(path_or_name).__name__}")
    for name, value in (("split", split), ("text_column", text_column)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name} must be a non-empty str, got {type(value).__name__} {value!r}")
    if limit is not None:
        limit = check_int("limit", limit, 1)
    _check_local_data_files(data_files)
    try:
        import datasets
    except ImportError as e:
        raise ImportError("load_hf_dataset needs the 'datasets' package: pip install -e .[hf]") from e

    if cache_dir is not None:
        kwargs["cache_dir"] = os.fspath(cache_dir)
    dd = datasets.load_dataset(os.fspath(path_or_name), data_files=data_files, **kwargs)
    if split not in dd:
        raise ValueError(f"split={split!r} is not in this dataset; available splits: {', '.join(map(repr, dd))}")
    ds = dd[split]
    if text_column not in ds.column_names:
        raise ValueError(f"text_column={text_column!r} is not a column of this dataset; available columns: "
                         f"{', '.join(map(repr, ds.column_names))}")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    texts = []
    for i, value in enumerate(ds[text_column]):
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(f"text_column={text_column!r} row {i} holds {type(value).__name__}, not text")
        if value.strip():
            texts.append(value.strip())
    if not texts:
        raise ValueError(f"text_column={text_column!r} of split={split!r} has no non-empty text")
    return texts


# ---- fixed-length batches ---------------------------------------------------------------------------


def pad_batch(ids_lists, length: int, pad_id: int = PAD_ID) -> torch.Tensor:
    """Id lists as a LongTensor (N, length), each right-padded with ``pad_id`` (one sequence per row).

    A list longer than ``length`` is a ValueError naming its index (a sequence longer than the model).
    """
    rows = _id_lists("ids_lists", ids_lists)
    length = check_int("length", length, 1)
    pad_id = check_int("pad_id", pad_id, 0)
    out = torch.full((len(rows), length), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        if len(row) > length:
            raise ValueError(f"ids_lists[{i}] has {len(row)} ids, more than length={length}: a sequence longer "
                             "than the model")
        if row:
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def pack(ids_lists, length: int, pad_id: int = PAD_ID, sep_id: int | None = None,
         drop_last: bool = False) -> torch.Tensor:
    """Concatenate id lists into one stream and cut it into rows of exactly ``length`` ids.

    The usual way to train on real text: nothing is wasted on padding, a row may start mid-sentence::

        pack([[5, 6, 7], [8, 9]], length=2, pad_id=0, sep_id=3)
        stream 5 6 7 3 8 9  ->  [[5, 6], [7, 3], [8, 9]]

    ``sep_id`` (optional) goes *between* consecutive lists. The last, short row is padded with
    ``pad_id``, or dropped with ``drop_last=True``.
    """
    rows = _id_lists("ids_lists", ids_lists)
    length = check_int("length", length, 1)
    pad_id = check_int("pad_id", pad_id, 0)
    if sep_id is not None:
        sep_id = check_int("sep_id", sep_id, 0)
    stream: list[int] = []
    for i, row in enumerate(rows):
        if i and sep_id is not None:
            stream.append(sep_id)
        stream.extend(row)
    if not stream:
        raise ValueError("ids_lists holds no ids: nothing to pack")
    n_full, rest = divmod(len(stream), length)
    if drop_last:
        if n_full == 0:
            raise ValueError(f"drop_last=True but the stream has only {len(stream)} ids, fewer than length={length}: "
                             "no full row")
        stream = stream[: n_full * length]
    elif rest:
        stream += [pad_id] * (length - rest)
    return torch.tensor(stream, dtype=torch.long).view(-1, length)


def batches(data: torch.Tensor, batch_size: int, seed: int = 0, shuffle: bool = True,
            drop_last: bool = False) -> Iterator[torch.Tensor]:
    """One epoch over ``data``'s rows in batches of ``batch_size`` (a generator of tensors).

    With ``shuffle`` the order is ``torch.randperm`` under ``seed`` (the same seed, the same
    batches); every row appears exactly once per epoch. The last batch is smaller unless
    ``drop_last=True`` drops it. Arguments are checked here, before the first batch is asked for.
    """
    check_tensor("data", data, ndim_min=1)
    n = data.shape[0]
    if n == 0:
        raise ValueError("data has no rows (shape[0] == 0)")
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed)
    if drop_last and batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than data's {n} rows with drop_last=True: "
                         "no batch would be produced")
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    else:
        order = torch.arange(n)
    stop = (n // batch_size) * batch_size if drop_last else n
    return _iter_batches(data, order, batch_size, stop)


def _iter_batches(data: torch.Tensor, order: torch.Tensor, batch_size: int, stop: int) -> Iterator[torch.Tensor]:
    for start in range(0, stop, batch_size):
        yield data[order[start : min(start + batch_size, stop)].to(data.device)]


__all__ = [
    "MASK_ID",
    "MASK_TOKEN",
    "PAD_ID",
    "PAD_TOKEN",
    "BPETokenizer",
    "WordTokenizer",
    "batches",
    "load_hf_dataset",
    "load_text_file",
    "load_tokenizer",
    "pack",
    "pad_batch",
    "train_bpe",
]
