"""Utility engine: Thurstonian / Case V / Bradley-Terry fits, bootstrap, metrics, active pair sampling, and the
elicitation loop that asks a model the pairs active sampling picks (`valuelab.fit.utilities`).

Names are imported on first use, so `from valuelab.fit.families import FAMILIES` costs no torch import.
"""

import importlib

_NAMES = {
    "InformationGain": "active", "reference_select": "active", "run_active": "active", "uniform_select": "active",
    "BootstrapResult": "bootstrap", "bootstrap": "bootstrap", "fit_csv": "commands", "FAMILIES": "families",
    "Comparisons": "io", "read_prefs": "io", "to_comparisons": "io", "Metrics": "metrics", "evaluate": "metrics",
    "simulate": "simulate", "simulate_csv": "simulate", "ThurstonianModel": "thurstonian", "fit_batch": "thurstonian",
    "UtilityResult": "utilities", "elicit_utilities": "utilities",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'valuelab.fit' has no attribute {name!r}")
    return getattr(importlib.import_module(f"valuelab.fit.{_NAMES[name]}"), name)
