"""Lesson 05's plumbing: the class-conditional Transformer behind classifier-free guidance, the frontier
measurements (speed against quality), every process through ``lm_eval``, AR's early stop, the
UnmaskingPlayer's remasked tokens, and the lesson-05 recipes."""

from __future__ import annotations

import pytest
import torch

from diffnlp.data.stories import StoryGrammar
from diffnlp.evaluation import frontier, lm_eval
from diffnlp.evaluation.frontier import decoders, latency_verdict, speed_claims, speed_quality
from diffnlp.evaluation.metrics import non_decreasing_within_ci
from diffnlp.models.transformer import Transformer
from diffnlp.processes.autoregressive import Autoregressive
from diffnlp.processes.block import BlockDiffusion
from diffnlp.processes.d3pm import D3PM
from diffnlp.processes.flow_matching import MaskedFlowMatching
from diffnlp.processes.masked import MaskedDiffusion
from diffnlp.processes.sedd import ScoreEntropy
from diffnlp.sampling.guidance import ClassifierFreeGuidance, Conditioned
from diffnlp.training.checkpoints import load_checkpoint, save_checkpoint
from diffnlp.training.recipes import TEXT_RECIPES, build_text_model, story_data, story_labels, train_text_recipe

G = StoryGrammar()
TOK = G.tokenizer()
V, M, PAD = TOK.vocab_size, TOK.mask_id, TOK.pad_id


def _tiny(**kw):
    torch.manual_seed(0)
    return Transformer(vocab_size=V, max_len=32, d_model=32, n_layers=1, n_heads=2, **kw).eval()


def test_conditional_transformer_and_guidance_for_a_label():
    model = _tiny(num_classes=5)
    z = torch.full((3, 16), M)
    z[:, :4] = torch.tensor([2, 62, 66, 78])
    t = torch.rand(3)
    with torch.no_grad():
        for c in range(5):
            want = torch.log_softmax(model(z, t, label=torch.full((3,), c)).double(), -1)
            got = ClassifierFreeGuidance.for_label(model, c, 1.0)(z, t)
            assert torch.allclose(got, want)
        uncond = torch.log_softmax(model(z, t).double(), -1)       # no label = the "no label" class
        assert torch.allclose(ClassifierFreeGuidance.for_label(model, 2, 0.0)(z, t), uncond)
        assert torch.allclose(model(z, t, label=torch.full((3,), 5)), model(z, t))
        a, b = model(z, t, label=torch.zeros(3, dtype=torch.long)), model(z, t, label=torch.ones(3, dtype=torch.long))
        assert not torch.allclose(a, b)                            # the label matters
        w2 = ClassifierFreeGuidance.for_label(model, 1, 2.0)(z, t)
        cond = torch.log_softmax(b.double(), -1)
        assert torch.allclose(w2, torch.log_softmax(2 * cond - uncond, -1))


def test_label_errors():
    model = _tiny(num_classes=5)
    z = torch.full((2, 16), M)
    with pytest.raises(ValueError, match=r"label must be class ids of shape \(2,\) in 0..5"):
        model(z, None, label=torch.tensor([0, 6]))
    with pytest.raises(TypeError, match="label must be an integer tensor"):
        model(z, None, label=torch.zeros(2))
    with pytest.raises(ValueError, match="num_classes=0"):
        _tiny()(z, None, label=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="label=5 is out of range"):
        Conditioned(model, 5)
    with pytest.raises(ValueError, match="class-conditional"):
        Conditioned(_tiny(), 0)
    with pytest.raises(TypeError, match="label must be an int"):
        ClassifierFreeGuidance.for_label(model, None)


def test_non_decreasing_within_ci():
    assert non_decreasing_within_ci([0.1, 0.5, 0.48, 0.6], [0.01, 0.02, 0.02, 0.02])
    assert not non_decreasing_within_ci([0.1, 0.5, 0.40, 0.6], [0.01, 0.02, 0.02, 0.02])
    with pytest.raises(ValueError, match="same length"):
        non_decreasing_within_ci([0.1], [])


