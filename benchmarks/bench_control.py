"""Control methods side by side (issue 19): held-out agreement gained over the base model, seconds to build,
and inference overhead, for a system prompt, activation steering and LoRA fine-tuning (SFT, DPO, match).

The target is the planted synthetic assembly (outcomes about animals preferred to outcomes about money, 15
members, 12 outcomes, 3 held out), as in bench_finetune.py. Every method answers the same held-out pairs in
both orders from a fresh store; "answer s" is the model time for those prompts and "overhead" its ratio to the
base model's. Build seconds: the steering folder's or the adapter's own record (LoRA counts its training steps).

    .venv/bin/python benchmarks/bench_control.py                       # embedded model, CPU
    .venv/bin/python benchmarks/bench_control.py --assembly-seed 2 --objectives   # other held-out outcomes, no LoRA
    .venv/bin/python benchmarks/bench_control.py --model hf:ORG/NAME --device cuda --steps 40
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from valuelab.control.evaluate import evaluate
from valuelab.control.finetune import OBJECTIVES, finetune
from valuelab.control.planted import TEMPLATE, planted_targets
from valuelab.control.steer import VECTORS, steer
from valuelab.models import load_model
from valuelab.store import Store, StoredModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=12, help="LoRA steps")
    parser.add_argument("--layers", type=int, default=6, help="LoRA on the top N layers (0: all)")
    parser.add_argument("--objectives", nargs="*", default=list(OBJECTIVES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--assembly-seed", type=int, default=0, help="seed of the planted assembly (which "
                        "outcomes are held out); 0 is the one the tests use")
    args = parser.parse_args()
    targets = planted_targets(seed=args.assembly_seed)
    base = load_model(args.model, device=args.device)
    store = Store()
    with tempfile.TemporaryDirectory() as tmp:
        prompt = steer(None, targets, method="prompt", out=Path(tmp) / "prompt")
        methods = {"prompt": StoredModel(base, store, system=prompt.system)}
        build = {"base": 0.0, "prompt": prompt.build_seconds}
        chosen = {}
        for vector in VECTORS:
            name = "activation" if vector == "fitted" else f"activation-{vector}"
            built = steer(base, targets, out=Path(tmp) / vector, vector=vector, template=TEMPLATE, seed=args.seed,
                          device=args.device)
            methods[name] = load_model(built.spec, device=args.device)
            build[name] = built.build_seconds
            chosen[name] = (f"layer {built.settings['layer']}, strength {built.settings['strength']:.3g}, "
                            f"validation agreement {built.settings['validation_agreement']:.3f} (unsteered "
                            f"{built.settings['validation_agreement_unsteered']:.3f})")
        for objective in args.objectives:
            tuned = finetune(base, targets, objective=objective, out=Path(tmp) / objective, steps=args.steps,
                             seed=args.seed, layers=args.layers or None, template=TEMPLATE)
            methods[f"lora-{objective}"] = tuned.backend
            build[f"lora-{objective}"] = float(sum(tuned.step_seconds))
        result = evaluate(base, methods, targets, store=store, template=TEMPLATE, utilities=False, build=build,
                          seed=args.seed)
    summary = result.summary().set_index("method")
    base_row = summary.loc["base"]
    print(f"model {args.model} on {args.device}, torch threads {torch.get_num_threads()}, "
          f"assembly seed {args.assembly_seed}, {len(targets.train)} training pairs, {len(targets.heldout)} held-out "
          "pairs")
    for name, text in chosen.items():
        print(f"{name}: {text}")
    print()
    print("| method | held-out agreement [95% interval] | gain | build s | answer s | overhead | perplexity "
          "| format compliance |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in summary.iterrows():
        print(f"| {name} | {row['heldout_agreement']:.3f} [{row['heldout_agreement_lo']:.3f}, "
              f"{row['heldout_agreement_hi']:.3f}] | {row['heldout_agreement'] - base_row['heldout_agreement']:+.3f} | "
              f"{row['build_seconds']:.1f} | {row['answer_seconds']:.2f} | "
              f"{row['answer_seconds'] / max(base_row['answer_seconds'], 1e-9):.2f}× | {row['perplexity']:.2f} | "
              f"{row['format_compliance']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
