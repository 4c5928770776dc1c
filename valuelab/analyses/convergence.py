"""Convergence: do different models (or a model and a reference population) hold the same utilities?

The paper compares utility vectors over one outcome set across models (Mazeika et al. 2025, Figs. 7 and 13)
by cosine similarity of z-scored utilities, which is Pearson's r. We report Pearson r and Spearman ρ over the
outcome ids two utility sets share, each with a bootstrap interval over outcomes, a correlation matrix over
any number of sets, and the random-responder baseline: two random responders' utilities are independent
noise, so r ≈ 0 within about ±2/√n. A reference file is any CSV with `id` (or `item`, as `valuelab fit`
writes) and `mean` columns, such as `utilities.csv` from `valuelab utilities` or utilities from a human study.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valuelab import stats
from valuelab.analyses import BUDGET_OPT, N_BOOT_OPT, OUTCOMES_OPT, TEMPLATE_OPT, Analysis, Option, Reading
from valuelab.analyses.common import N_BOOT, Metric, new_figure, resolve_outcomes
from valuelab.elicit.outcomes import Outcome
from valuelab.errors import InputError
from valuelab.fit.utilities import elicit_utilities
from valuelab.prompts import DEFAULT_TEMPLATE, Template
from valuelab.store import StoredModel

MIN_SHARED = 3
UtilitySource = Any
"""A `UtilityResult`, a DataFrame with id (or item) and mean, a Series of means by id, or a CSV path."""


def read_utilities(path: str | Path) -> pd.Series:
    """Means by outcome id from a CSV with `id` (or `item`) and `mean` columns; errors name file, line and
    field."""
    file = str(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError("file not found", file=file) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV ({exc})", file=file) from None
    key = "id" if "id" in frame.columns else "item"
    for col in (key, "mean"):
        if col not in frame.columns:
            raise InputError(f"missing column {col!r}; a utilities file needs id and mean", file=file, line=1,
                             field="id" if col == "item" else col)
    if frame.empty:
        raise InputError("no utility rows", file=file)
    seen: dict[str, int] = {}
    means = []
    for pos, (oid, raw) in enumerate(zip(frame[key].str.strip(), frame["mean"], strict=True)):
        line = pos + 2
        if not oid:
            raise InputError("empty outcome id", file=file, line=line, field=key)
        if oid in seen:
            raise InputError(f"duplicate id {oid!r} (first on line {seen[oid]})", file=file, line=line,
                             field=key)
        seen[oid] = line
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise InputError(f"mean must be a finite number, got {raw!r}", file=file, line=line, field="mean")
        means.append(value)
    return pd.Series(means, index=list(seen), name="mean", dtype=float)


def as_utilities(source: UtilitySource) -> pd.Series:
    """Means by id from any of the accepted sources."""
    if isinstance(source, str | Path):
        return read_utilities(source)
    if hasattr(source, "utilities"):
        source = source.utilities
    if isinstance(source, pd.Series):
        return source.astype(float)
    if isinstance(source, pd.DataFrame):
        key = "id" if "id" in source.columns else "item"
        return pd.Series(source["mean"].to_numpy(float), index=source[key].astype(str), name="mean")
    raise InputError(f"cannot read utilities from a {type(source).__name__}; give a UtilityResult, "
                     "a DataFrame with id and mean, or a CSV path")


def correlate(u: pd.Series, v: pd.Series, *, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Pearson and Spearman over the shared ids (`valuelab.stats.correlate`: bootstrap intervals over
    outcomes, and a shuffled pairing as the unrelated-models baseline)."""
    shared = u.index.intersection(v.index)
    if len(shared) < MIN_SHARED:
        raise InputError(f"the two utility sets share {len(shared)} outcome ids; need at least {MIN_SHARED}",
                         field="id")
    both = stats.correlate(u.loc[shared].to_numpy(float), v.loc[shared].to_numpy(float), n_boot=n_boot, seed=seed)
    return {"n_shared": len(shared), "pearson_r": both["pearson"], "spearman_rho": both["spearman"]}


@dataclass
class ConvergenceResult:
    """Correlations for every pair of utility sets (`pairs`), matrices, and the headline pair's numbers."""

    pairs: pd.DataFrame
    pearson_matrix: pd.DataFrame
    spearman_matrix: pd.DataFrame
    headline: tuple[str, str]
    pearson_r: Metric
    spearman_rho: Metric
    calls: int = 0
    budget: int | None = None

    def to_frame(self) -> pd.DataFrame:
        return self.pairs

    def to_dict(self) -> dict:
        return {"analysis": "convergence", "headline": "pearson_r", "headline_pair": list(self.headline),
                "pearson_r": self.pearson_r.to_dict(), "spearman_rho": self.spearman_rho.to_dict(),
                "pairs": self.pairs.to_dict(orient="records"),
                "pearson_matrix": self.pearson_matrix.to_dict(), "calls": self.calls, "budget": self.budget}


