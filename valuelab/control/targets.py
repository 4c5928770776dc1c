"""Control targets: the assembly's Thurstonian utilities, per-pair target probabilities and an outcome split.

The split is BY OUTCOME (Mazeika et al. 2025 §7 report held-out accuracy; how they split is unknown, see
reference/paper-utility-engineering.md §3): a share of the outcomes is held out, training uses only pairs of
two training outcomes, and a pair is held out when at least one of its outcomes is. Requiring both outcomes
to be held out would leave very few pairs on small outcome sets; with "at least one", every held-out pair
still asks about an outcome the fine-tuning never saw, so the score measures generalisation to new outcomes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from valuelab.elicit.outcomes import Outcome
from valuelab.errors import InputError
from valuelab.fit import ThurstonianModel
from valuelab.stats import write_json

TARGET_COLUMNS = ("id_a", "id_b", "text_a", "text_b", "wins_a", "wins_b", "share_a", "majority", "target_p",
                  "split")
SPLIT_RULE = "held-out pairs involve at least one held-out outcome; training pairs only training outcomes"


def split_outcomes(ids: list[str], holdout_outcomes: float, seed: int) -> tuple[list[str], list[str]]:
    """(training ids, held-out ids): a seeded share `holdout_outcomes` of the outcomes, at least one, is held out."""
    if not 0.0 < holdout_outcomes < 1.0:
        raise InputError(f"the held-out share must be between 0 and 1, got {holdout_outcomes}",
                         field="holdout_outcomes")
    n_held = max(1, round(holdout_outcomes * len(ids)))
    if len(ids) - n_held < 3:
        raise InputError(f"{len(ids)} outcomes leave fewer than 3 for training after holding out {n_held}; "
                         "give more outcomes or a smaller held-out share", field="outcomes")
    held = set(np.random.default_rng(seed).choice(len(ids), n_held, replace=False).tolist())
    return [i for k, i in enumerate(ids) if k not in held], [i for k, i in enumerate(ids) if k in held]


def majority(share_a: float) -> str:
    return "a" if share_a > 0.5 else "b" if share_a < 0.5 else "tie"


@dataclass
class Targets:
    """What fine-tuning aims at: utilities (id, text, category, mean, variance) and one row per asked pair."""

    utilities: pd.DataFrame
    pairs: pd.DataFrame
    train_ids: list[str]
    heldout_ids: list[str]

    @property
    def train(self) -> pd.DataFrame:
        return self.pairs[self.pairs["split"] == "train"]

    @property
    def heldout(self) -> pd.DataFrame:
        return self.pairs[self.pairs["split"] == "heldout"]

    def write(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.pairs.to_csv(directory / "targets.csv", index=False, float_format="%.6g")
        self.utilities.to_csv(directory / "utilities.csv", index=False, float_format="%.6g")
        split = {"train": self.train_ids, "heldout": self.heldout_ids, "rule": SPLIT_RULE}
        write_json(directory / "split.json", split)


def make_targets(votes: pd.DataFrame, outcomes: list[Outcome], *, holdout_outcomes: float = 0.25, seed: int = 0,
                 family: str = "thurstonian") -> Targets:
    """Fit the assembly's utilities to its votes (id_a, id_b, wins_a, wins_b); split the pairs by outcome."""
    if votes.empty:
        raise InputError("the assembly cast no votes: nothing to build targets from", field="votes")
    by_id = {o.id: o for o in outcomes}
    asked = set(votes["id_a"]) | set(votes["id_b"])
    unknown = sorted(asked - set(by_id))
    if unknown:
        raise InputError(f"votes name {len(unknown)} outcome(s) the model is not asked about, "
                         f"e.g. {unknown[0]!r}", field="id_a")
    ids = [o.id for o in outcomes if o.id in asked]
    train_ids, heldout_ids = split_outcomes(ids, holdout_outcomes, seed)
    frame = votes.rename(columns={"id_a": "item_a", "id_b": "item_b"})
    frame = frame[["item_a", "item_b", "wins_a", "wins_b"]]
    fit = ThurstonianModel(model=family).fit(frame)
    index = {item: k for k, item in enumerate(fit.items_)}
    target_p = fit.predict_proba(np.array([index[a] for a in votes["id_a"]]),
                                 np.array([index[b] for b in votes["id_b"]]))
    held = set(heldout_ids)
    share = votes["wins_a"] / (votes["wins_a"] + votes["wins_b"])
    pairs = pd.DataFrame({
        "id_a": votes["id_a"], "id_b": votes["id_b"],
        "text_a": [by_id[i].text for i in votes["id_a"]], "text_b": [by_id[i].text for i in votes["id_b"]],
        "wins_a": votes["wins_a"], "wins_b": votes["wins_b"], "share_a": share,
        "majority": [majority(s) for s in share], "target_p": target_p,
        "split": ["heldout" if a in held or b in held else "train"
                  for a, b in zip(votes["id_a"], votes["id_b"], strict=True)]}).reset_index(drop=True)
    for split in ("train", "heldout"):
        if not (pairs["split"] == split).any():
            raise InputError(f"no {split} pairs after the outcome split: ask more pairs (a larger budget)",
                             field="budget")
    utilities = pd.DataFrame({"id": list(fit.items_), "mean": fit.mean_, "variance": fit.variance_})
    utilities.insert(1, "text", [by_id[i].text for i in utilities["id"]])
    utilities.insert(2, "category", [by_id[i].category for i in utilities["id"]])
    return Targets(utilities.sort_values("mean", ascending=False, ignore_index=True), pairs, train_ids,
                   heldout_ids)


def load_targets(directory: str | Path) -> Targets:
    """Read what `AssemblyResult.write` wrote; every pair must be over outcomes in utilities.csv."""
    directory = Path(directory)
    files = {name: directory / name for name in ("targets.csv", "utilities.csv", "split.json")}
    for name, path in files.items():
        if not path.is_file():
            raise InputError(f"missing {name}: not an assembly target folder (write one with "
                             "`valuelab control assembly`)", file=str(path))
    pairs = pd.read_csv(files["targets.csv"], dtype={"id_a": str, "id_b": str})
    missing = [c for c in TARGET_COLUMNS if c not in pairs.columns]
    if missing:
        raise InputError(f"missing column {missing[0]!r}", file=str(files["targets.csv"]), line=1,
                         field=missing[0])
    if pairs.empty:
        raise InputError("no pairs: the assembly is empty", file=str(files["targets.csv"]))
    utilities = pd.read_csv(files["utilities.csv"], dtype={"id": str})
    known = set(utilities["id"])
    for column in ("id_a", "id_b"):
        bad = ~pairs[column].isin(known)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise InputError(f"outcome {pairs[column].iloc[row]!r} has no assembly utility: the target is "
                             "over an outcome the assembly was not asked about",
                             file=str(files["targets.csv"]),
                             line=row + 2, field=column)
    bad_split = ~pairs["split"].isin(["train", "heldout"])
    if bad_split.any():
        row = int(np.argmax(bad_split.to_numpy()))
        raise InputError("split must be train or heldout", file=str(files["targets.csv"]), line=row + 2,
                         field="split")
    split = json.loads(files["split.json"].read_text(encoding="utf-8"))
    return Targets(utilities, pairs, list(split["train"]), list(split["heldout"]))
