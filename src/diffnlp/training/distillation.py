"""Step distillation for masked and block diffusion (SDTT, self-distillation through time; Deschenaux and
Gulcehre, 2024): a student learns to take in one step what its teacher takes in two.

From time t to s < t with the midpoint m, the teacher's two ancestral steps reveal a masked position with
probability r1 = q(t -> m), then r2 = q(m -> s), in all r = r1 + (1 - r1) r2 = q(t -> s), the reveal
probability of the student's one step. Given that position i is revealed, its token follows

    q_i(v) = [ r1 p1_i(v) + (1 - r1) r2 E( p2_i(v | z_m) | z_m^i = MASK ) ] / r,

p1 = teacher(z_t) and p2 = teacher(z_m), z_m the teacher's first step. The student's one step is trained
to put q_i on every masked position (cross-entropy to q_i, whose minimiser is q_i). One draw of z_m gives
an unbiased target (``two_step_target``):

    target_i = (r1 / r) p1_i + (r2 / r) [z_m^i = MASK] p2_i(z_m),

since [z_m^i = MASK] has probability 1 - r1 and, the positions being revealed independently, z_m given
that i stayed masked is z_m's law with i masked. A student step cannot represent what the teacher's two
steps do *between* positions: the teacher's second step sees the tokens of its first, the student draws
all of its tokens independently (``one_step_gap``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from .._checks import check_choice, check_int
from ..base import at_least_float32
from ..processes.block import BlockDiffusion
from ..processes.masked import MaskedDiffusion
from ..sampling.kernels import categorical, reveal_step, uniform


def _masking(process) -> MaskedDiffusion:
    """The masked-diffusion process underneath: MDLM itself, or the one inside each block of BD3."""
    return process.masking if isinstance(process, BlockDiffusion) else process


def step_probabilities(masking: MaskedDiffusion, t: torch.Tensor, s: torch.Tensor):
    """(r1, r2, r): the teacher's reveal probabilities from t to the midpoint m = (t + s) / 2 and from m to s,
    and the student's from t to s; r = r1 + (1 - r1) r2 (a masked token stays masked through both steps)."""
    m = (t + s) / 2
    return masking.reveal_probability(t, m), masking.reveal_probability(m, s), masking.reveal_probability(t, s)


def two_step_target_given(p1: torch.Tensor, p2: torch.Tensor, masked_mid: torch.Tensor, r1: torch.Tensor,
                          r2: torch.Tensor) -> torch.Tensor:
    """target_i = (r1 / r) p1_i + (r2 / r) [z_m^i = MASK] p2_i (B, L, V), for one draw of the teacher's first
    step z_m (``masked_mid``: z_m == MASK); ``r1``, ``r2`` per position (B, L). Its expectation over z_m is q_i."""
    r = r1 + (1 - r1) * r2
    a, b = (r1 / r)[..., None], (r2 / r)[..., None]
    return a * p1 + b * masked_mid[..., None].to(p2.dtype) * p2


