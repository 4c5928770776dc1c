"""Utility engine: Thurstonian / Case V / Bradley-Terry fits, bootstrap, metrics, active pair sampling."""

from valuelab.fit.active import InformationGain, reference_select, run_active, uniform_select
from valuelab.fit.bootstrap import BootstrapResult, bootstrap
from valuelab.fit.commands import fit_csv
from valuelab.fit.io import Comparisons, read_prefs, to_comparisons
from valuelab.fit.metrics import Metrics, evaluate
from valuelab.fit.simulate import simulate, simulate_csv
from valuelab.fit.thurstonian import MODELS, ThurstonianModel, fit_batch

__all__ = ["MODELS", "BootstrapResult", "Comparisons", "InformationGain", "Metrics", "ThurstonianModel",
           "bootstrap", "evaluate", "fit_batch", "fit_csv", "read_prefs", "reference_select", "run_active",
           "simulate", "simulate_csv", "to_comparisons", "uniform_select"]
