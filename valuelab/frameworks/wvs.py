"""The Inglehart-Welzel cultural map of the World Values Survey: two bipolar dimensions."""

POLES: dict[str, tuple[str, str]] = {
    "trad-secular": ("traditional", "secular-rational"),
    "surv-selfexp": ("survival", "self-expression"),
}
"""Dimension -> (negative pole, positive pole)."""

POLE_NAMES: list[str] = [pole for pair in POLES.values() for pole in pair]
