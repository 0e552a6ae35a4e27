"""Lesson 03's pieces around Diffusion-LM: the shipped checkpoint and guidance classifier (headline
metrics recomputed from the files), attributes and control success, the widget driven from Python,
and bad inputs (the exercises: tests/test_exercises_lesson03.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from diffnlp.course.widgets.embedding import EmbeddingNoisingExplorer, pca_2d
from diffnlp.data.attributes import attribute_values, decode_stories, story_attributes
from diffnlp.data.stories import StoryGrammar
from diffnlp.evaluation import lm_eval
from diffnlp.evaluation.metrics import control_report
from diffnlp.models.embedding import EmbeddingDenoiser, NoisyClassifier
from diffnlp.processes.embedding import EmbeddingDiffusion, word_vectors
from diffnlp.sampling.guidance import ClassifierGuidance
from diffnlp.training.pretrained import PRETRAINED_DIR, load_guidance_classifier, load_pretrained
from diffnlp.training.recipes import train_text_recipe

G = StoryGrammar()
TOK = G.tokenizer()


GUIDANCE_SCALE = 4.0


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = EmbeddingDenoiser(vocab_size=TOK.vocab_size, max_len=32, embed_dim=8, num_train_timesteps=100,
                              d_model=32, n_layers=1, n_heads=2)
    return model.eval(), EmbeddingDiffusion(100)


@pytest.mark.slow
def test_shipped_diffusion_lm_headline_metrics():
    """README: >= 50 % valid with clamping (200 steps); guidance toward the bench's target place at least
    doubles the unguided success with >= 40 % valid. Recomputed from the files with n = 200 and 50 steps
    (the README's rows use 500 samples and 200 / 100 steps: fewer steps is the harder test)."""
    from diffnlp.training.recipes import GUIDANCE_TARGET

    model, process, tok, meta = load_pretrained("stories-diffusion-lm")
    clf, cmeta = load_guidance_classifier("stories-diffusion-lm-place")
    assert cmeta["attribute"] == GUIDANCE_TARGET[0] and cmeta["values"] == attribute_values(G, "place")
    rep = lm_eval.sample_quality(G, tok, model, process, n=200, seed=1, num_steps=50, clamp=True)
    assert rep.valid >= 0.5 and rep.distinct > 0.9
    attribute, target = GUIDANCE_TARGET
    guidance = ClassifierGuidance(clf, cmeta["values"].index(target), scale=GUIDANCE_SCALE)
    base = control_report(G, lm_eval.generate(model, process, 200, 32, num_steps=50, seed=2, clamp=True),
                          attribute, target, tok)
    guided = control_report(G, lm_eval.generate(model, process, 200, 32, num_steps=50, seed=2, clamp=True,
                                                guidance=guidance), attribute, target, tok)
    assert guided.success >= 2 * base.success and guided.valid >= 0.4, (base, guided)


def test_guidance_raises_the_target_rate_with_the_shipped_classifier():
    """On a fixed seed, guidance raises the share of samples at the target place (few steps, small n)."""
    model, process, tok, _ = load_pretrained("stories-diffusion-lm")
    clf, meta = load_guidance_classifier("stories-diffusion-lm-place")
    from diffnlp.training.recipes import GUIDANCE_TARGET

    target = GUIDANCE_TARGET[1]
    kw = dict(num_steps=40, seed=5, clamp=True)
    off = lm_eval.generate(model, process, 64, 32, **kw)
    on = lm_eval.generate(model, process, 64, 32, guidance=ClassifierGuidance(clf, meta["values"].index(target),
                                                                              scale=GUIDANCE_SCALE), **kw)
    rate = [sum(v == target for v in story_attributes(G, decode_stories(tok, x), "place")) for x in (off, on)]
    assert rate[1] > rate[0] + 5, rate


def test_diffusion_lm_live_recipe_fits_the_contract():
    model, process, history = train_text_recipe("stories-diffusion-lm-live", progress=False, steps=3,
                                                stories=256)
    assert isinstance(process, EmbeddingDiffusion) and len(history) == 3
    assert model.config.num_train_timesteps == process.num_train_timesteps == 1000
    assert process.gaussian.beta_schedule == "sqrt"


def test_load_pretrained_refuses_another_kind_of_model():
    with pytest.raises(ValueError, match="not the diffusion-lm model"):
        load_pretrained("stories-diffusion-lm", path=PRETRAINED_DIR / "stories-mdlm")
    with pytest.raises(ValueError, match="not a guidance classifier"):
        load_guidance_classifier("stories-diffusion-lm-place", path=PRETRAINED_DIR / "stories-diffusion-lm")


# ------------------------------------------------------------------ attributes and control
def test_attributes_come_from_the_parse():
    good = ("mia found a red kite at the beach . she sang about the kite all day . she sang about it all day . "
            "she was happy .")
    bad = good.replace("she sang about the kite", "he sang about the kite")
    assert story_attributes(G, [good, bad], "place") == ["beach", None]
    assert story_attributes(G, [good], "name") == ["mia"]
    rep = control_report(G, [good, bad, good.replace("beach", "park")], "place", "beach")
    assert rep.success == pytest.approx(1 / 3) and rep.valid == pytest.approx(2 / 3)
    assert len(attribute_values(G, "place")) == 16 >= 5
    with pytest.raises(ValueError, match="target='moon' is not a value of 'place'"):
        control_report(G, [good], "place", "moon")
    with pytest.raises(ValueError, match="attribute='colour'"):
        attribute_values(G, "colour")


def test_noisy_classifier_shapes_and_guidance_checks(tiny):
    model, process = tiny
    clf = NoisyClassifier(input_dim=8, num_classes=16, max_len=32, num_train_timesteps=100, d_model=32, n_layers=1)
    x = torch.randn(3, 32, 8)
    assert clf(x, torch.tensor([0, 5, 99])).shape == (3, 16)
    loss = process.classifier_loss(clf, model, torch.randint(2, 50, (4, 32)), torch.tensor([0, 1, 2, 15]))
    assert loss.shape == (4,) and torch.isfinite(loss).all()
    with pytest.raises(ValueError, match="target=16 is out of range"):
        ClassifierGuidance(clf, 16)
    with pytest.raises(ValueError, match="scale=-1.0 is out of range"):
        ClassifierGuidance(clf, 0, scale=-1.0)
    with pytest.raises(TypeError, match="guidance must be a ClassifierGuidance"):
        process.sample(model, 2, 32, 10, guidance=clf)


# ------------------------------------------------------------------ the widget
def test_embedding_noising_explorer_from_python(tiny):
    model, process = tiny
    e = EmbeddingNoisingExplorer(model, process, TOK, t=0)
    n = len(e.ids)
    right = [sum(a == b for a, b in zip(e.state(t)["rounded"], e.ids.tolist())) for t in (0, 99)]
    assert right[0] >= 0.9 * n > right[1]                 # barely noised: nearly every word is still its own nearest
    e.slider.value = 60
    assert "nearest word to x_t" in e.decoded.value and e.latencies and len(e.image.value) > 1000
    assert e.noisy.get_offsets().shape == (n, 2)
    e.clamp.value = True                                 # the prediction now sits exactly on word vectors
    pred = e.state()["pred"]
    E = word_vectors(model).detach()
    assert ((pred[:, None, :] - E).abs().amax(-1) < 1e-6).any(-1).all()
    e.text.value = "mia found a dragon"
    assert "dragon" in e.status.value                      # an unknown word: a clear message, no exception
    e.text.value = "mia found a red kite"
    assert len(e.ids) == 5 and e.status.value == ""
    fig = e.strip((0, 50, 99))
    assert len(fig.axes) == 3
    n = len(e.ids)
    for ax, t in zip(fig.axes, (0, 50, 99)):                # what the widget shows, for readers without a kernel
        s = e.state(t, clamp=False)
        markers = [c for c in ax.collections if len(c.get_offsets()) == n]
        assert len(markers) == 3                            # the words, the noisy x_t and the model's x0_hat
        assert np.allclose(markers[2].get_offsets(), e.project(s["pred"]))
        texts = [x.get_text() for x in ax.texts]
        assert any("nearest word to x_t" in x for x in texts) and any("model's x̂0" in x for x in texts)
        decoded = " ".join(x for x in texts if "nearest word" not in x)
        for ids in (s["rounded"], s["predicted"]):         # both decodings, word by word, under the panel
            assert all(TOK.vocab[i] in decoded for i in ids)
        right = sum(a == b for a, b in zip(s["predicted"], e.ids.tolist()))
        assert any(f"model's x̂0: {right}/{n} right" in x for x in texts)
    plt.close(fig)
    with pytest.raises(ValueError, match="dragon"):
        EmbeddingNoisingExplorer(model, process, TOK, text="mia found a dragon", t=0)
    with pytest.raises(ValueError, match="t=100 is out of range"):
        EmbeddingNoisingExplorer(model, process, TOK, t=100)
    with pytest.raises(TypeError, match="process must be"):
        EmbeddingNoisingExplorer(model, None, TOK, t=0)


def test_pca_2d_finds_the_principal_plane():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 5, generator=g) * torch.tensor([5.0, 0.1, 3.0, 0.1, 0.1])
    _, axes = pca_2d(x)
    assert abs(float(axes[0, 0])) > 0.99 and abs(float(axes[2, 1])) > 0.99
