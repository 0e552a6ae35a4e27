"""Command line: ``python -m diffnlp train --recipe NAME`` and ``python -m diffnlp bench [NAME ...]``."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    """``python -m diffnlp train --recipe NAME [--out PATH]`` or ``python -m diffnlp bench [NAME ...]``."""
    from ..training.distillation import DISTILL_RECIPES
    from ..training.recipes import GUIDANCE_RECIPES, RECIPES, TEXT_RECIPES
    from .bench import BENCHES

    parser = argparse.ArgumentParser(prog="python -m diffnlp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a recorded recipe and save a safetensors checkpoint")
    tr.add_argument("--recipe", required=True,
                    choices=sorted(RECIPES) + sorted(TEXT_RECIPES) + sorted(GUIDANCE_RECIPES) + sorted(DISTILL_RECIPES))
    tr.add_argument("--out", default=None, help="checkpoint path without suffix (default checkpoints/RECIPE)")
    scale = tr.add_argument_group("text recipes: change the recipe or how a step runs (see README, 'Train on more "
                                  "GPUs')")
    scale.add_argument("--steps", type=int, default=None, help="at most this many optimiser steps")
    scale.add_argument("--max-seconds", type=float, default=None, help="wall-clock budget (0: none, steps decide)")
    scale.add_argument("--batch-size", type=int, default=None, help="global batch, over all processes")
    scale.add_argument("--accumulation", type=int, default=1, help="micro-batches per process and step")
    scale.add_argument("--mixed-precision", default=None, choices=("no", "bf16", "fp16"),
                       help="forward pass precision (bf16 on a recent GPU; weights stay float32); default: the "
                            "launcher's --mixed_precision, else no")
    be = sub.add_parser("bench", help="run benchmarks and write benchmarks/results/")
    be.add_argument("names", nargs="*", default=[],
                    help=f"which benchmarks (default: all): {', '.join(BENCHES)}")
    args = parser.parse_args(argv)

    from ..runtime import set_threads

    set_threads()
    if args.command == "train":
        overrides = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size)) if v is not None}
        if args.max_seconds is not None:
            overrides["max_seconds"] = args.max_seconds or None
        scaled = overrides or args.accumulation != 1 or args.mixed_precision is not None
        if scaled and args.recipe not in TEXT_RECIPES:
            parser.error(f"--steps, --max-seconds, --batch-size, --accumulation and --mixed-precision apply to the "
                         f"text recipes ({', '.join(sorted(TEXT_RECIPES))}), not to {args.recipe!r}")
        import time

        from ..training.checkpoints import save_checkpoint
        from ..training.recipes import train_recipe

        t0 = time.perf_counter()
        if args.recipe in GUIDANCE_RECIPES:
            from ..data.attributes import attribute_values
            from ..data.stories import StoryGrammar
            from ..training.recipes import train_guidance_classifier

            model, history = train_guidance_classifier(args.recipe)
            recipe = GUIDANCE_RECIPES[args.recipe]
            extra = {"attribute": recipe.attribute, "values": attribute_values(StoryGrammar(), recipe.attribute)}
        elif args.recipe in DISTILL_RECIPES:
            from ..data.stories import StoryGrammar
            from ..training.distillation import train_distilled

            model, _, history = train_distilled(args.recipe)
            recipe = DISTILL_RECIPES[args.recipe]
            extra = {"vocab": StoryGrammar().tokenizer().vocab}
        elif args.recipe in TEXT_RECIPES:
            from dataclasses import replace

            from ..data.stories import StoryGrammar
            from ..training.recipes import text_meta, train_text_recipe

            model, _, history = train_text_recipe(args.recipe, accumulation=args.accumulation,
                                                  mixed_precision=args.mixed_precision, **overrides)
            recipe = replace(TEXT_RECIPES[args.recipe], **overrides)
            extra = text_meta(recipe)
            if recipe.condition:
                from ..data.attributes import attribute_values

                extra.update(attribute=recipe.condition, values=attribute_values(StoryGrammar(), recipe.condition))
            if recipe.half:
                model = model.half()
        else:
            model, diffusion, history = train_recipe(args.recipe)
            recipe = RECIPES[args.recipe]
            extra = {}
        seconds = time.perf_counter() - t0
        import torch
        from accelerate.state import AcceleratorState, PartialState

        state = PartialState()                    # the processes fit ran on (torchrun / accelerate launch)
        precision = AcceleratorState().mixed_precision if AcceleratorState._shared_state else "no"
        try:
            if state.is_main_process:
                path = save_checkpoint(args.out or f"checkpoints/{args.recipe}", model,
                                       {"recipe": recipe.describe(), "train_s": seconds, "steps": len(history),
                                        "threads": torch.get_num_threads(), "processes": state.num_processes,
                                        "accumulation": args.accumulation, "mixed_precision": precision,
                                        "final_loss": sum(history[-100:]) / len(history[-100:]), **extra})
                print(f"trained {args.recipe} in {seconds:.1f} s on {state.num_processes} process(es) -> {path}")
        finally:                                  # the other processes wait for the checkpoint, even a failed one
            state.wait_for_everyone()
            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
        return 0
    from .bench import run

    names = args.names or list(BENCHES)
    if "all" in names:
        names = list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)} or all")
    run(names)
    return 0