def test_latency_verdict_picks_the_fastest_close_decoder():
    rows = {"AR (KV cache)": {"valid": 0.99, "ms_batch1": 60.0, "tokens_per_s_batch64": 15000.0},
            "a": {"valid": 0.95, "ms_batch1": 20.0, "tokens_per_s_batch64": 9000.0},
            "b": {"valid": 0.80, "ms_batch1": 5.0, "tokens_per_s_batch64": 90000.0},
            "c": {"valid": 0.97, "ms_batch1": 40.0, "tokens_per_s_batch64": 20000.0}}
    v = latency_verdict(rows)
    assert v["fastest_within"] == "a" and v["speedup_batch1"] == pytest.approx(3.0)
    assert v["at_quarter"] == {}
    rows["MDLM K=8"] = {"valid": 0.5, "ms_batch1": 15.0, "tokens_per_s_batch64": 7500.0}
    rows["BD3 2/block (K=8)"] = {"valid": 0.9, "ms_batch1": 30.0, "tokens_per_s_batch64": 10000.0}
    rows["MDLM K=80"] = rows["MDLM K=8"]
    q = latency_verdict(rows)["at_quarter"]
    assert set(q) == {"MDLM K=8", "BD3 2/block (K=8)"}
    assert q["MDLM K=8"]["speedup_batch1"] == pytest.approx(4.0) and q["MDLM K=8"]["valid_gap"] == pytest.approx(0.49)
    assert v["highest_throughput_within"] == "c" and v["throughput_ratio_batch64"] == pytest.approx(20 / 15)
    assert latency_verdict({"AR (KV cache)": rows["AR (KV cache)"], "b": rows["b"]})["fastest_within"] is None


def _claim_rows():
    def row(valid, ms, tps):
        return {"valid": valid, "valid_stderr": 0.01, "ms_batch1": ms, "tokens_per_s_batch64": tps}

    rows = {"AR (KV cache)": row(0.99, 30.0, 20000.0), "MDLM ancestral K=4": row(0.3, 7.0, 21000.0),
            "MDLM ancestral K=8": row(0.55, 13.0, 11000.0), "MDLM ancestral K=32": row(0.87, 59.0, 1600.0),
            "BD3 2/block (K=8)": row(0.89, 31.0, 12000.0), "BD3 confidence 4/block (K=16)": row(0.99, 30.0, 11700.0)}
    return rows


def test_speed_claims_hold_and_each_can_fail():
    assert all(ok for ok, _ in speed_claims(_claim_rows()).values())
    fails = {"fast_only_when_worse": {"MDLM ancestral K=8": {"ms_batch1": 31.0}},
             "no_2x_at_quality": {"BD3 confidence 4/block (K=16)": {"ms_batch1": 14.0}},
             "ar_wins_batch64_at_quality": {"BD3 confidence 4/block (K=16)": {"tokens_per_s_batch64": 19000.0}},
             "blocks_beat_mdlm_at_equal_calls": {"BD3 2/block (K=8)": {"valid": 0.58}},
             "mdlm_cost_grows_with_K": {"MDLM ancestral K=4": {"ms_batch1": 14.0}}}
    for claim, change in fails.items():
        rows = _claim_rows()
        for name, values in change.items():
            rows[name].update(values)
        got = speed_claims(rows)
        assert not got[claim][0], claim
        assert all(ok for c, (ok, _) in got.items() if c != claim), claim
    with pytest.raises(ValueError, match="MDLM ancestral K=8"):
        speed_claims({k: v for k, v in _claim_rows().items() if k != "MDLM ancestral K=8"})


def test_latencies_are_timed_round_robin(monkeypatch):
    """Every decoder is warmed up once, then the rounds interleave the decoders: a, b, a, b, ..."""
    calls = []
    monkeypatch.setattr(frontier.lm_eval, "generate", lambda model, *a, **k: calls.append(model))
    got = frontier.latencies_round_robin({"a": ("A", None, {}, "f"), "b": ("B", None, {}, "f")}, 1, repeats=3)
    assert calls == ["A", "B"] + ["A", "B"] * 3
    assert set(got) == {"a", "b"} and all(len(v) == 3 and min(v) >= 0 for v in got.values())


def test_the_recorded_frontier_benchmark_supports_the_lesson():
    rec = frontier.recorded("frontier")
    assert {"date", "machine", "speed_quality"} <= set(rec)
    classic = {k: r for k, r in rec["speed_quality"].items() if r["family"] in frontier.CLASSIC_FAMILIES}
    assert all(ok for ok, _ in speed_claims(classic).values())
    from diffnlp.frontier import fast_decoder_name

    goal = frontier.moonshot(rec["speed_quality"], fast_decoder_name(), rec["entropy"])     # lesson 05, section 5
    assert all(ok for ok, _ in goal.values() if ok is not None)
    assert rec["fast_decoder"]["name"] == fast_decoder_name()                # the record is of today's FAST_DECODER
    with pytest.raises(FileNotFoundError, match="bench nope"):
        frontier.recorded("nope")


