"""The Inglehart-Welzel cultural map of the World Values Survey: two bipolar dimensions, and published country
positions on it (Gapminder's IVS indicators) for a qualitative comparison. The poles live in
`valuelab.items.vocabularies` (item files are validated against them) and are re-exported here."""

from __future__ import annotations

import math
from importlib.resources import files

import numpy as np
import pandas as pd

from valuelab.items.vocabularies import POLE_NAMES, POLES

__all__ = ["POLES", "POLE_NAMES", "country_positions", "quadrant_countries"]


def country_positions() -> pd.DataFrame:
    """Published country positions (latest wave): country, year, secular_rational, self_expression.

    Gapminder's Integrated Values Surveys indicators (CC BY 4.0), calculated from WVS/EVS aggregates; see the
    header of `valuelab/data/cultural-map-countries.csv` for the source and the sign convention.
    """
    return pd.read_csv(files("valuelab") / "data" / "cultural-map-countries.csv", comment="#")


def quadrant_countries(x_interval: tuple[float, float], y_interval: tuple[float, float]) -> list[str] | None:
    """Countries in the respondent's quadrant of the map, or None when an interval (x: survival ->
    self-expression, y: traditional -> secular-rational) includes 0 and the quadrant is not determined.

    A qualitative reading only: a single respondent's projection and the countries' factor scores are on
    different scales, so only the side of each axis is compared, never the distance.
    """
    sides = []
    for lo, hi in (x_interval, y_interval):
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 <= hi:
            return None
        sides.append(1 if lo > 0 else -1)
    countries = country_positions()
    inside = (np.sign(countries["self_expression"]) == sides[0]) & (np.sign(countries["secular_rational"]) == sides[1])
    return sorted(countries.loc[inside, "country"])
