"""The story grammar: exact probabilities, exact entropy, long-range structure, clear rejections."""

from __future__ import annotations

import math
import random

import pytest
import torch

from diffnlp.data.stories import InvalidStory, StoryGrammar
from diffnlp.processes.autoregressive import BigramLM

G = StoryGrammar()
VALID = ("mia found a red kite at the park . she sang about the kite all day . "
         "she laughed about it all night . she was happy .")


def test_log_prob_at_parse_equals_log_prob_at_generation():
    drawn = G.sample_with_log_prob(10_000, seed=0)
    assert max(abs(G.log_prob(s) - lp) for s, lp in drawn) < 1e-9
    assert all(G.is_valid(s) for s, _ in drawn)


def test_small_configuration_is_enumerable_and_sums_to_one():
    small = StoryGrammar.small()
    stories = list(small.enumerate())
    assert len(stories) == len({s for s, _ in stories})              # distinct choices, distinct stories
    assert abs(math.fsum(math.exp(lp) for _, lp in stories) - 1) < 1e-9
    assert all(abs(small.log_prob(s) - lp) < 1e-12 for s, lp in stories)
    exact = -math.fsum(math.exp(lp) * lp for _, lp in stories)
    assert abs(small.entropy() - exact) < 1e-9


def test_monte_carlo_entropy_within_one_percent():
    lps = [lp for _, lp in G.sample_with_log_prob(20_000, seed=11)]
    mc = -sum(lps) / len(lps)
    assert abs(mc - G.entropy()) / G.entropy() < 0.01


def test_size_and_scale():
    assert 100 <= len(G.vocab) <= 400
    assert G.max_tokens <= 40
    stories = G.sample(5000, seed=1)
    assert max(len(s.split()) for s in stories) <= G.max_tokens
    assert all(w in set(G.vocab) for s in stories for w in s.split())
    # more than 10^9 distinct stories: the entropy alone says at least e^H of them are needed
    assert G.entropy() > math.log(1e9)


def test_sampling_is_deterministic_and_splits_are_fixed_and_disjoint():
    assert G.sample(50, seed=3) == G.sample(50, seed=3) != G.sample(50, seed=4)
    train, val, test = G.split("train", 100_000), G.split("validation"), G.split("test")
    assert len(val) == len(test) == 2000 and len(train) > 99_000
    first = G.split("train", 1000)
    assert first == train[:len(first)]                                    # a prefix of the same draws
    assert not (set(train) & set(test)) and not (set(train) & set(val))
    assert StoryGrammar().split("test") == test


def test_bigram_model_misses_at_least_three_nats_of_long_range_structure():
    tok = G.tokenizer()
    train = tok.encode_batch(G.split("train", 100_000), 32)
    test = tok.encode_batch(G.split("test"), 32)
    bigram = BigramLM(tok.vocab_size, start_id=tok.mask_id).fit(train)
    excess = bigram.nll(test).mean().item() - G.entropy()
    assert excess >= 3.0, excess


@pytest.mark.parametrize("story,reason", [
    (VALID.replace(". she sang", ". he sang"), "'he', but mia is 'she'"),
    (VALID.replace("she sang", "she sings"), "changes the tense"),
    (VALID.replace("about the kite", "about the ball"), "object is the kite"),
    (VALID.replace("she was happy", "he was happy"), "the ending is about 'he'"),
    (VALID.replace("she was happy", "she was sad"), "cannot be 'sad'"),
    (VALID.replace("she sang about", "she cried about"), "does not follow the plot"),
    (VALID.replace("she was happy", "she is happy"), "changes the tense"),
    (VALID.replace("at the park", "at a park"), "sentence 1 must be"),
    (VALID.replace(" she laughed about it all night .", ""), "4 sentences"),
    (VALID.replace("red kite", "red dragon"), "not a word"),
    (VALID.replace("all night", "all park"), "not a time"),
    (VALID.replace("about it all", "about the kite all"), "sentence 3 must be"),
    ("", "empty"),
    (VALID.replace("she laughed about it all night .", "."), "sentence 3 is empty"),
    (VALID[:-2], "end with '.'"),
    (VALID.replace("she was happy", "she was happy very"), "the last sentence must be"),
])
def test_rejections_say_which_rule_is_broken(story, reason):
    valid, why = G.is_valid(story, explain=True)
    assert not valid and reason in why, why
    assert G.log_prob(story) == -math.inf
    with pytest.raises(InvalidStory):
        G.parse(story)


def test_corrupted_stories_never_crash_the_parser():
    rng = random.Random(0)
    base = G.sample(300, seed=5)
    words = G.vocab + ["."] * 5
    for _ in range(3000):
        w = rng.choice(base).split()
        for _ in range(rng.randint(1, 3)):
            j = rng.randrange(len(w))
            op = rng.random()
            if op < 0.4:
                w[j] = rng.choice(words)
            elif op < 0.7:
                del w[j]
            else:
                w.insert(j, rng.choice(words))
            if not w:
                break
        valid, why = G.is_valid(" ".join(w), explain=True)
        assert valid == (why is None) and valid == (G.log_prob(" ".join(w)) > -math.inf)


def test_the_example_is_valid_and_lengths_are_28_or_29():
    assert G.is_valid(VALID)
    assert {len(s.split()) for s in G.sample(2000, seed=4)} == {28, 29}


def test_the_parser_accepts_exactly_the_generated_stories_of_the_small_grammar():
    small = StoryGrammar.small()
    language = {s for s, _ in small.enumerate()}
    rng = random.Random(1)
    base = sorted(language)
    words = small.vocab + ["."] * 3
    accepted = 0
    for _ in range(4000):
        w = rng.choice(base).split()
        for _ in range(rng.randint(1, 2)):
            j = rng.randrange(len(w))
            w[j] = rng.choice(words)
        story = " ".join(w)
        if small.is_valid(story):
            accepted += 1
            assert story in language, story
    assert accepted > 50                                   # some corruptions land on other valid stories
    assert small.is_valid(base[0]) and not small.is_valid(base[0] + " ")
    assert not small.is_valid(base[0].replace(" ", "  ", 1))


def test_bad_arguments():
    with pytest.raises(TypeError, match="story"):
        G.is_valid(3)
    with pytest.raises(ValueError, match="split"):
        G.split("dev")
    with pytest.raises(ValueError, match="n="):
        G.sample(-1)
    with pytest.raises(ValueError, match="limit"):
        next(iter(G.enumerate(limit=10))) and list(G.enumerate(limit=10))


def test_tokenizer_round_trip_of_stories():
    tok = G.tokenizer()
    stories = G.sample(20, seed=2)
    ids = tok.encode_batch(stories, 32)
    assert ids.shape == (20, 32) and (ids[:, -1] == tok.pad_id).all()
    assert tok.decode_batch(ids) == stories
    assert torch.equal(tok.encode_batch(tok.decode_batch(ids), 32), ids)