def test_speed_quality_measures_every_family():
    ar = _tiny(causal=True), Autoregressive(M)
    mdlm = _tiny(), MaskedDiffusion(mask_id=M)
    bd3 = _tiny(block_length=8), BlockDiffusion(8, mask_id=M)
    configs = decoders(ar, mdlm, bd3, end_id=PAD, mdlm_steps=(4,), bd3_steps=(2,))
    assert list(configs) == ["AR (KV cache)", "MDLM ancestral K=4", "MDLM confidence K=4", "BD3 2/block (K=8)",
                             "BD3 confidence 2/block (K=8)"]
    rows = speed_quality(configs, G, TOK, n=4, length=32, repeats_b1=1, repeats_b64=1, progress=False)
    for r in rows.values():
        assert 0 <= r["valid"] <= 1 and r["ms_batch1"] > 0 and r["tokens_per_s_batch64"] > 0


@pytest.mark.parametrize("process,kw", [
    (ScoreEntropy(mask_id=M), {"num_steps": 4, "method": "euler"}),
    (MaskedFlowMatching(mask_id=M), {"num_steps": 4}),
    (D3PM(V, 4, kind="uniform"), {}),
    (BlockDiffusion(8, mask_id=M), {"num_steps": 2, "end_id": PAD}),
    (Autoregressive(M), {"end_id": PAD}),
    (MaskedDiffusion(mask_id=M), {"num_steps": 4, "remask": 0.1}),
])
def test_every_process_generates_and_scores_through_lm_eval(process, kw):
    kind = type(process).__name__
    model = _tiny(causal=kind == "Autoregressive", block_length=8 if kind == "BlockDiffusion" else 0,
                  time_conditioning=kind == "D3PM")
    x = lm_eval.generate(model, process, 5, 32, batch_size=3, **kw)
    assert x.shape == (5, 32) and x.max() < V
    assert kind in ("D3PM", "Autoregressive") or (x != M).all()   # [MASK] is an ordinary id to these two
    ids = TOK.encode_batch(G.split("test", 4), 32)
    nats = lm_eval.nats_per_story(model, process, ids, n_samples=4)
    assert nats.shape == (4,) and torch.isfinite(nats).all() and (nats > 0).all()
    with pytest.raises(TypeError, match="unexpected sampling option"):
        lm_eval.generate(model, process, 2, 32, clamp=True)
    if kind != "MaskedDiffusion":
        with pytest.raises(TypeError, match=f"for {kind}: block_length"):
            lm_eval.generate(model, process, 2, 32, block_length=8)
    if kind in ("ScoreEntropy", "MaskedFlowMatching", "D3PM", "Autoregressive"):
        with pytest.raises(TypeError, match="strategy"):
            lm_eval.generate(model, process, 2, 32, strategy="confidence")
    if kind == "D3PM":
        with pytest.raises(ValueError, match="num_steps=8: D3PM samples with its T=4 steps"):
            lm_eval.generate(model, process, 2, 32, num_steps=8)


def test_ar_stops_when_every_story_has_ended():
    model = _tiny(causal=True)
    with torch.no_grad():
        model.head.bias[PAD] = 50.0                        # the model ends every story at once
    states = list(Autoregressive(M).sample(model, 3, 16, end_id=PAD))
    assert len(states) == 2 and states[-1].shape == (3, 16) and (states[-1] == PAD).all()   # the start, then done
    assert len(list(Autoregressive(M).sample(model, 3, 16))) == 17