def compare(named: Mapping[str, UtilitySource], *, headline: tuple[str, str] | None = None,
            n_boot: int = N_BOOT, seed: int = 0) -> ConvergenceResult:
    """Correlate every pair of named utility sets; `headline` picks the pair reported first (default: the
    first two)."""
    if len(named) < 2:
        raise InputError(f"need at least two utility sets to compare, got {len(named)}")
    vectors = {name: as_utilities(src) for name, src in named.items()}
    names = list(vectors)
    rows, metrics = [], {}
    for a, b in itertools.combinations(names, 2):
        res = correlate(vectors[a], vectors[b], n_boot=n_boot, seed=seed)
        metrics[(a, b)] = metrics[(b, a)] = res
        row = {"a": a, "b": b, "n_shared": res["n_shared"]}
        for key in ("pearson_r", "spearman_rho"):
            m = res[key]
            row.update({key: m.value, f"{key}_lo": m.lo, f"{key}_hi": m.hi,
                        f"{key}_baseline_lo": m.baseline_lo, f"{key}_baseline_hi": m.baseline_hi})
        rows.append(row)
    pairs = pd.DataFrame(rows)

    def matrix(key: str) -> pd.DataFrame:
        return pd.DataFrame([[1.0 if a == b else metrics[(a, b)][key].value for b in names] for a in names],
                            index=names, columns=names)

    headline = headline or (names[0], names[1])
    if headline not in metrics:
        raise InputError(f"unknown headline pair {headline}; names are {', '.join(names)}")
    return ConvergenceResult(pairs, matrix("pearson_r"), matrix("spearman_rho"), headline,
                             metrics[headline]["pearson_r"], metrics[headline]["spearman_rho"])


def run(model: StoredModel, *, outcomes: str | Path | Sequence[Outcome] = "quick", budget: int | None = None,
        seed: int = 0, reference: UtilitySource | None = None,
        others: Mapping[str, UtilitySource] | Sequence[UtilitySource] = (), name: str | None = None,
        template: str | Template = DEFAULT_TEMPLATE, system: str | None = None, n_boot: int = N_BOOT,
        **utility_options) -> ConvergenceResult:
    """Elicit this model's utilities and correlate them with a `reference` set and/or `others` (other
    models' utilities over the same outcome ids). The headline is model vs reference, else model vs the first
    other."""
    if reference is None and not others:
        raise InputError("give a reference utilities file or other models' utilities to compare with",
                         field="reference")
    if not isinstance(others, Mapping):
        others = {(Path(o).stem if isinstance(o, str | Path) else f"other-{k + 1}"): o
                  for k, o in enumerate(others)}
    me = name or model.identity["model"]
    result = elicit_utilities(model, resolve_outcomes(outcomes), template=template, system=system,
                              budget=budget, seed=seed, **utility_options)
    named = {me: result.utilities, **others}
    if reference is not None:
        named["reference"] = reference
    out = compare(named, headline=(me, "reference" if reference is not None else next(iter(others))),
                  n_boot=n_boot, seed=seed)
    return replace(out, calls=result.calls, budget=budget)


def figure(result: ConvergenceResult) -> Figure:
    """Heat map of Pearson r between every pair of utility sets."""
    m = result.pearson_matrix
    fig, ax = new_figure(1.2 * len(m) + 2.5, 1.0 * len(m) + 1.5)
    image = ax.imshow(m.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(m)), m.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(m)), m.index)
    for (i, j), value in np.ndenumerate(m.to_numpy()):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="Pearson r")
    ax.set_title("Convergence: utility correlation between sets")
    return fig


ANALYSIS = Analysis(
    name="convergence", title="Convergence with other models",
    question="How similar are this model's utilities to other models'?",
    budget="pairs of outcomes (each asked in both orders)", run=run, figure=figure, headline="pearson_r",
    options=(OUTCOMES_OPT, BUDGET_OPT, N_BOOT_OPT, TEMPLATE_OPT,
             Option("reference", str, "utilities to compare with (CSV with id,mean)"),
             Option("others", str, "more utility CSVs (id,mean); repeat the option", multiple=True)),
    readings={
        "pearson_r": Reading("correlation", "higher",
                       "Correlation between this model's utilities and the other set's over shared outcomes."),
    },
)
