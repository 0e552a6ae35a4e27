"""diffnlp.data.tokenizers and .loaders: word and BPE tokenizers, text loaders (file, HF datasets offline), batching."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from diffnlp.data.loaders import batches, load_hf_dataset, load_text_file, pack, pad_batch
from diffnlp.data.tokenizers import MASK_ID, PAD_ID, BPETokenizer, WordTokenizer, load_tokenizer, train_bpe

WORDS = ["mia", "leo", "found", "lost", "a", "the", "red", "blue", "kite", "ball", "in", "park", ".", "she", "was",
         "happy", "sad"]


@pytest.fixture(scope="module")
def tok():
    return WordTokenizer(WORDS)


def _corpus_lines(n=300):
    names, things, places = ["mia", "leo", "sam", "ava"], ["kite", "ball", "book", "cat"], ["park", "garden", "house"]
    lines = []
    for i in range(n):
        a, b, c = names[i % 4], things[(i // 4) % 4], places[(i // 16) % 3]
        lines.append(f"{a} found a red {b} in the {c}. {a} was happy, and the {b} was {i % 7} days old!")
    return lines


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus") / "stories.txt"
    p.write_text("\n".join(_corpus_lines()) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def bpe(corpus_file):
    return train_bpe(corpus_file, vocab_size=320, min_frequency=2)


# ---- WordTokenizer -----------------------------------------------------------------------------------


def test_word_ids_of_specials_and_words(tok):
    assert tok.pad_id == PAD_ID == 0 and tok.mask_id == MASK_ID == 1
    assert tok.pad_token == "[PAD]" and tok.mask_token == "[MASK]"
    assert tok.vocab[:3] == ["[PAD]", "[MASK]", "mia"]
    assert tok.vocab_size == len(WORDS) + 2 == len(tok)
    assert tok.token_to_id["mia"] == 2 and tok.token_to_id["."] == 2 + WORDS.index(".")
    assert tok.token_to_id == {t: i for i, t in enumerate(tok.vocab)}


def test_word_encode_decode_round_trip(tok):
    text = "mia found a red kite in the park ."
    ids = tok.encode(text)
    assert ids == [tok.token_to_id[w] for w in text.split()]
    assert tok.decode(ids) == text
    assert tok.decode(torch.tensor(ids)) == text
    assert tok.decode(tuple(ids)) == text
    assert tok.encode("  mia\tfound\n a  kite ") == tok.encode("mia found a kite")


def test_word_mask_and_pad_in_text(tok):
    ids = tok.encode("mia found a [MASK] kite . [PAD] [PAD]")
    assert ids[3] == 1 and ids[-2:] == [0, 0]
    assert tok.decode(ids) == "mia found a [MASK] kite ."
    assert tok.decode(ids, skip_pad=False) == "mia found a [MASK] kite . [PAD] [PAD]"


def test_word_encode_batch_pads_right_and_decode_batch(tok):
    texts = ["mia found a kite .", "leo was sad ."]
    x = tok.encode_batch(texts, length=7)
    assert x.dtype == torch.long and x.shape == (2, 7)
    assert x[0].tolist() == tok.encode(texts[0]) + [0, 0]
    assert x[1].tolist() == tok.encode(texts[1]) + [0, 0, 0]
    assert tok.decode_batch(x) == texts
    assert tok.decode_batch(x.tolist()) == texts
    assert tok.encode_batch(texts, length=5).shape == (2, 5)  # exactly full is fine


def test_word_json_and_file_round_trip(tok, tmp_path):
    again = WordTokenizer.from_json(tok.to_json())
    assert again.vocab == tok.vocab
    path = tok.save(tmp_path / "tok.json")
    assert json.loads(path.read_text())["kind"] == "diffnlp.WordTokenizer"
    assert WordTokenizer.load(path).vocab == tok.vocab
    assert isinstance(load_tokenizer(path), WordTokenizer)


@pytest.mark.parametrize(
    ("words", "err", "match"),
    [
        (["a", "b", "a"], ValueError, r"words\[2\]='a' duplicates words\[0\]"),
        (["a", "b c"], ValueError, r"words\[1\]='b c'.*whitespace"),
        (["a", ""], ValueError, r"words\[1\]=''"),
        (["a", "[MASK]"], ValueError, r"words\[1\]='\[MASK\]' is a special token"),
        (["[PAD]"], ValueError, r"words\[0\]='\[PAD\]' is a special token"),
        ([], ValueError, r"words is empty"),
        ("a b c", TypeError, r"words must be a list"),
        (["a", 3], TypeError, r"words\[1\] must be a str"),
    ],
)
def test_word_tokenizer_rejects_bad_vocabularies(words, err, match):
    with pytest.raises(err, match=match):
        WordTokenizer(words)


def test_word_encode_rejects_bad_text(tok):
    with pytest.raises(ValueError, match=r"text=''.*text is empty"):
        tok.encode("")
    with pytest.raises(ValueError, match=r"text is empty"):
        tok.encode("  \n ")
    with pytest.raises(TypeError, match=r"text must be a str, got list"):
        tok.encode(["mia"])
    with pytest.raises(ValueError, match=r"unknown word 'kites' at position 3; did you mean 'kite'"):
        tok.encode("mia found a kites .")
    with pytest.raises(ValueError, match=r"unknown word 'Mia' at position 0; did you mean 'mia'"):
        tok.encode("Mia found a kite")
    with pytest.raises(ValueError, match=r"unknown word 'zzzzzz' at position 1;.*vocabulary has 17 words"):
        tok.encode("mia zzzzzz")


def test_word_decode_rejects_bad_ids(tok):
    allowed = rf"allowed: 0 <= id < vocab_size={tok.vocab_size}"
    with pytest.raises(ValueError, match=rf"ids\[1\]=99 is out of range; {allowed}"):
        tok.decode([2, 99])
    with pytest.raises(ValueError, match=r"ids\[0\]=-1 is out of range"):
        tok.decode(torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match=r"ids must be a 1-D integer tensor, got shape \(1, 2\)"):
        tok.decode(torch.tensor([[2, 3]]))
    with pytest.raises(TypeError, match=r"ids must be an integer tensor"):
        tok.decode(torch.tensor([2.0, 3.0]))
    with pytest.raises(TypeError, match=r"ids\[1\] must be an int, got float"):
        tok.decode([2, 3.0])
    with pytest.raises(TypeError, match=r"ids must be a list/tuple of ints"):
        tok.decode("mia")


def test_word_encode_batch_rejects_bad_input(tok):
    longer = r"texts\[1\] has 5 tokens, more than length=4: a sequence longer than the model"
    with pytest.raises(ValueError, match=longer):
        tok.encode_batch(["mia", "mia found a kite ."], length=4)
    with pytest.raises(ValueError, match=r"texts is an empty list"):
        tok.encode_batch([], length=4)
    with pytest.raises(TypeError, match=r"texts must be a list or tuple of str"):
        tok.encode_batch("mia found", length=4)
    with pytest.raises(ValueError, match=r"texts\[1\]: text has an unknown word 'dog' at position 1"):
        tok.encode_batch(["mia", "a dog"], length=4)
    with pytest.raises(ValueError, match=r"texts\[0\]: text='': text is empty"):
        tok.encode_batch([""], length=4)
    with pytest.raises(ValueError, match=r"length=0 is out of range"):
        tok.encode_batch(["mia"], length=0)
    with pytest.raises(ValueError, match=r"ids_2d must be 2-D"):
        tok.decode_batch(torch.tensor([2, 3]))
    with pytest.raises(ValueError, match=r"ids_2d is empty"):
        tok.decode_batch([])


def test_tokenizer_json_of_the_wrong_kind_is_refused(tok, bpe, tmp_path):
    with pytest.raises(ValueError, match=r"data holds kind='diffnlp.BPETokenizer', not a 'diffnlp.WordTokenizer'"):
        WordTokenizer.from_json(bpe.to_json())
    with pytest.raises(ValueError, match=r"data holds kind='diffnlp.WordTokenizer', not a 'diffnlp.BPETokenizer'"):
        BPETokenizer.from_json(tok.to_json())
    with pytest.raises(ValueError, match=r"data holds kind=None"):
        WordTokenizer.from_json(json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"data is not valid JSON"):
        WordTokenizer.from_json("{not json")
    with pytest.raises(ValueError, match=r"data has no list 'words'"):
        WordTokenizer.from_json(json.dumps({"kind": "diffnlp.WordTokenizer"}))
    with pytest.raises(TypeError, match=r"data must be a JSON str"):
        WordTokenizer.from_json(b"{}")
    p = tmp_path / "other.json"
    p.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ValueError, match=r"path=.*other.json.* holds kind='something else'"):
        load_tokenizer(p)
    with pytest.raises(ValueError, match=r"data holds kind='something else'"):
        WordTokenizer.load(p)
    with pytest.raises(ValueError, match=r"path=.*missing.json.*no such file"):
        WordTokenizer.load(tmp_path / "missing.json")


# ---- BPE ---------------------------------------------------------------------------------------------


def test_bpe_specials_and_vocab_size(bpe):
    assert bpe.pad_id == 0 and bpe.mask_id == 1
    assert bpe.vocab[:2] == ["[PAD]", "[MASK]"]
    assert bpe.token_to_id["[PAD]"] == 0 and bpe.token_to_id["[MASK]"] == 1
    assert 258 < bpe.vocab_size <= 320  # the 256 bytes, the specials and some merges
    assert len(bpe.vocab) == bpe.vocab_size == len(bpe.token_to_id)


def test_bpe_learns_merges_that_shorten_the_corpus(bpe):
    line = _corpus_lines()[5]
    ids = bpe.encode(line)
    assert len(ids) < len(line.encode()) / 2  # frequent words became single tokens
    assert all(2 <= i < bpe.vocab_size for i in ids)


@pytest.mark.parametrize(
    "text",
    [
        "mia found a red kite in the park. mia was happy, and the kite was 3 days old!",
        "Completely new words: zebra QUIZ {json} x=1; tabs\tand  double  spaces ~",
        "  leading and trailing spaces  ",
        "unicode too: café, naïve, 日本, 🙂",
    ],
)
def test_bpe_round_trip(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


def test_bpe_mask_pad_and_batches(bpe):
    ids = bpe.encode("the [MASK] was red")
    assert 1 in ids and 0 not in ids
    assert bpe.decode(ids) == "the [MASK] was red"
    assert bpe.decode([*ids, 0, 0]) == "the [MASK] was red"
    assert bpe.decode([*ids, 0], skip_pad=False) == "the [MASK] was red[PAD]"
    texts = ["mia found a kite.", "leo was happy!"]
    x = bpe.encode_batch(texts, length=12)
    assert x.shape == (2, 12) and x.dtype == torch.long
    n0 = len(bpe.encode(texts[0]))
    assert x[0, :n0].tolist() == bpe.encode(texts[0]) and (x[0, n0:] == 0).all()
    assert bpe.decode_batch(x) == texts
    with pytest.raises(ValueError, match=r"texts\[0\] has \d+ tokens, more than length=2"):
        bpe.encode_batch(texts, length=2)
    with pytest.raises(ValueError, match=r"ids\[0\]=100000 is out of range"):
        bpe.decode([100000])
    with pytest.raises(ValueError, match=r"text is empty"):
        bpe.encode(" ")
    with pytest.raises(TypeError, match=r"text must be a str"):
        bpe.encode(3)


def test_bpe_save_load(bpe, tmp_path):
    path = bpe.save(tmp_path / "bpe.json")
    again = BPETokenizer.load(path)
    assert isinstance(load_tokenizer(path), BPETokenizer)
    assert again.vocab == bpe.vocab
    text = "ava found a blue ball in the garden."
    assert again.encode(text) == bpe.encode(text)


def test_train_bpe_on_texts_and_path_lists(corpus_file):
    lines = _corpus_lines(60)
    a = train_bpe(lines, vocab_size=280, min_frequency=1)
    assert a.vocab_size <= 280
    assert a.decode(a.encode(lines[0])) == lines[0]
    b = train_bpe([corpus_file, corpus_file], vocab_size=270)
    assert b.vocab_size <= 270


def test_train_bpe_rejects_bad_input(tmp_path):
    lines = _corpus_lines(20)
    with pytest.raises(ValueError, match=r"vocab_size=100 is out of range; allowed: 258 <= vocab_size"):
        train_bpe(lines, vocab_size=100)
    with pytest.raises(ValueError, match=r"vocab_size=3 is out of range"):
        train_bpe(lines, vocab_size=3)
    with pytest.raises(TypeError, match=r"vocab_size must be an int"):
        train_bpe(lines, vocab_size=300.0)
    with pytest.raises(ValueError, match=r"min_frequency=0 is out of range"):
        train_bpe(lines, vocab_size=300, min_frequency=0)
    missing = tmp_path / "nope.txt"
    with pytest.raises(ValueError, match=r"path=.*nope.txt.*no such file"):
        train_bpe(missing, vocab_size=300)
    with pytest.raises(ValueError, match=r"path=.*nope.txt.*no such file"):
        train_bpe([missing], vocab_size=300)
    with pytest.raises(ValueError, match=r"texts_or_files is an empty list: empty corpus"):
        train_bpe([], vocab_size=300)
    with pytest.raises(ValueError, match=r"texts_or_files holds only empty strings: empty corpus"):
        train_bpe(["", "  "], vocab_size=300)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match=r"path=.*empty.txt.* is empty"):
        train_bpe(empty, vocab_size=300)
    with pytest.raises(TypeError, match=r"texts_or_files\[1\] is a PosixPath|texts_or_files\[1\] is a WindowsPath"):
        train_bpe(["some text", tmp_path / "a.txt"], vocab_size=300)
    with pytest.raises(TypeError, match=r"texts_or_files must be a path"):
        train_bpe(42, vocab_size=300)


def test_bpe_tokenizer_requires_pad_and_mask_ids():
    from tokenizers import Tokenizer, models

    with pytest.raises(ValueError, match=r"tokenizer maps \[PAD\] to id None"):
        BPETokenizer(Tokenizer(models.BPE()))
    with pytest.raises(TypeError, match=r"tokenizer must be a tokenizers.Tokenizer"):
        BPETokenizer("gpt2")


# ---- load_text_file ----------------------------------------------------------------------------------


def test_load_text_file_strips_and_drops_blank_lines(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("  first line \n\n\t\nsecond\nab\n", encoding="utf-8")
    assert load_text_file(p) == ["first line", "second", "ab"]
    assert load_text_file(str(p), min_chars=3) == ["first line", "second"]


def test_load_text_file_rejects_bad_paths(tmp_path):
    with pytest.raises(ValueError, match=r"path=.*missing.txt.*no such file"):
        load_text_file(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match=r"path=.* is a directory"):
        load_text_file(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\n")
    with pytest.raises(ValueError, match=r"path=.*empty.txt.* is empty"):
        load_text_file(empty)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"path=.*latin.txt.* is not UTF-8"):
        load_text_file(latin)
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike"):
        load_text_file(3)
    with pytest.raises(ValueError, match=r"min_chars=0 is out of range"):
        load_text_file(empty, min_chars=0)


# ---- load_hf_dataset (offline, local files, a temporary cache) ---------------------------------------


@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    """No network and no cache outside tmp_path, whether or not datasets was imported already."""
    home = tmp_path / "hf_home"
    for var, value in {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(home),
                       "HF_DATASETS_CACHE": str(home / "datasets"), "HF_MODULES_CACHE": str(home / "modules"),
                       "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}.items():
        monkeypatch.setenv(var, value)
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    return tmp_path / "hf_cache"


def test_load_hf_dataset_local_text_file(tmp_path, hf_offline):
    p = tmp_path / "corpus.txt"
    p.write_text("mia found a kite .\n\nleo was sad .\n  third line  \n", encoding="utf-8")
    texts = load_hf_dataset("text", data_files=str(p), cache_dir=hf_offline)
    assert texts == ["mia found a kite .", "leo was sad .", "third line"]
    assert load_hf_dataset("text", data_files=str(p), limit=1, cache_dir=hf_offline) == ["mia found a kite ."]
    assert hf_offline.exists()  # the cache went where we said


def test_load_hf_dataset_local_json_lines(tmp_path, hf_offline):
    p = tmp_path / "stories.jsonl"
    rows = [{"id": i, "story": f"story number {i} ."} for i in range(5)]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    texts = load_hf_dataset("json", data_files=str(p), text_column="story", cache_dir=hf_offline)
    assert texts == [r["story"] for r in rows]
    with pytest.raises(ValueError, match=r"text_column='text' is not a column.*available columns: 'id', 'story'"):
        load_hf_dataset("json", data_files=str(p), cache_dir=hf_offline)
    with pytest.raises(ValueError, match=r"split='test' is not in this dataset; available splits: 'train'"):
        load_hf_dataset("json", data_files=str(p), split="test", text_column="story", cache_dir=hf_offline)
    with pytest.raises(TypeError, match=r"text_column='id' row 0 holds int"):
        load_hf_dataset("json", data_files=str(p), text_column="id", cache_dir=hf_offline)


def test_load_hf_dataset_rejects_bad_input_before_loading(tmp_path, hf_offline):
    with pytest.raises(ValueError, match=r"data_files: .*missing.txt.*no such file"):
        load_hf_dataset("text", data_files=str(tmp_path / "missing.txt"), cache_dir=hf_offline)
    with pytest.raises(ValueError, match=r"limit=0 is out of range"):
        load_hf_dataset("text", data_files=str(tmp_path / "x.txt"), limit=0, cache_dir=hf_offline)
    with pytest.raises(TypeError, match=r"text_column must be a non-empty str"):
        load_hf_dataset("text", text_column=None)
    with pytest.raises(TypeError, match=r"path_or_name must be a str"):
        load_hf_dataset(None)
    assert not hf_offline.exists()


def test_load_hf_dataset_without_datasets_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(ImportError, match=r"pip install -e \.\[hf\]"):
        load_hf_dataset("text", data_files=str(tmp_path))


# ---- pad_batch, pack, batches ------------------------------------------------------------------------


def test_pad_batch():
    x = pad_batch([[5, 6, 7], [8], []], length=4, pad_id=0)
    assert x.dtype == torch.long
    assert x.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [0, 0, 0, 0]]
    assert pad_batch([torch.tensor([3, 4])], length=3, pad_id=9).tolist() == [[3, 4, 9]]
    with pytest.raises(ValueError, match=r"ids_lists\[1\] has 3 ids, more than length=2"):
        pad_batch([[1], [1, 2, 3]], length=2, pad_id=0)
    with pytest.raises(ValueError, match=r"ids_lists is empty"):
        pad_batch([], length=2, pad_id=0)
    with pytest.raises(ValueError, match=r"pad_id=-1 is out of range"):
        pad_batch([[1]], length=2, pad_id=-1)
    with pytest.raises(TypeError, match=r"ids_lists\[0\]\[1\] must be an int"):
        pad_batch([[1, "a"]], length=2, pad_id=0)


def test_pack_exact_rows():
    assert pack([[5, 6, 7], [8, 9]], length=2, pad_id=0, sep_id=3).tolist() == [[5, 6], [7, 3], [8, 9]]
    assert pack([[5, 6, 7], [8, 9]], length=3, pad_id=0).tolist() == [[5, 6, 7], [8, 9, 0]]
    assert pack([[5, 6, 7], [8, 9]], length=3, pad_id=0, drop_last=True).tolist() == [[5, 6, 7]]
    assert pack([[5, 6, 7], [8, 9]], length=4, pad_id=2, sep_id=3).tolist() == [[5, 6, 7, 3], [8, 9, 2, 2]]
    assert pack(torch.tensor([[1, 2], [3, 4]]), length=3, pad_id=0).tolist() == [[1, 2, 3], [4, 0, 0]]
    x = pack([[4] * 10], length=5, pad_id=0)
    assert x.shape == (2, 5) and x.dtype == torch.long


def test_pack_rejects_bad_input():
    with pytest.raises(ValueError, match=r"ids_lists holds no ids"):
        pack([[], []], length=2, pad_id=0)
    with pytest.raises(ValueError, match=r"drop_last=True but the stream has only 3 ids, fewer than length=4"):
        pack([[1, 2, 3]], length=4, pad_id=0, drop_last=True)
    with pytest.raises(ValueError, match=r"length=0 is out of range"):
        pack([[1, 2, 3]], length=0, pad_id=0)
    with pytest.raises(ValueError, match=r"sep_id=-2 is out of range"):
        pack([[1, 2, 3]], length=2, pad_id=0, sep_id=-2)
    with pytest.raises(TypeError, match=r"ids_lists must be a list of id lists"):
        pack("abc", length=2, pad_id=0)


def test_batches_cover_every_row_once_and_are_seeded():
    data = torch.arange(23).unsqueeze(1) * torch.ones(1, 4, dtype=torch.long)  # row i is [i, i, i, i]
    first = list(batches(data, batch_size=5, seed=3))
    assert [len(b) for b in first] == [5, 5, 5, 5, 3]
    assert all(b.shape[1:] == (4,) and b.dtype == torch.long for b in first)
    seen = torch.cat(first)[:, 0]
    assert sorted(seen.tolist()) == list(range(23))  # every row exactly once
    again = list(batches(data, batch_size=5, seed=3))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other = torch.cat(list(batches(data, batch_size=5, seed=4)))[:, 0]
    assert not torch.equal(seen, other)
    assert seen.tolist() != list(range(23))  # shuffled
    plain = torch.cat(list(batches(data, batch_size=5, shuffle=False)))[:, 0]
    assert plain.tolist() == list(range(23))
    dropped = list(batches(data, batch_size=5, seed=3, drop_last=True))
    assert [len(b) for b in dropped] == [5, 5, 5, 5]
    assert torch.equal(torch.cat(dropped), torch.cat(first)[:20])


def test_batches_checks_arguments_eagerly():
    data = torch.zeros(4, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"batch_size=0 is out of range"):
        batches(data, batch_size=0)  # no next(): checks run when called
    with pytest.raises(ValueError, match=r"batch_size=5 is larger than data's 4 rows with drop_last=True"):
        batches(data, batch_size=5, drop_last=True)
    with pytest.raises(TypeError, match=r"data must be a torch.Tensor"):
        batches([[1, 2]], batch_size=1)
    with pytest.raises(ValueError, match=r"data has no rows"):
        batches(torch.zeros(0, 3), batch_size=1)
    with pytest.raises(TypeError, match=r"seed must be an int"):
        batches(data, batch_size=2, seed=1.5)
    assert len(list(batches(data, batch_size=10))) == 1