def test_unmasking_player_shows_remasked_tokens():
    from diffnlp.course.widgets.text import REMASKED_BG, UnmaskingPlayer, set_steps

    states = [torch.tensor([M, M, M]), torch.tensor([5, M, M]), torch.tensor([M, 6, M]), torch.tensor([7, 6, 8])]
    assert set_steps(states, M).tolist() == [[-1, -1, -1], [1, -1, -1], [-1, 2, -1], [3, 2, 3]]
    given = [torch.tensor([9, M]), torch.tensor([9, 4])]              # a fixed (infilled) token from the start
    assert set_steps(given, M).tolist() == [[0, -1], [0, 1]]
    with pytest.raises(ValueError, match="non-empty list"):
        set_steps([], M)
    model = Transformer(vocab_size=V, max_len=32, d_model=32, n_layers=1, n_heads=2).eval()
    seen = False
    for seed in range(20):
        p = UnmaskingPlayer(model, MaskedDiffusion(mask_id=M), TOK, num_steps=32, seed=seed,
                            strategy="ancestral + remasking (ReMDM, eta = 0.1)")
        for i in range(len(p.states)):
            back = p.remasked(i)
            frame = p.frame(i)
            assert [pos for pos, (_, bg) in enumerate(frame) if bg == REMASKED_BG] == back
            if back:
                p.slider.value = i
                assert "taken back" in p.html.value and "line-through" in p.html.value
                seen = True
        assert p.revisions == sum(len(p.remasked(i)) for i in range(len(p.states)))
        assert all(w != "[MASK]" for w, _ in p.frame(len(p.states) - 1))
    assert seen


@pytest.mark.parametrize("name", ["stories-sedd", "stories-dfm", "stories-uniform", "stories-mdlm-place"])
def test_lesson_05_recipes_train_and_save_in_half_precision(name, tmp_path):
    _, _, ids = story_data(stories=300)
    model, process, history = train_text_recipe(name, data=ids, steps=3, max_seconds=None, progress=False,
                                                device="cpu")
    assert len(history) == 3 and all(map(torch.isfinite, map(torch.tensor, history)))
    assert type(build_text_model(TEXT_RECIPES[name], V)[1]) is type(process)
    save_checkpoint(tmp_path / "m", model.half())
    back, _ = load_checkpoint(tmp_path / "m")
    assert next(back.parameters()).dtype == torch.float32            # stored in float16, computed in float32
    assert (tmp_path / "m.safetensors").stat().st_size < 0.6 * 4 * sum(p.numel() for p in back.parameters())


def test_story_labels_read_the_attribute():
    from diffnlp.data.attributes import attribute_values, decode_stories, story_attributes

    _, tok, ids = story_data(stories=50)
    labels = story_labels(G, tok, ids, "place")
    values = attribute_values(G, "place")
    assert len(values) == 16 and labels.max() < 16
    assert [values[i] for i in labels] == story_attributes(G, decode_stories(tok, ids), "place")
    bad = ids.clone()
    bad[0] = PAD
    with pytest.raises(ValueError, match="has no 'place'"):
        story_labels(G, tok, bad, "place")


def test_call_counter_counts_the_sequential_work():
    from diffnlp.evaluation.frontier import CallCounter

    ar = CallCounter(_tiny(causal=True))
    lm_eval.generate(ar, Autoregressive(M), 2, 32)
    assert (ar.calls, ar.positions) == (32, 32)                   # one new token per call with the KV cache
    md = CallCounter(_tiny())
    lm_eval.generate(md, MaskedDiffusion(mask_id=M), 2, 32, num_steps=8, strategy="confidence")
    assert (md.calls, md.positions) == (8, 8 * 32)
    bd = CallCounter(_tiny(block_length=8))
    lm_eval.generate(bd, BlockDiffusion(8, mask_id=M), 2, 32, num_steps=2)
    # 2 steps per block, each finished block stored by the next block's first step (8 more positions, no call)
    assert (bd.calls, bd.positions) == (4 * 2, 4 * 2 * 8 + 3 * 8)
    for counted, process, kw in ((ar, Autoregressive(M), {}), (md, MaskedDiffusion(mask_id=M), {"num_steps": 8}),
                                 (bd, BlockDiffusion(8, mask_id=M), {"num_steps": 2})):
        counted.calls = 0
        traj = process.sample(counted, 2, 32, generator=torch.Generator().manual_seed(0), **kw)
        traj.run()
        assert traj.network_calls == counted.calls                  # the trajectory counts every forward pass


