"""Cost and effect of LoRA fine-tuning toward an assembly (issue 8): seconds and peak memory per training
step, and held-out agreement gained per minute of training, for each objective.

The target is a planted synthetic assembly (outcomes about animals preferred to outcomes about money, 15
members, 12 outcomes, 3 held out), so the numbers need no assembly run on the model. On CPU the memory column
is the growth of the process's peak resident set over the loaded model (a high-water mark); on CUDA it is the
peak allocated during training.

    .venv/bin/python benchmarks/bench_finetune.py                       # embedded model, CPU
    .venv/bin/python benchmarks/bench_finetune.py --model hf:ORG/NAME --device cuda --steps 40
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from valuelab.control.assembly import build_assembly
from valuelab.control.evaluate import agrees, pair_probabilities
from valuelab.control.finetune import OBJECTIVES, finetune, peak_memory_mb
from valuelab.elicit.outcomes import Outcome
from valuelab.models import load_model
from valuelab.models.synthetic import SyntheticBackend
from valuelab.prompts import Template
from valuelab.store import StoredModel

TEMPLATE = Template("short-choice", "Which is better?\nA: {option_a}\nB: {option_b}\nAnswer A or B.")
ANIMALS = ["A lost dog is returned to its family.", "A bird's broken wing heals.",
           "A shelter cat is adopted.", "A stranded whale swims back to sea.",
           "A rescued horse gets a green field.", "Ducklings cross the road safely."]
MONEY = ["You receive a bonus of $500.", "You find a $20 bill.", "Your rent drops by $100 a month.",
         "You win $1,000 in a raffle.", "Your savings earn extra interest.", "You get a $200 tax refund."]


def planted_targets():
    outcomes = ([Outcome(f"animal-{k}", t, "animals") for k, t in enumerate(ANIMALS)]
                + [Outcome(f"money-{k}", t, "money") for k, t in enumerate(MONEY)])
    planted = {o.text: ((1.0 if o.category == "animals" else -1.0) + 0.3 * (k % 6 - 2.5) / 2.5, 0.25)
               for k, o in enumerate(outcomes)}
    return build_assembly(StoredModel(SyntheticBackend(1, utilities=planted)), size=15, outcomes=outcomes,
                          seed=0, template=TEMPLATE).targets


def heldout_agreement(backend, targets) -> float:
    held = targets.heldout
    p_first = pair_probabilities(StoredModel(backend), held, TEMPLATE)
    return float(agrees(p_first, held["share_a"].to_numpy()).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--layers", type=int, default=6, help="adapt the top N layers (0: all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    targets = planted_targets()
    backend = load_model(args.model, device=args.device)
    loaded = peak_memory_mb(args.device)
    before = heldout_agreement(backend, targets)
    print(f"model {args.model} on {args.device}, torch threads {torch.get_num_threads()}, "
          f"{len(targets.train)} training pairs ({2 * len(targets.train)} prompts), "
          f"{len(targets.heldout)} held-out pairs; held-out agreement before: {before:.3f}\n")
    print("| objective | seed | s/step | peak MB over loaded | agreement after | gained per minute |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for objective in OBJECTIVES:
            for seed in range(args.seeds):
                if args.device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()
                    loaded = peak_memory_mb(args.device)
                start = time.perf_counter()
                result = finetune(backend, targets, objective=objective, out=Path(tmp) / f"{objective}{seed}",
                                  steps=args.steps, seed=seed, batch_size=args.batch_size,
                                  layers=args.layers or None, template=TEMPLATE)
                minutes = (time.perf_counter() - start) / 60
                after = heldout_agreement(result.backend, targets)
                step = float(np.median(result.step_seconds))
                memory = result.peak_memory_mb - loaded
                print(f"| {objective} | {seed} | {step:.2f} | {memory:.0f} | {after:.3f} | "
                      f"{(after - before) / minutes:+.3f} |", flush=True)
                result.backend.close()


if __name__ == "__main__":
    main()
