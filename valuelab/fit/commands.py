"""The work behind ``valuelab fit`` (argument parsing lives in ``valuelab/cli.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from valuelab.errors import InputError
from valuelab.fit.bootstrap import bootstrap
from valuelab.fit.io import Comparisons, check_connected, components, read_prefs, write_utils
from valuelab.fit.metrics import evaluate, split_holdout
from valuelab.fit.thurstonian import ThurstonianModel


def _fit_one(comp: Comparisons, model: str, device: str, n_boot: int, seed: int,
             holdout_pairs: float | None) -> tuple[pd.DataFrame, dict]:
    train, held_out = (comp, None) if not holdout_pairs else split_holdout(comp, holdout_pairs, seed)
    try:
        check_connected(train)
    except InputError as exc:
        if held_out is None:
            raise
        raise InputError(f"holding out {holdout_pairs:g} of the pairs disconnects the training graph; use a "
                         f"smaller holdout or more comparisons ({exc.message})", file=comp.source) from None
    fitted = ThurstonianModel(model=model, device=device).fit(train)
    frame = fitted.to_frame()
    summary: dict = {"items": comp.n_items, "pairs": train.n_edges, "log_likelihood": fitted.log_likelihood_,
                     "iterations": fitted.n_iter_, "converged": fitted.converged_}
    if held_out is not None:
        summary["holdout"] = evaluate(fitted.mean_, fitted.variance_, held_out, model).to_dict()
    if n_boot:
        boot = bootstrap(train, n_boot, model=model, seed=seed, held_out=held_out, device=device)
        frame = frame.merge(boot.to_frame()[["item", "mean_lo", "mean_hi"]], on="item")
        if held_out is not None:
            summary["holdout_ci"] = boot.metric_intervals()
    return frame, summary


def fit_csv(prefs_path: str | Path, out_path: str | Path, family: str = "thurstonian", device: str = "cpu",
            bootstrap: int = 0, seed: int = 0, holdout_pairs: float | None = None,
            per_component: bool = False) -> dict:
    """Fit PREFS.csv and write UTILS.csv (``item,mean,variance`` [+ ``mean_lo,mean_hi``]).

    Returns a summary with the held-out metrics when ``holdout_pairs`` (a fraction of the pairs) is given.
    A disconnected comparison graph is refused unless ``per_component``, which fits each component on
    its own scale and adds a ``component`` column (0 = largest).
    """
    comp = read_prefs(prefs_path)
    if not per_component:
        check_connected(comp)
    groups = components(comp) if per_component else [np.arange(comp.n_items)]
    frames, summaries = [], []
    for k, members in enumerate(groups):
        sub = comp if len(groups) == 1 else comp.subset_items(members)
        if sub.n_edges == 0:
            raise InputError(f"item {sub.items[0]!r} has no comparisons with non-zero counts",
                             file=comp.source)
        frame, summary = _fit_one(sub, family, device, bootstrap, seed, holdout_pairs)
        if per_component:
            frame.insert(1, "component", k)
        frames.append(frame)
        summaries.append(summary)
    write_utils(pd.concat(frames, ignore_index=True), out_path)
    result = {"out": str(out_path), "family": family, **summaries[0]}
    if per_component:
        result["components"] = summaries
    return result