@pytest.mark.slow
@pytest.mark.parametrize("name,kw,min_valid,max_excess", [
    ("stories-sedd", {"num_steps": 32}, 0.75, 1.5),
    ("stories-dfm", {"num_steps": 32}, 0.75, 1.5),
    ("stories-uniform", {}, 0.95, 1.5),
])
def test_shipped_alternatives_headline_metrics(name, kw, min_valid, max_excess):
    """Recomputed from the float16 files (smaller n than the benchmark): the bound's excess over H and
    the valid share at 32 steps."""
    from diffnlp.training.pretrained import load_pretrained

    model, process, tok, meta = load_pretrained(name)
    assert meta["steps"] >= 5700 and meta["train_s"] < 900          # the MDLM's 5,867 steps, or the 870 s cap
    ids = story_data(split="test")[2][:300]
    excess = lm_eval.nats_per_story(model, process, ids, n_samples=16).mean().item() - G.entropy()
    rep = lm_eval.sample_quality(G, tok, model, process, n=300, seed=1, **kw)
    assert excess < max_excess and rep.valid >= min_valid and rep.distinct > 0.9


@pytest.mark.slow
def test_shipped_classifier_free_guidance_raises_control():
    """The place-conditioned MDLM (from its float16 file): success toward the museum is non-decreasing in
    w = 0, 1, 2, 4 within 95 % CIs, and w = 1 is far above the unconditional rate (200 samples, 16 steps)."""
    from diffnlp.evaluation.metrics import control_report
    from diffnlp.training.pretrained import load_pretrained

    model, process, tok, meta = load_pretrained("stories-mdlm-place")
    museum = meta["values"].index("museum")
    reps = [control_report(G, lm_eval.generate(ClassifierFreeGuidance.for_label(model, museum, w), process, 200, 32,
                                               num_steps=16, seed=2), "place", "museum", tok) for w in (0, 1, 2, 4)]
    assert non_decreasing_within_ci([r.success for r in reps], [r.stderr for r in reps])
    assert reps[0].success < 0.1 and reps[1].success > 0.6


def test_threads_context_sets_and_restores_the_count():
    from diffnlp.runtime import threads

    before = torch.get_num_threads()
    with threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n"):
        with threads(0):
            pass


def test_pareto_front_keeps_the_undominated_points():
    from diffnlp.evaluation.frontier import pareto_front

    rows = {"a": {"ms_batch1": 10.0, "valid": 0.9}, "b": {"ms_batch1": 20.0, "valid": 0.99},
            "c": {"ms_batch1": 15.0, "valid": 0.85}, "d": {"ms_batch1": 5.0, "valid": 0.5},
            "e": {"ms_batch1": 20.0, "valid": 0.95}}
    assert pareto_front(rows) == ["d", "a", "b"]          # c is beaten by a, e by b


def test_moonshot_criteria_fail_when_their_number_moves():
    from diffnlp.evaluation.frontier import moonshot

    def rows(**fast):
        f = {"calls": 8.0, "valid": 0.98, "ms_batch1": 9.0, "oracle_nll": 21.5, "distinct": 1.0,
             "tokens_per_s_batch64": 5000.0, **fast}
        return {"AR (KV cache)": {"valid": 0.996, "ms_batch1": 20.0, "tokens_per_s_batch64": 25000.0}, "fast": f}

    ok = moonshot(rows(), "fast", 22.25)
    assert all(v[0] for k, v in ok.items() if k != "throughput_ratio_batch64")
    assert "0.20x" in ok["throughput_ratio_batch64"][1]
    for key, change in (("calls", {"calls": 8.5}), ("validity", {"valid": 0.97}), ("latency", {"ms_batch1": 10.5}),
                        ("no_collapse", {"oracle_nll": 21.2}), ("distinct", {"distinct": 0.985})):
        assert not moonshot(rows(**change), "fast", 22.25)[key][0], key


def test_fast_decoder_is_declared_once_and_loads():
    from diffnlp.frontier import FAST_DECODER, fast_decoder_name, load_fast_decoder
    from diffnlp.training.pretrained import SHIPPED

    assert FAST_DECODER["checkpoint"] in SHIPPED
    model, process, tok, options = load_fast_decoder("cpu")
    assert options["end_id"] == tok.pad_id and set(FAST_DECODER["sampler"]) <= set(options)
    traj = process.sample(model, 4, 32, generator=torch.Generator().manual_seed(0), **options)
    x = traj.run()
    assert x.shape == (4, 32) and traj.calls_per_sample.max() <= 32 // 8 * FAST_DECODER["sampler"]["num_steps"]
    assert FAST_DECODER["checkpoint"] in fast_decoder_name()
