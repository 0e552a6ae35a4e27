"""Render ``benchmarks/results/*.json`` (written by ``python -m diffnlp bench``) as the Markdown tables of
``benchmarks/results/README.md``: reading and formatting only, no measurement."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path("benchmarks/results")


def _frontier_markdown(r: dict) -> list[str]:
    v = r["verdict"]
    lines = [f"Device: {r['device']}; {r['n_samples']} samples per row; tokens/s counts the {r['length']} "
             "positions of a story, padding included. ![speed against quality](frontier.png)", "",
             "| decoder | valid | oracle NLL | distinct | ms/story, batch 1 | tokens/s, batch 64 |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {k} | {x['valid']:.1%} | {x['oracle_nll']:.2f} | {x['distinct']:.1%} | {x['ms_batch1']:.1f} | "
              f"{x['tokens_per_s_batch64']:.0f} |" for k, x in r["speed_quality"].items()]
    if v["fastest_within"]:
        lines += ["", f"Within {100 * v['within']:.0f} points of AR's validity ({v['baseline_valid']:.1%}): fastest at "
                  "batch 1 is "
                  f"{v['fastest_within']} ({v['speedup_batch1']:.2f}x AR's speed); highest batch-64 throughput "
                  f"{v['highest_throughput_within']} ({v['throughput_ratio_batch64']:.2f}x AR's)."]
    else:
        lines += ["", f"No diffusion decoder comes within {100 * v['within']:.0f} points of AR's validity "
                  f"({v['baseline_valid']:.1%})."]
    if v.get("at_quarter"):
        lines += ["", f"At K = L/4 = {r['length'] // 4} steps in all, against AR (goal: at least 2x AR's batch-1 "
                  f"speed at validity within {100 * v['within']:.0f} points):", "",
                  "| decoder | batch-1 speed-up | validity gap (points) | batch-64 throughput ratio |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {k} | {x['speedup_batch1']:.2f}x | {100 * x['valid_gap']:.1f} | "
                  f"{x['throughput_ratio_batch64']:.2f}x |" for k, x in v["at_quarter"].items()]
    lines += ["", "Alternatives to masking at an equal training budget (bound on -log p on 500 test stories; H = "
              f"{r['entropy']:.2f}):", "", "| model | steps | train s | bound (nats) | sampler | valid | oracle NLL "
              "| distinct |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for k, a in r["alternatives"].items():
        lines += [f"| {k} | {a['steps']} | {a['train_s']:.0f} | {a['bound']:.2f} ± {a['bound_stderr']:.2f} | {s} | "
                  f"{x['valid']:.1%} | {x['oracle_nll']:.2f} | {x['distinct']:.1%} |" for s, x in a["samples"].items()]
    lines += ["", f"Self-correction (MDLM + ReMDM remasking, {r['remasking']['n_samples']} samples):", "",
              "| steps | eta | valid | ± | oracle NLL |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {x['K']} | {x['eta']:g} | {x['valid']:.1%} | {x['valid_stderr']:.1%} | {x['oracle_nll']:.2f} |"
              for x in r["remasking"]["rows"].values()]
    g = r["guidance"]
    lines += ["", f"Classifier-free guidance toward {g['attribute']} = {g['target']!r} ({g['sampler']}); success = "
              "share of all samples that are valid and have it. Non-decreasing over w = 0, 1, 2, 4 within 95% CIs: "
              f"{g['non_decreasing_within_95ci']}.", "", "| w | success | ± | valid |", "|---:|---:|---:|---:|"]
    lines += [f"| {x['w']:g} | {x['success']:.1%} | {x['stderr']:.1%} | {x['valid']:.1%} |" for x in g["rows"].values()]
    return lines


def _real_text_markdown(r: dict) -> list[str]:
    lines = [f"Held-out plays cut into disjoint rows of {r['length']} tokens; MDLM's NELBO with {r['n_samples']} "
             "draws a row (± its Monte-Carlo error), AR exact. Goal: MDLM / AR <= "
             f"{r['goal_ratio']:.2f} (the MDLM paper's ratio on OpenWebText: {r['paper_ratio_owt']:.3f}).", "",
             "| split | rows | bytes | unigram | MDLM (bound) | AR (exact) | MDLM / AR |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for split, x in r["splits"].items():
        m, a = x["shakespeare-mdlm"], x["shakespeare-ar"]
        lines.append(f"| {split} | {x['rows']} | {x['bytes']} | {x['unigram']:.3f} | {m['bits_per_byte']:.3f} ± "
                     f"{m['stderr']:.3f} | {a['bits_per_byte']:.3f} | {x['ratio']:.3f} |")
    lines += ["", "| checkpoint | steps | train s |", "|---|---:|---:|"]
    lines += [f"| {k} | {c['steps']} | {c['train_s']:.0f} |" for k, c in r["checkpoints"].items()]
    return lines


def write_markdown(out: Path = RESULTS) -> Path:
    """One Markdown table per result file, in benchmarks/results/README.md."""
    lines = ["# Benchmark results", "", "Written by `python -m diffnlp bench`; each section names its machine.", ""]
    for path in sorted(out.glob("*.json")):
        r = json.loads(path.read_text())
        m = r.get("machine", {})
        lines += [f"## {r['benchmark']}", "",
                  f"{r.get('date', '')} · {m.get('device')} · {m.get('cpu_count')} CPUs · torch {m.get('torch')}", ""]
        if r["benchmark"] == "widgets":
            lines += ["| callback (draw + PNG included) | median ms | max ms | n |", "|---|---:|---:|---:|"]
            lines += [f"| {k} | {v['median_ms']:.1f} | {v['max_ms']:.1f} | {v['n']} |"
                      for k, v in r["callbacks"].items()]
        elif r["benchmark"] == "points":
            for name, c in r["clouds"].items():
                lines += [f"**{name}**: {c['recipe']}; trained in {c['train_s']:.1f} s. Floor SWD(real, fresh real) = "
                          f"{c['floor']:.4f}.", "", "| sampler | SWD | x floor | sampling s |", "|---|---:|---:|---:|"]
                lines += [f"| {k} | {v['swd']:.4f} | {v['ratio_to_floor']:.2f} | {v['sample_s']:.1f} |"
                          for k, v in c["samplers"].items()]
                lines += ["", f"DDIM 50 / DDPM 1000 = {c['ddim50_over_ddpm1000']:.2f}", ""]
        elif r["benchmark"] == "digits":
            lines += [f"Recipe: {r['recipe']}; trained in {r['train_s']:.1f} s. Judge accuracy on held-out digits "
                      f"{r['judge_test_accuracy']:.3f}, confidence {r['judge_real_confidence']:.3f}.", "",
                      "| sampler | confidence / real | smallest class share | sampling s |", "|---|---:|---:|---:|"]
            lines += [f"| {k} | {v['relative_confidence']:.3f} | {v['min_share']:.3f} | {v['sample_s']:.1f} |"
                      for k, v in r["samplers"].items()]
        elif r["benchmark"] == "lm":
            lines += [f"Story grammar: entropy H = {r['entropy']:.3f} nats per story; sequences of {r['length']} "
                      f"tokens; {r['n_samples']} samples per row. Excess = NELBO (or NLL) - H.", ""]
            for block in ("shipped", "live"):
                lines += [f"### {block}", "", "| model | train s | nats/story | excess | ratio to H | ms/sample b=1 "
                          "| ms/sample b=64 |", "|---|---:|---:|---:|---:|---:|---:|"]
                for name, m in r[block].items():
                    lk, ms = m["likelihood"], m["ms_per_sample"]
                    lines.append(f"| {name} | {m['train_s'] or 0:.0f} | {lk['nats_per_story']:.3f} | "
                                 f"{lk['excess']:.3f} | {lk['ratio']:.4f} | {ms['batch 1']:.1f} | "
                                 f"{ms['batch 64']:.2f} |")
                lines += ["", "| model | sampler | valid | oracle NLL of valid | distinct |",
                          "|---|---|---:|---:|---:|"]
                for name, m in r[block].items():
                    lines += [f"| {name} | {k} | {v['valid']:.1%} | {v['oracle_nll']:.2f} | {v['distinct']:.1%} |"
                              for k, v in m["samples"].items()]
                lines.append("")
        elif r["benchmark"] == "embedding":
            lk = r["likelihood"]
            lines += [f"Diffusion-LM ({r['recipe']}; {r['steps']} steps in {r['train_s']:.0f} s). Gaussian NELBO "
                      f"{lk['nats_per_story']:.2f} nats per story (H = {r['entropy']:.3f}, excess {lk['excess']:.2f}); "
                      f"{r['n_samples']} samples per row.", "",
                      "| model | sampler | valid | oracle NLL of valid | distinct | sampling s |",
                      "|---|---|---:|---:|---:|---:|"]
            rows = [("shipped", k, v) for k, v in r["samples"].items()]
            rows += [(f"live ({r['live']['steps']} steps, {r['live']['train_s']:.0f} s)", k, v)
                     for k, v in r["live"]["samples"].items()]
            lines += [f"| {m} | {k} | {v['valid']:.1%} | {v['oracle_nll']:.2f} | {v['distinct']:.1%} | "
                      f"{v['sample_s']:.1f} |" for m, k, v in rows]
            g = r["guidance"]
            lines += ["", f"Guidance toward {g['attribute']} = {g['target']!r} ({g['steps']} steps, clamping on); "
                      "success = share of all samples that are valid and have it.", "",
                      "| guidance | success | ± | valid |", "|---|---:|---:|---:|"]
            lines += [f"| {k} | {v['success']:.1%} | {v['stderr']:.1%} | {v['valid']:.1%} |"
                      for k, v in g["rows"].items()]
            inf = r["infilling"]
            lines += ["", f"Infilling ({inf['fixed']} fixed): {inf['valid']:.1%} valid, fixed words kept "
                      f"{inf['kept']:.1%}.", "", "| sampling | ms per story |", "|---|---:|"]
            lines += [f"| {k} | {v:.1f} |" for k, v in r["ms_per_sample"].items()]
        elif r["benchmark"] == "frontier":
            lines += _frontier_markdown(r)
        elif r["benchmark"] == "real_text":
            lines += _real_text_markdown(r)
        elif r["benchmark"] == "notebooks":
            lines += ["| notebook | seconds |", "|---|---:|"]
            lines += [f"| {k} | {v['seconds']:.1f} |" for k, v in r["notebooks"].items()]
        lines.append("")
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path
