"""Lesson 05's exercises: each checker with its reference solution."""

from __future__ import annotations

import torch

from ._verdict import NOT_ATTEMPTED, Verdict, compare, run_learner


def _measured_block_calls(steps_per_block: int, length: int = 32, block_length: int = 8) -> int:
    """The sequential network calls ``BlockDiffusion.sample`` makes for one sequence, counted on a small
    untrained network (the count does not depend on the weights)."""
    from ...evaluation.frontier import CallCounter
    from ...models.transformer import Transformer
    from ...processes.block import BlockDiffusion

    torch.manual_seed(0)
    net = Transformer(vocab_size=6, max_len=length, d_model=16, n_layers=1, n_heads=2,
                      block_length=block_length).eval()
    counter = CallCounter(net)
    BlockDiffusion(block_length, mask_id=5).sample(counter, 1, length, steps_per_block,
                                                   generator=torch.Generator().manual_seed(0)).run()
    return counter.calls


def reference_block_calls(length: int, block_length: int, steps_per_block: int) -> int:
    """Block diffusion with a KV cache: ``steps_per_block`` denoising calls in each of the B = L / block
    blocks, and one call per finished block but the last to store its keys and values: B k + (B - 1)."""
    blocks = length // block_length
    return blocks * steps_per_block + blocks - 1


def check_block_calls(guess, steps_per_block: int = 4) -> Verdict:
    """Exercise (predict): how many sequential network calls does block diffusion make for one story of
    L = 32 tokens in blocks of 8 at ``steps_per_block`` steps per block? Counted live with a CallCounter."""
    if guess is None:
        return NOT_ATTEMPTED
    if isinstance(guess, torch.Tensor):
        guess = guess.item()
    if not isinstance(guess, int) or isinstance(guess, bool):
        return Verdict("incorrect", f"give the number of calls as an int, got {type(guess).__name__} {guess!r}")
    measured = _measured_block_calls(steps_per_block)
    if guess == measured:
        return Verdict("correct", f"{measured} calls, counted: {steps_per_block} per block for 4 blocks, plus one "
                                  "for each finished block but the last, to store its keys and values")
    if guess == 4 * steps_per_block:
        return Verdict("incorrect", f"{guess} counts the denoising steps only: what does the cache need once a "
                                    "block is finished?")
    return Verdict("incorrect", f"{guess} is off by {guess - measured:+d} (the CallCounter counted {measured})")


def reference_block_causal(length: int, block_length: int) -> torch.Tensor:
    """mask[i, j] = True iff block(j) <= block(i), block(i) = i // block_length (``block_causal_mask``)."""
    from ...models.transformer import block_causal_mask

    return block_causal_mask(torch.arange(length), length, block_length)


def check_block_causal(fn) -> Verdict:
    """Exercise (implement): the block-causal attention mask, a bool (L, L) tensor, True = may attend."""
    for length, block in ((32, 8), (12, 4), (6, 1), (8, 8), (10, 4)):
        got, err = run_learner(fn, length, block)
        if err or got is None:
            return err or NOT_ATTEMPTED
        want = reference_block_causal(length, block)
        if isinstance(got, torch.Tensor) and got.shape == want.shape:
            if torch.equal(got.bool(), want.T) and not torch.equal(want, want.T):
                return Verdict("incorrect", f"L={length}, blocks of {block}: your mask is transposed; rows are "
                                            "queries (the position that attends), columns keys")
            if block > 1 and torch.equal(got.bool(), torch.ones_like(want).tril()):
                return Verdict("incorrect", f"L={length}, blocks of {block}: that is plain causal attention; "
                                            "inside a block every position sees every other")
            if got.dtype != torch.bool:
                return Verdict("incorrect", f"return a bool tensor (True = attend), got {got.dtype}")
        v = compare(got if not isinstance(got, torch.Tensor) else got.long(), want.long(),
                    f"the mask for L={length}, blocks of {block}", atol=0)
        if not v.correct:
            return v
    return Verdict("correct", "a position sees its own block and every earlier one, never a later one "
                              "(checked for five sizes, including blocks of 1: plain causal attention)")


def reference_remask_reveal_probability(alpha_t: float, alpha_s: float, sigma: float) -> float:
    """ReMDM: a masked token is revealed with probability (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)."""
    return (alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t)


def check_remask_reveal_probability(fn) -> Verdict:
    """Exercise: with remasking probability sigma, the reveal probability that keeps q(z_s | x)."""
    from ...processes.masked import MaskedDiffusion

    md = MaskedDiffusion("loglinear")
    for t, s, eta in ((0.9, 0.7, 0.05), (0.5, 0.4, 0.1), (0.2, 0.1, 0.02), (0.6, 0.3, 0.0)):
        sigma, want = md.remask_probabilities(torch.tensor([t], dtype=torch.float64),
                                              torch.tensor([s], dtype=torch.float64), eta)
        a_t, a_s = float(md.alpha(torch.tensor(t))), float(md.alpha(torch.tensor(s)))
        got, err = run_learner(fn, a_t, a_s, float(sigma))
        if err or got is None:
            return err or NOT_ATTEMPTED
        try:
            got = float(got)
        except (TypeError, ValueError, RuntimeError):
            return Verdict("incorrect", f"return a number, got {type(got).__name__}")
        if not abs(got - float(want)) <= 1e-6:                # NaN fails too
            if sigma > 0 and abs(got - (a_s - a_t) / (1 - a_t)) < 1e-6:
                return Verdict("incorrect", "that is MDLM's reveal probability: with remasking, a decided token "
                                            "leaves with probability sigma, so more masks must be revealed to keep "
                                            "q(z_s clean) = alpha_s")
            return Verdict("incorrect", f"at alpha_t={a_t:.3f}, alpha_s={a_s:.3f}, sigma={float(sigma):.3f} you "
                                        f"return {got:.4f}, expected {float(want):.4f}")
    return Verdict("correct", "(1 - sigma) alpha_t + p (1 - alpha_t) = alpha_s: remasking keeps the marginals")