def predict(model, process, z: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
    """The SUBS log-probabilities (B, L, V) of a masked-diffusion model at z (any time: it is not
    time-conditioned), or of a block-diffusion model at z with every block's clean past taken from ``x0``
    (its two-stream training pass)."""
    masking = _masking(process)
    if isinstance(process, BlockDiffusion):
        logits = model(z, clean=x0)
    else:
        logits = model(z, torch.ones(z.shape[0], device=z.device))
    return masking.subs_log_probs(masking.never_mask(at_least_float32(logits)), z)


@torch.no_grad()
def two_step_target(teacher, process, z_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                    x0: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The teacher's two steps from t to s (times per position, (B, L)), as a target for the student's one
    step: (B, L, V), unbiased for q_i at every position masked in ``z_t`` (module docstring)."""
    masking = _masking(process)
    r1, r2, _ = step_probabilities(masking, t, s)
    logp1 = predict(teacher, process, z_t, x0)
    x = categorical(logp1, generator)
    z_m = reveal_step(z_t, x, r1.float(), uniform(z_t.shape, generator, z_t.device), masking.mask_id)
    logp2 = predict(teacher, process, z_m, x0)
    return two_step_target_given(logp1.exp(), logp2.exp(), z_m == masking.mask_id, r1.to(z_t.device).float(),
                                 r2.to(z_t.device).float())


def student_times(process, batch: int, length: int, num_steps: int, generator: torch.Generator | None = None):
    """(t, s) per position (B, L): a step k uniform on the student's grid of ``num_steps`` (``time_grid``),
    t = 1 - k / K and s = t - 1 / K, drawn per sequence (MDLM) or per block (block diffusion)."""
    K = check_int("num_steps", num_steps, low=1)
    n = process.block_length if isinstance(process, BlockDiffusion) else length
    k = torch.randint(0, K, (batch, length // n), generator=generator).double()
    t = (1 - k / K).repeat_interleave(n, 1)
    return t, (t - 1 / K).clamp_min(0.0)


def distillation_loss(student, teacher, process, x0: torch.Tensor, num_steps: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Cross-entropy of the student's one step to the teacher's two (``two_step_target``), per sequence (B,):
    the mean over the positions masked in z_t, with t on the student's grid of ``num_steps`` steps."""
    masking = _masking(process)
    x0 = masking.check_x0(x0)
    B, L = x0.shape
    t, s = student_times(process, B, L, num_steps, generator)
    u = torch.rand(x0.shape, generator=generator).to(x0.device)
    z_t = torch.where(u < (1 - masking.alpha(t)).to(x0.device), torch.full_like(x0, masking.mask_id), x0)
    target = two_step_target(teacher, process, z_t, t.to(x0.device), s.to(x0.device), x0, generator)
    logq = predict(student, process, z_t, x0)
    ce = -torch.where(target > 0, target * logq, torch.zeros_like(target)).sum(-1)
    masked = z_t == masking.mask_id
    return torch.where(masked, ce, torch.zeros_like(ce)).sum(-1) / masked.sum(-1).clamp_min(1)


def one_step_gap(two_step: torch.Tensor, sequences: torch.Tensor) -> float:
    """What one student step cannot represent: the total variation between a joint distribution over
    ``sequences`` (N, L) (the teacher's two steps from all-[MASK]) and the product of its per-position
    marginals (the best a one-step student can do: it draws every position independently)."""
    seqs = torch.as_tensor(sequences)
    V = int(seqs.max()) + 1
    marg = torch.zeros(seqs.shape[1], V, dtype=torch.float64)
    for i in range(seqs.shape[1]):
        marg[i].index_add_(0, seqs[:, i], two_step.double())
    prod = marg[torch.arange(seqs.shape[1]), seqs].prod(1)
    return 0.5 * float((two_step.double() - prod).abs().sum())


@dataclass(frozen=True)
class DistillRecipe:
    """A student initialised from a shipped teacher and trained to take ``student_steps`` steps (per block for
    block diffusion) where the teacher takes twice as many."""

    name: str
    teacher: str = "stories-bd3"
    student_steps: int = 2
    stories: int = 100_000
    steps: int = 4000
    batch_size: int = 64
    lr: float = 3e-4
    warmup: int = 50
    ema_decay: float | None = 0.99
    grad_clip: float | None = 1.0
    max_seconds: float | None = 70.0
    seed: int = 0

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items() if k != "name")


DISTILL_RECIPES = {
    # block diffusion, 2 steps a block learnt from the teacher's 4, in 70 s on 2 CPU cores: with the teacher's
    # 815 s (recipe stories-bd3) under 15 minutes in all. 2,000 steps (420 s) gave the same validity at
    # 2 steps a block (89.6 % against the teacher's 89.5 %, 1,000 samples): see lesson 05 for why.
    "stories-bd3-distilled": DistillRecipe("stories-bd3-distilled"),
}


def train_distilled(name: str, progress: bool = True, device=None, **overrides):
    """Distil a recipe of ``DISTILL_RECIPES`` from its shipped teacher; return ``(student, process, history)``."""
    import copy

    from ..runtime import seed_everything
    from .fit import fit
    from .pretrained import load_pretrained
    from .recipes import story_data

    check_choice("recipe", name, DISTILL_RECIPES)
    r = replace(DISTILL_RECIPES[name], **overrides)
    teacher, process, _, _ = load_pretrained(r.teacher)
    _, _, data = story_data(teacher.config.max_len, r.stories)
    seed_everything(r.seed)
    student = copy.deepcopy(teacher)
    teacher.requires_grad_(False).eval()

    def loss(model, batch, g):
        teacher.to(batch.device)
        return distillation_loss(model, teacher, process, batch, r.student_steps, g).mean()

    history = fit(student, loss, data, steps=r.steps, batch_size=r.batch_size, lr=r.lr, warmup=r.warmup,
                  ema_decay=r.ema_decay, seed=r.seed, progress=progress, device=device, desc=name,
                  max_seconds=r.max_seconds, grad_clip=r.grad_clip)
    return student, process, history
