"""Analyses of elicited preferences: each module has `run(model, ...)`, a result with `to_frame()`/`to_dict()`,
and `figure(result)`. `ANALYSES` maps the CLI name (`valuelab analyze NAME MODEL`) to its module and title."""

from __future__ import annotations

import importlib
from types import ModuleType

ANALYSES: dict[str, tuple[str, str]] = {
    "accuracy": ("accuracy", "Held-out fit accuracy"),
    "completeness": ("completeness", "Completeness (decisiveness)"),
    "transitivity": ("transitivity", "Transitivity"),
    "expected-utility": ("expected_utility", "Expected utility, explicit lotteries"),
    "implicit-expected-utility": ("implicit_eu", "Expected utility, implicit lotteries"),
    "convergence": ("convergence", "Convergence with other models"),
    "exchange-rates": ("exchange_rates", "Exchange rates"),
    "time-discounting": ("time_discounting", "Time discounting"),
    "instrumental-values": ("instrumental_values", "Instrumental values"),
    "utility-maximization": ("utility_maximization", "Utility maximization"),
    "power-seeking": ("power_seeking", "Power-seeking and fitness"),
    "corrigibility": ("corrigibility", "Corrigibility"),
    "political-values": ("political_values", "Political values"),
    "template-spread": ("template_spread", "Template spread"),
}


def analysis_module(name: str) -> ModuleType:
    from valuelab.errors import InputError

    if name not in ANALYSES:
        raise InputError(f"unknown analysis {name!r}; choose one of: {', '.join(ANALYSES)}")
    return importlib.import_module(f"valuelab.analyses.{ANALYSES[name][0]}")
