"""Lesson 05's exercises: each checker with its reference solution."""

from __future__ import annotations

import torch

from ._verdict import NOT_ATTEMPTED, Verdict, compare, run_learner


def _measured_block_work(steps_per_block: int, length: int = 32, block_length: int = 8) -> tuple[int, int]:
    """(calls, positions): the sequential network calls ``BlockDiffusion.sample`` makes for one sequence with
    its KV cache, and the positions those calls feed the network, counted on a small untrained network (the
    counts do not depend on the weights)."""
    from ...evaluation.frontier import CallCounter
    from ...models.transformer import Transformer
    from ...processes.block import BlockDiffusion

    torch.manual_seed(0)
    net = Transformer(vocab_size=6, max_len=length, d_model=16, n_layers=1, n_heads=2,
                      block_length=block_length).eval()
    counter = CallCounter(net)
    BlockDiffusion(block_length, mask_id=5).sample(counter, 1, length, steps_per_block,
                                                   generator=torch.Generator().manual_seed(0)).run()
    return counter.calls, counter.positions


def reference_block_positions(length: int, block_length: int, steps_per_block: int) -> int:
    """Block diffusion with a KV cache, B = L / n blocks of n tokens, k steps a block: every step feeds the
    current block (n positions), and the first step of every block but the first also feeds the finished
    block before it, whose keys and values it stores in the cache: B k n + (B - 1) n."""
    blocks = length // block_length
    return blocks * steps_per_block * block_length + (blocks - 1) * block_length


def check_block_positions(guess, steps_per_block: int = 2) -> Verdict:
    """Exercise (predict): how many positions does block diffusion feed the network for one story of L = 32
    tokens in blocks of 8 at ``steps_per_block`` steps per block, with its KV cache? Counted live."""
    if guess is None:
        return NOT_ATTEMPTED
    if isinstance(guess, torch.Tensor):
        guess = guess.item()
    if not isinstance(guess, int) or isinstance(guess, bool):
        return Verdict("incorrect", f"give the number of positions as an int, got {type(guess).__name__} {guess!r}")
    calls, measured = _measured_block_work(steps_per_block)
    if guess == measured:
        return Verdict("correct", f"{measured} positions in {calls} calls, counted: 8 for each step of each block, "
                                  "and 8 more in the first step of blocks 2, 3 and 4, which stores the finished "
                                  "block before it")
    if guess == calls * 8:
        return Verdict("incorrect", f"{guess} counts the current block only: how do the finished block's keys and "
                                    "values get into the cache, if no call is spent on them?")
    if guess == 32 * calls:
        return Verdict("incorrect", f"{guess} is the work without the cache (every call over all 32 positions)")
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


def reference_entropy_bounded_count(entropies: torch.Tensor, budget: float) -> int:
    """The EB-sampler's step: sort the masked positions' entropies, lowest first, and decide the longest
    prefix whose sum is at most ``budget``; at least one (``kernels.adaptive_counts``, rule "entropy")."""
    ranked = torch.sort(entropies).values
    return max(int((ranked.cumsum(0) <= budget).sum()), 1 if len(entropies) else 0)


def check_entropy_bounded_count(fn) -> Verdict:
    """Exercise (implement): how many positions one entropy-bounded step decides, checked against the
    package's kernel (``kernels.entropy_bounded_counts``, at least one) on fixed and random cases."""
    from ...sampling.kernels import entropy_bounded_counts

    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([0.3, 0.01, 2.0, 0.2]), 0.5), (torch.tensor([1.5, 2.0]), 1.0),
             (torch.tensor([0.0, 0.0, 0.0]), 0.0), (torch.tensor([0.9, 0.05, 0.05]), 0.1)]
    cases += [(torch.rand(int(n), generator=g) * 2, float(b))
              for n, b in zip(torch.randint(1, 9, (6,), generator=g), torch.rand(6, generator=g) * 3)]
    for h, budget in cases:
        got, err = run_learner(fn, h.clone(), budget)
        if err or got is None:
            return err or NOT_ATTEMPTED
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, int) or isinstance(got, bool):
            return Verdict("incorrect", f"return the number of positions as an int, got {type(got).__name__}")
        want = max(int(entropy_bounded_counts(h[None], torch.ones(1, len(h), dtype=torch.bool), budget)), 1)
        if got != want:
            if got == 0:
                return Verdict("incorrect", f"entropies {h.tolist()} with budget {budget}: you decide nothing; a "
                                            "step must decide at least one position, or the sampler never ends")
            unsorted = max(int((h.cumsum(0) <= budget).sum()), 1)
            if got == unsorted and unsorted != want:
                return Verdict("incorrect", f"entropies {[round(x, 3) for x in h.tolist()]} with budget {budget}: "
                                            f"you return {got}; sort the entropies first, lowest first")
            return Verdict("incorrect", f"entropies {[round(x, 3) for x in h.tolist()]} with budget {budget}: you "
                                        f"return {got}, expected {want}")
    return Verdict("correct", "the lowest-entropy positions first, while their entropies fit in the budget, and "
                              "never fewer than one (ten cases, as kernels.adaptive_counts)")
