"""Power and false-flag rate of `valuelab diff`'s outcome test, on planted synthetic agents.

Per seed: a Thurstonian agent with utilities ~ N(0, 1) (variance 0.25) answering by sampling (5 answers a prompt,
both orders), and a copy with 5 random outcomes and every outcome of one category moved by `--shift`. Each is
fitted once (the quick outcome set, `--budget` pairs, bootstrap standard errors), the unchanged agent once more
under another seed. Reports: the share of moved outcomes flagged (power), the share of unchanged outcomes flagged
(false flags), the share of seeds whose moved category is flagged, categories flagged with no moved outcome, and
how often the same agent under two seeds gets any flag.

    .venv/bin/python benchmarks/bench_diff.py --seeds 20 --shift 1.5 --budget 300
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from valuelab.analyses import run_analysis
from valuelab.analyses.common import resolve_outcomes
from valuelab.models.synthetic import SyntheticBackend
from valuelab.report.diff import _utilities_frame, outcome_shifts
from valuelab.store import Store, StoredModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--shift", type=float, default=1.5)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    outcomes = resolve_outcomes("quick")
    categories = sorted({o.category for o in outcomes})

    def fitted(truth: dict, seed: int):
        model = StoredModel(SyntheticBackend(0, utilities=truth), Store(), mode="sample", n_samples=args.samples,
                            progress=False)
        result = run_analysis("utilities", model, outcomes=outcomes, budget=args.budget, seed=seed, text_check=0,
                              holdout_pairs=0.0, n_boot=100)
        return _utilities_frame(result.tables["All outcomes"], "bench")

    found = moved_total = false = unchanged = category_found = stray_categories = seeds_with_flags = 0
    z_null = []
    started = time.time()
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        base = {o.text: (float(rng.normal()), 0.25) for o in outcomes}
        category = categories[seed % len(categories)]
        others = [o.text for o in outcomes if o.category != category]
        moved = set(rng.choice(others, 5, replace=False)) | {o.text for o in outcomes if o.category == category}
        after = {t: (m + args.shift * (t in moved), v) for t, (m, v) in base.items()}
        before = fitted(base, seed)
        shifted, again = fitted(after, seed + 100), fitted(base, seed + 200)
        table, by_category, _ = outcome_shifts(before, shifted)
        flagged = set(table.loc[table["flagged"], "text"])
        found, moved_total = found + len(flagged & moved), moved_total + len(moved)
        false, unchanged = false + len(flagged - moved), unchanged + len(set(table["text"]) - moved)
        hit = bool(by_category.set_index("category").at[category, "flagged"])
        category_found += hit
        touched = {o.category for o in outcomes if o.text in moved}
        stray_categories += len(set(by_category.loc[by_category["flagged"], "category"]) - touched)
        null, null_categories, _ = outcome_shifts(before, again)
        seeds_with_flags += bool(null["flagged"].any() or null_categories["flagged"].any())
        z_null += list(null["z"])
        print(f"seed {seed}: {len(flagged & moved)}/{len(moved)} moved flagged, {len(flagged - moved)} unchanged "
              f"flagged, category {'flagged' if hit else 'missed'}, same agent {int(null['flagged'].sum())} "
              f"flagged ({time.time() - started:.0f} s)", flush=True)
    n = args.seeds
    print(f"\nshift {args.shift}, budget {args.budget}, {args.samples} samples, {n} seeds:")
    print(f"power (moved outcomes flagged)       {found / moved_total:.3f}  ({found}/{moved_total})")
    print(f"false flags (unchanged flagged)      {false / unchanged:.4f}  ({false}/{unchanged})")
    print(f"moved category flagged               {category_found / n:.2f}  ({category_found}/{n})")
    print(f"categories flagged with nothing moved {stray_categories}")
    print(f"same agent, two seeds: any flag      {seeds_with_flags}/{n}")
    print(f"same agent: sd of z (1 if calibrated) {np.std(z_null):.2f}")


if __name__ == "__main__":
    main()
