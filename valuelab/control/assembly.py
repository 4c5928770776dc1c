"""A simulated citizen assembly: seeded personas vote on forced-choice pairs of outcomes.

Mazeika et al. 2025 §7 (Fig. 9; reference/paper-utility-engineering.md §3) sample citizens from U.S. Census
microdata, let an LLM simulate each one, and take the share of members choosing each outcome as the target
distribution and the majority vote for evaluation. Here personas come from published marginals
(`valuelab/data/personas/us_marginals.yaml`) sampled independently (an approximation: real attributes are
correlated), or from a user table with one row per person (a joint distribution, e.g. an ACS PUMS extract).
Each member answers every pair in both orders through the store, as the model conditioned on a persona system
prompt; its vote is the side its order-debiased P(first) favours. A real assembly's votes can be brought as a
CSV instead. A `synthetic:` model gives a synthetic assembly: member k is a Thurstonian agent whose utilities
are the model's planted ones plus persona noise, so tests know the truth.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from valuelab.control.targets import Targets, make_targets
from valuelab.elicit.outcomes import Outcome, load_outcomes
from valuelab.elicit.pairwise import prefer_pairs
from valuelab.errors import InputError
from valuelab.fit import read_prefs
from valuelab.items.files import data_file, load_items
from valuelab.manifest import build_manifest
from valuelab.models.synthetic import SyntheticBackend
from valuelab.prompts import DEFAULT_TEMPLATE, Template, get_template
from valuelab.stats import write_json
from valuelab.store import StoredModel

PERSONA_PREAMBLE = ("You are answering as one member of a citizens' assembly of people living in the "
                    "United States.")
PERSONA_CLOSING = "Answer every question as this person would, from their own point of view."
PERSONA_NOISE = 0.5
"""Persona spread of a synthetic assembly, in utility units (the planted utilities have sd about 1)."""


@dataclass(frozen=True)
class Persona:
    """One sampled member: attribute -> value, and the phrases that describe them."""

    attributes: dict[str, str]
    phrases: tuple[str, ...]

    def system_prompt(self) -> str:
        head, last = self.phrases[:-1], self.phrases[-1]
        described = f"{', '.join(head)} and {last}" if head else last
        return f"{PERSONA_PREAMBLE} This member is {described}. {PERSONA_CLOSING}"


@dataclass
class Population:
    """Independent marginals (attribute -> value, text, share, source) or a table of people to draw from."""

    marginals: dict[str, pd.DataFrame] = field(default_factory=dict)
    table: pd.DataFrame | None = None
    source: str = ""

    def sample(self, size: int, seed: int) -> list[Persona]:
        if size < 1:
            raise InputError(f"an assembly needs at least one member, got size {size}", field="size")
        rng = np.random.default_rng(seed)
        if self.table is not None:
            weights = self.table["weight"].to_numpy(float) if "weight" in self.table else None
            rows = rng.choice(len(self.table), size, p=None if weights is None else weights / weights.sum())
            columns = [c for c in self.table.columns if c != "weight"]
            people = [self.table.iloc[r] for r in rows]
            return [Persona({c: str(p[c]) for c in columns},
                            tuple(f"{c.replace('_', ' ')}: {p[c]}" for c in columns)) for p in people]
        draws = {a: rng.choice(len(m), size, p=m["share"].to_numpy()) for a, m in self.marginals.items()}
        values = {a: m["value"].astype(str).to_numpy()[draws[a]] for a, m in self.marginals.items()}
        texts = {a: m["text"].astype(str).to_numpy()[draws[a]] for a, m in self.marginals.items()}
        return [Persona({a: str(values[a][k]) for a in values}, tuple(str(texts[a][k]) for a in texts))
                for k in range(size)]


MARGINAL_FIELDS = {"attribute": str, "value": str, "share": (float, int), "text": str, "source": str}
SHARE_TOLERANCE = 0.05
"""Rounded published shares, or a dropped "other" category, may miss 1 by a little; more is a mistake."""


def load_population(path: str | Path | None = None) -> Population:
    """The packaged U.S. marginals, a YAML file of the same shape, or a CSV with one row per person."""
    path = Path(path) if path is not None else data_file("personas", "us_marginals.yaml")
    file = str(path)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise InputError("no such file", file=file)
        table = pd.read_csv(path, dtype=str).dropna(how="all")
        if table.empty:
            raise InputError("no people in the population table", file=file)
        if "weight" in table:
            table["weight"] = pd.to_numeric(table["weight"], errors="coerce")
            bad = ~(table["weight"] > 0)
            if bad.any():
                raise InputError("weight must be a positive number", file=file,
                                 line=int(np.argmax(bad.to_numpy())) + 2, field="weight")
        return Population(table=table, source=file)
    items = load_items(path, MARGINAL_FIELDS)
    rows = pd.DataFrame([{**item, "line": line} for line, item in items])
    marginals = {}
    for attribute, group in rows.groupby("attribute", sort=False):
        for _, row in group.iterrows():
            if row["share"] <= 0:
                raise InputError("share must be positive", file=file, line=int(row["line"]), field="share")
        total = float(group["share"].sum())
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise InputError(f"the shares of {attribute!r} sum to {total:.3f}, not 1", file=file,
                             line=int(group["line"].iloc[0]), field="share")
        if group["value"].duplicated().any():
            raise InputError(f"duplicate value of {attribute!r}", file=file,
                             line=int(group["line"][group["value"].duplicated()].iloc[0]), field="value")
        marginals[str(attribute)] = group.assign(share=group["share"] / total).reset_index(drop=True)
    return Population(marginals=marginals, source=file)


def choose_pairs(ids: Sequence[str], budget: int | None, seed: int) -> list[tuple[str, str]]:
    """`budget` pairs (default 2·N·log₂N, as for utilities): every pair when the budget allows, else a seeded
    random cycle (keeps the graph connected) and random pairs."""
    n = len(ids)
    everything = list(itertools.combinations(ids, 2))
    budget = budget if budget is not None else int(2 * n * np.log2(n))
    if budget >= len(everything):
        return everything
    if budget < n:
        raise InputError(f"a budget of {budget} pairs is below the minimum of {n} (one per outcome, so the "
                         "comparison graph is connected)", field="budget")
    rng = np.random.default_rng(seed)
    order = [ids[k] for k in rng.permutation(n)]
    chosen = {tuple(sorted((order[k], order[(k + 1) % n]))) for k in range(n)}
    rest = [p for p in everything if tuple(sorted(p)) not in chosen]
    extra = rng.choice(len(rest), budget - len(chosen), replace=False)
    chosen |= {tuple(sorted(rest[k])) for k in extra}
    return [p for p in everything if tuple(sorted(p)) in chosen]


def tally(responses: pd.DataFrame) -> pd.DataFrame:
    """Votes per pair from member answers (member, id_a, id_b, p_first): each member votes for the side its
    P(first) favours, half a vote each way when it is exactly ½."""
    if responses.empty:
        raise InputError("the assembly is empty: no member answered any pair", field="size")
    vote_a = np.where(responses["p_first"] > 0.5, 1.0, np.where(responses["p_first"] < 0.5, 0.0, 0.5))
    votes = (responses.assign(wins_a=vote_a, wins_b=1.0 - vote_a)
             .groupby(["id_a", "id_b"], sort=False)[["wins_a", "wins_b"]].sum().reset_index())
    votes["share_a"] = votes["wins_a"] / (votes["wins_a"] + votes["wins_b"])
    return votes


@dataclass
class AssemblyResult:
    """The members, their answers, the votes per pair, and the targets fitted to them."""

    personas: pd.DataFrame
    responses: pd.DataFrame
    votes: pd.DataFrame
    targets: Targets
    info: dict
    manifest: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.targets.pairs

    def to_dict(self) -> dict:
        pairs = self.targets.pairs
        return {**self.info, "n_pairs": len(pairs), "n_train_pairs": int((pairs["split"] == "train").sum()),
                "n_heldout_pairs": int((pairs["split"] == "heldout").sum()),
                "n_train_outcomes": len(self.targets.train_ids),
                "n_heldout_outcomes": len(self.targets.heldout_ids),
                "mean_majority_share": float(np.maximum(pairs["share_a"], 1 - pairs["share_a"]).mean())}

    def write(self, directory: str | Path) -> Path:
        """votes.csv (item_a,item_b,wins_a,wins_b: `valuelab fit` reads it), targets.csv, utilities.csv,
        split.json, personas.csv, responses.csv and manifest.json."""
        directory = Path(directory)
        self.targets.write(directory)
        votes = self.votes.rename(columns={"id_a": "item_a", "id_b": "item_b"})
        votes[["item_a", "item_b", "wins_a", "wins_b"]].to_csv(directory / "votes.csv", index=False,
                                                               float_format="%.6g")
        self.personas.to_csv(directory / "personas.csv", index=False)
        self.responses.to_csv(directory / "responses.csv", index=False, float_format="%.6g")
        write_json(directory / "manifest.json", {**self.manifest, "assembly": self.to_dict()})
        return directory


def _synthetic_members(backend: SyntheticBackend, outcomes: Sequence[Outcome], size: int, seed: int,
                       noise: float) -> list[SyntheticBackend]:
    """Member k: the planted utilities plus N(0, noise²) persona noise per outcome, seeded."""
    rng = np.random.default_rng(seed)
    members = []
    for k in range(size):
        planted = {o.text: backend.utility(o.text) for o in outcomes}
        utilities = {t: (m + noise * rng.normal(), v) for t, (m, v) in planted.items()}
        members.append(SyntheticBackend(backend.seed * 100_003 + k, noise=backend.noise,
                                        position_bias=backend.position_bias, utilities=utilities))
    return members


def build_assembly(model: StoredModel, *, size: int = 6, outcomes: str | Path | Sequence[Outcome] = "quick",
                   budget: int | None = None, seed: int = 0,
                   population: str | Path | Population | None = None,
                   template: str | Template = DEFAULT_TEMPLATE, holdout_outcomes: float = 0.25,
                   persona_noise: float = PERSONA_NOISE) -> AssemblyResult:
    """Sample `size` personas, let each answer the same `budget` pairs (see `choose_pairs`) as `model` given
    the persona, tally the votes and fit the targets. A synthetic model gives a synthetic assembly."""
    outcomes = load_outcomes(outcomes) if isinstance(outcomes, str | Path) else list(outcomes)
    template = template if isinstance(template, Template) else get_template(template)
    if len(outcomes) < 4:
        raise InputError("an assembly needs at least 4 outcomes (3 to train on, 1 held out), "
                         f"got {len(outcomes)}", field="outcomes")
    pop = population if isinstance(population, Population) else load_population(population)
    personas = pop.sample(size, seed)
    text = {o.id: o.text for o in outcomes}
    pairs = choose_pairs([o.id for o in outcomes], budget, seed)
    synthetic = isinstance(model.backend, SyntheticBackend)
    members = (_synthetic_members(model.backend, outcomes, size, seed, persona_noise) if synthetic else
               [model.backend] * size)
    calls_before = model.counts.asked
    rows = []
    for k, (persona, member) in enumerate(zip(personas, members, strict=True)):
        asker = StoredModel(member, model.store, mode=model.requested_mode, n_samples=model.n_samples,
                            temperature=model.temperature, seed=model.seed) if synthetic else model
        prefs = prefer_pairs(asker, [(text[a], text[b]) for a, b in pairs], template,
                             system=None if synthetic else persona.system_prompt())
        rows += [{"member": k, "id_a": a, "id_b": b, "p_first": p.p_first, "position_bias": p.position_bias,
                  "mass": p.mass} for (a, b), p in zip(pairs, prefs, strict=True)]
    responses = pd.DataFrame(rows, columns=["member", "id_a", "id_b", "p_first", "position_bias", "mass"])
    votes = tally(responses)
    targets = make_targets(votes, outcomes, holdout_outcomes=holdout_outcomes, seed=seed)
    people = pd.DataFrame([{"member": k, **p.attributes, "system_prompt": p.system_prompt()}
                           for k, p in enumerate(personas)])
    info = {"size": size, "n_outcomes": len(outcomes), "budget": len(pairs), "seed": seed, "heldout": holdout_outcomes,
            "synthetic": synthetic, "population": pop.source,
            "template": template.name, "template_text": template.text,
            "model_calls": int(model.counts.asked - calls_before) if not synthetic else size * 2 * len(pairs)}
    manifest = build_manifest(model, command="control assembly", seed=seed)
    return AssemblyResult(people, responses, votes, targets, info, manifest)


def from_votes(path: str | Path, outcomes: str | Path | Sequence[Outcome], *, holdout_outcomes: float = 0.25,
               seed: int = 0) -> AssemblyResult:
    """A real assembly's votes, a CSV of item_a,item_b,wins_a,wins_b over outcome ids, as the assembly."""
    outcomes = load_outcomes(outcomes) if isinstance(outcomes, str | Path) else list(outcomes)
    comparisons = read_prefs(path)
    known = {o.id for o in outcomes}
    unknown = [i for i in comparisons.items if i not in known]
    if unknown:
        rows = pd.read_csv(path, dtype=str, skipinitialspace=True)
        column = "item_a" if (rows["item_a"].str.strip() == unknown[0]).any() else "item_b"
        line = int(np.argmax((rows[column].str.strip() == unknown[0]).to_numpy())) + 2
        raise InputError(f"outcome {unknown[0]!r} is not in the outcome set: the votes are over outcomes the "
                         "model would not be asked about", file=str(path), line=line, field=column)
    items = np.array(comparisons.items)
    votes = pd.DataFrame({"id_a": items[comparisons.a], "id_b": items[comparisons.b],
                          "wins_a": comparisons.wins_a, "wins_b": comparisons.wins_b})
    votes["share_a"] = votes["wins_a"] / (votes["wins_a"] + votes["wins_b"])
    targets = make_targets(votes, outcomes, holdout_outcomes=holdout_outcomes, seed=seed)
    info = {"size": None, "n_outcomes": len(outcomes), "budget": len(votes), "seed": seed, "heldout": holdout_outcomes,
            "synthetic": False, "population": None, "votes_file": str(path)}
    return AssemblyResult(pd.DataFrame(), pd.DataFrame(), votes, targets, info)
