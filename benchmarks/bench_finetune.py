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

from valuelab.control.evaluate import heldout_agreement
from valuelab.control.finetune import OBJECTIVES, finetune, peak_memory_mb
from valuelab.control.planted import TEMPLATE, planted_targets
from valuelab.models import load_model
from valuelab.store import StoredModel


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
    before = heldout_agreement(StoredModel(backend), targets, TEMPLATE)
    print(f"model {args.model} on {args.device}, torch threads {torch.get_num_threads()}, "
          f"{len(targets.train)} training pairs ({2 * len(targets.train)} prompts), "
          f"{len(targets.holdout_outcomes)} held-out pairs; held-out agreement before: {before:.3f}\n")
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
                after = heldout_agreement(StoredModel(result.backend), targets, TEMPLATE)
                step = float(np.median(result.step_seconds))
                memory = result.peak_memory_mb - loaded
                print(f"| {objective} | {seed} | {step:.2f} | {memory:.0f} | {after:.3f} | "
                      f"{(after - before) / minutes:+.3f} |", flush=True)
                result.backend.close()


if __name__ == "__main__":
    main()
