"""Text a learner brings, and fixed-length batches of ids.

Loaders turn a local text file (``load_text_file``) or a HuggingFace dataset (``load_hf_dataset``,
the optional extra ``hf``) into a list of strings; ``pad_batch`` and ``pack`` turn id lists into
a ``(N, length)`` LongTensor, and ``batches`` walks its rows in seeded, shuffled mini-batches.
Nothing is downloaded: the dataset loader reads local files through ``datasets``' packaged builders.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from .._checks import check_id_lists, check_int, check_path, check_tensor
from .tokenizers import PAD_ID

# ---- text a learner brings --------------------------------------------------------------------------


def load_text_file(path, min_chars: int = 1) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped; lines shorter than ``min_chars`` are dropped."""
    p = check_path("path", path)
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
    rows = check_id_lists("ids_lists", ids_lists)
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
    rows = check_id_lists("ids_lists", ids_lists)
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


__all__ = ["batches", "load_hf_dataset", "load_text_file", "pack", "pad_batch"]
